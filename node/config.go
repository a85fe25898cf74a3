package node

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is every option of a node. Defaults live in Default; a config file,
// SEEDBANK_* environment variables and command-line flags override them, in
// that order. Each field's `flag` tag names its flag, its env var (upper
// case, '-' as '_', SEEDBANK_ prefix) and its TOML key ('-' as '_').
type Config struct {
	DataDir     string `flag:"data" help:"data directory: raft log, state, keys"`
	NodeID      string `flag:"node-id" help:"stable id of this node; generated and saved in the data dir on first start"`
	Institution string `flag:"institution" help:"name of the lab or institution running this node"`

	HTTPAddr    string `flag:"http" help:"listen address of the web site, API, /healthz and /readyz"`
	TrackerAddr string `flag:"tracker" help:"listen address of the HTTP tracker (announce, scrape)"`
	UDPAddr     string `flag:"udp" help:"listen address of the UDP tracker (BEP 15); empty disables it"`
	ClusterAddr string `flag:"cluster" help:"listen address of the cluster port (raft and internal forwarding, TLS + cluster key)"`
	Advertise   string `flag:"advertise" help:"cluster address other nodes dial; defaults to the bound cluster address"`

	SiteURL     string `flag:"site-url" help:"public URL of the web site; defaults to http://<http addr>"`
	AnnounceURL string `flag:"announce-url" help:"public base URL of the HTTP tracker; defaults to http://<tracker addr>"`
	UDPURL      string `flag:"udp-url" help:"public base URL of the UDP tracker; defaults to udp://<udp addr>"`

	SiteName       string   `flag:"site-name" help:"name shown in page titles, emails and TOTP apps"`
	Source         string   `flag:"source" help:"cluster-wide source tag written into sanitized torrents; the same on every node, so a dataset has one info hash"`
	TLS            bool     `flag:"tls" help:"true when the site is served over HTTPS by a proxy: secure cookies and HSTS"`
	TrustedProxies []string `flag:"trusted-proxies" help:"comma-separated CIDRs of proxies whose X-Forwarded-For/X-Real-IP are trusted, e.g. 127.0.0.1/32"`
	SMTPHost       string   `flag:"smtp-host" help:"SMTP relay for account emails; empty logs the emails (with their links) instead"`
	SMTPPort       uint64   `flag:"smtp-port" help:"SMTP relay port"`
	SMTPFrom       string   `flag:"smtp-from" help:"From address of account emails"`
	SMTPUser       string   `flag:"smtp-user" help:"SMTP username (optional)"`
	SMTPPassword   string   `flag:"smtp-password" help:"SMTP password (optional; prefer the env var)"`

	AnnounceInterval time.Duration `flag:"announce-interval" help:"interval clients are told to re-announce at"`
	StatsFlush       time.Duration `flag:"stats-flush" help:"how often accumulated ratio stats are committed to the cluster"`

	Join       []string `flag:"join" help:"comma-separated cluster addresses of existing members to join (first start only)"`
	ClusterKey string   `flag:"cluster-key" help:"base64 cluster key; made at bootstrap and kept in <data>/cluster.key; to join, give it or --join-secret"`
	JoinSecret string   `flag:"join-secret" help:"join secret (made at bootstrap, shown to admins on the Cluster page, rotatable): with --join, fetches the cluster key from a member on first start"`

	Gossip          string        `flag:"gossip" help:"listen address of gossip (membership and peer replication, UDP and TCP on one port, encrypted with the cluster key); empty: the cluster host with the cluster port + 946 (7946 for 7000), or a kernel-chosen port when the cluster port is 0"`
	GossipAdvertise string        `flag:"gossip-advertise" help:"gossip address other nodes reach; defaults to the host of --advertise with the bound gossip port; required when --gossip binds 0.0.0.0 without --advertise"`
	GossipJoin      []string      `flag:"gossip-join" help:"comma-separated gossip addresses of members; optional: a node finds the others' gossip addresses in the replicated state once it has joined with --join"`
	DeadNodeGrace   time.Duration `flag:"dead-node-grace" help:"the leader removes a node that gossip has seen dead or gone this long from the cluster, never below quorum; 0 disables"`

	RaftHeartbeatTimeout   time.Duration `flag:"raft-heartbeat-timeout" help:"raft heartbeat timeout; raise all three raft timeouts together on slow or distant links"`
	RaftElectionTimeout    time.Duration `flag:"raft-election-timeout" help:"raft election timeout (at least the heartbeat timeout)"`
	RaftLeaderLeaseTimeout time.Duration `flag:"raft-leader-lease-timeout" help:"raft leader lease timeout (at most the heartbeat timeout)"`

	SnapshotThreshold uint64        `flag:"snapshot-threshold" help:"raft log entries between snapshots"`
	ApplyTimeout      time.Duration `flag:"apply-timeout" help:"how long a write waits for the cluster before failing"`
	ShutdownTimeout   time.Duration `flag:"shutdown-timeout" help:"how long a graceful stop waits for requests to finish"`

	LogLevel  string `flag:"log-level" help:"debug, info, warn or error"`
	LogFormat string `flag:"log-format" help:"text or json"`

	// Hooks are test seams (fault injection, fast timing); without a flag
	// tag the config loader ignores them.
	Hooks *Hooks
}

// Default returns the embedded defaults: a single node on 127.0.0.1 with
// its data in ./data.
func Default() Config {
	return Config{
		DataDir:           "data",
		HTTPAddr:          "127.0.0.1:8080",
		TrackerAddr:       "127.0.0.1:6969",
		UDPAddr:           "127.0.0.1:6969",
		ClusterAddr:       "127.0.0.1:7000",
		SnapshotThreshold: 8192,
		ApplyTimeout:      10 * time.Second,
		ShutdownTimeout:   10 * time.Second,
		SiteName:          "seedbank",
		Source:            "seedbank",
		SMTPPort:          25,
		AnnounceInterval:  30 * time.Minute,
		StatsFlush:        10 * time.Second,
		DeadNodeGrace:     10 * time.Minute,

		RaftHeartbeatTimeout:   time.Second,
		RaftElectionTimeout:    time.Second,
		RaftLeaderLeaseTimeout: 500 * time.Millisecond,
		LogLevel:               "info",
		LogFormat:              "text",
	}
}

// Validate checks every option and names the one that is wrong.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data: must be set")
	}
	for name, addr := range map[string]string{"http": c.HTTPAddr, "tracker": c.TrackerAddr, "cluster": c.ClusterAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %q is not host:port: %w", name, addr, err)
		}
	}
	if c.UDPAddr != "" {
		if _, _, err := net.SplitHostPort(c.UDPAddr); err != nil {
			return fmt.Errorf("udp: %q is not host:port: %w", c.UDPAddr, err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join: %q is not host:port: %w", j, err)
		}
	}
	for name, addr := range map[string]string{"gossip": c.Gossip, "gossip-advertise": c.GossipAdvertise} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %q is not host:port: %w", name, addr, err)
		}
	}
	if host, _, err := net.SplitHostPort(c.Gossip); err == nil && c.GossipAdvertise == "" && c.Advertise == "" {
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("gossip: %q binds every interface; set gossip-advertise to the address other nodes reach", c.Gossip)
		}
	}
	for _, j := range c.GossipJoin {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("gossip-join: %q is not host:port: %w", j, err)
		}
	}
	if c.DeadNodeGrace < 0 {
		return errors.New("dead-node-grace: must not be negative (0 disables automatic removal)")
	}
	if c.RaftHeartbeatTimeout < 5*time.Millisecond || c.RaftElectionTimeout < c.RaftHeartbeatTimeout ||
		c.RaftLeaderLeaseTimeout < 5*time.Millisecond || c.RaftLeaderLeaseTimeout > c.RaftHeartbeatTimeout {
		return fmt.Errorf("raft-heartbeat-timeout (%v), raft-election-timeout (%v), raft-leader-lease-timeout (%v): need 5ms <= lease <= heartbeat <= election",
			c.RaftHeartbeatTimeout, c.RaftElectionTimeout, c.RaftLeaderLeaseTimeout)
	}
	if c.ClusterKey != "" {
		k, err := base64.StdEncoding.DecodeString(c.ClusterKey)
		if err != nil {
			return fmt.Errorf("cluster-key: not base64: %w", err)
		}
		if len(k) != 16 && len(k) != 24 && len(k) != 32 {
			return fmt.Errorf("cluster-key: must decode to 16, 24 or 32 bytes, got %d", len(k))
		}
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("trusted-proxies: %q is not a CIDR like 127.0.0.1/32: %w", p, err)
		}
	}
	if c.Source == "" || len(c.Source) > 64 {
		return errors.New("source: must be 1-64 characters")
	}
	if c.SMTPPort == 0 || c.SMTPPort > 65535 {
		return fmt.Errorf("smtp-port: %d is not a port", c.SMTPPort)
	}
	if c.AnnounceInterval < time.Second || c.StatsFlush < 100*time.Millisecond {
		return errors.New("announce-interval must be at least 1s and stats-flush at least 100ms")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format: %q is not text or json", c.LogFormat)
	}
	if c.ApplyTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("apply-timeout and shutdown-timeout: must be positive")
	}
	return nil
}

// Load fills c from the config file (when path is not empty), then the
// environment, then args. It returns flag.ErrHelp for -h.
func Load(c *Config, fs *flag.FlagSet, args []string, env func(string) string) error {
	configPath := fs.String("config", env("SEEDBANK_CONFIG"), "optional TOML config file; keys as the flags with '_' for '-' (env SEEDBANK_CONFIG)")
	fields := configFields(c)
	// Register flags into a scratch set so that only flags given on the
	// command line override file and env values.
	given := map[string]string{}
	for _, f := range fields {
		help := fmt.Sprintf("%s (env %s, default %q)", f.help, f.env, f.get())
		name := f.name
		if f.isBool {
			fs.BoolFunc(name, help, func(v string) error { given[name] = v; return nil })
			continue
		}
		fs.Func(name, help, func(v string) error { given[name] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *configPath != "" {
		raw := map[string]any{}
		if _, err := toml.DecodeFile(*configPath, &raw); err != nil {
			return fmt.Errorf("config file %s: %w", *configPath, err)
		}
		keys := make([]string, 0, len(raw))
		for k := range raw {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := findField(fields, strings.ReplaceAll(k, "_", "-"))
			if !ok {
				return fmt.Errorf("config file %s: unknown key %q", *configPath, k)
			}
			if err := f.set(fmt.Sprint(tomlString(raw[k]))); err != nil {
				return fmt.Errorf("config file %s: %s: %w", *configPath, k, err)
			}
		}
	}
	for _, f := range fields {
		if v := env(f.env); v != "" {
			if err := f.set(v); err != nil {
				return fmt.Errorf("%s: %w", f.env, err)
			}
		}
	}
	for _, f := range fields {
		if v, ok := given[f.name]; ok {
			if err := f.set(v); err != nil {
				return fmt.Errorf("-%s: %w", f.name, err)
			}
		}
	}
	return c.Validate()
}

func tomlString(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

type configField struct {
	name, env, help string
	isBool          bool
	get             func() string
	set             func(string) error
}

func findField(fields []configField, name string) (configField, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return configField{}, false
}

// configFields reflects over Config's tags, so a new option needs only a
// struct field with a tag to get its flag, env var and file key.
func configFields(c *Config) []configField {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	var out []configField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := sf.Tag.Get("flag")
		if name == "" {
			continue
		}
		fv := v.Field(i)
		f := configField{
			name: name,
			env:  "SEEDBANK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")),
			help: sf.Tag.Get("help"),
		}
		switch p := fv.Addr().Interface().(type) {
		case *string:
			f.get = func() string { return *p }
			f.set = func(s string) error { *p = s; return nil }
		case *[]string:
			f.get = func() string { return strings.Join(*p, ",") }
			f.set = func(s string) error {
				*p = nil
				for _, part := range strings.Split(s, ",") {
					if part = strings.TrimSpace(part); part != "" {
						*p = append(*p, part)
					}
				}
				return nil
			}
		case *bool:
			f.isBool = true
			f.get = func() string { return strconv.FormatBool(*p) }
			f.set = func(s string) error {
				b, err := strconv.ParseBool(s)
				if err != nil {
					return fmt.Errorf("%q is not true or false", s)
				}
				*p = b
				return nil
			}
		case *uint64:
			f.get = func() string { return strconv.FormatUint(*p, 10) }
			f.set = func(s string) error {
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a non-negative integer", s)
				}
				*p = n
				return nil
			}
		case *time.Duration:
			f.get = func() string { return p.String() }
			f.set = func(s string) error {
				d, err := time.ParseDuration(s)
				if err != nil {
					return fmt.Errorf("%q is not a duration like 10s: %w", s, err)
				}
				*p = d
				return nil
			}
		default:
			panic(fmt.Sprintf("node: config field %s has unsupported type %s", sf.Name, sf.Type))
		}
		out = append(out, f)
	}
	return out
}

// EnvLookup adapts os.Getenv for Load.
func EnvLookup(key string) string { return os.Getenv(key) }
