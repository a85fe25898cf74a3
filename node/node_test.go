package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	c := Default()
	c.DataDir = dir
	c.HTTPAddr = "127.0.0.1:0"
	c.ClusterAddr = "127.0.0.1:0"
	c.TrackerAddr = "127.0.0.1:0"
	c.UDPAddr = "127.0.0.1:0"
	c.Gossip = "127.0.0.1:0"
	return c
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg, quietLog())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func waitReady(t *testing.T, n *Node) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(n.SiteURL() + "/readyz")
		if err == nil {
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return body
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeRestartKeepsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(t, dir)
	n := startNode(t, cfg)
	if n.NewClusterKey == "" {
		t.Fatal("first start made no cluster key")
	}
	body := waitReady(t, n)
	if body["raft_state"] != "Leader" || body["node_id"] != n.ID() {
		t.Fatalf("readyz body: %v", body)
	}
	resp, err := http.Get(n.SiteURL() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := model.User{ID: 42, Username: "alice", Email: "alice@example.org", PasswordHash: "h",
		Passkey: strings.Repeat("ab", 16), Role: model.RoleAdmin, Enabled: true, Created: time.Now().UnixMilli()}
	if err := n.Store().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// The node records its own public URLs in the replicated state.
	deadline := time.Now().Add(10 * time.Second)
	for len(n.Store().Members()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if m := n.Store().Members(); len(m) != 1 || m[0].NodeID != n.ID() || m[0].SiteURL != n.SiteURL() {
		t.Fatalf("members: %+v", m)
	}
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n2 := startNode(t, cfg)
	if n2.ID() != id || n2.NewClusterKey != "" {
		t.Fatalf("restart changed identity: %s -> %s (new key %q)", id, n2.ID(), n2.NewClusterKey)
	}
	waitReady(t, n2)
	got, err := n2.Store().UserByName("alice")
	if err != nil || got.ID != 42 {
		t.Fatalf("user after restart: %+v %v", got, err)
	}
	if _, ok := n2.Store().UserByPasskey(u.Passkey); !ok {
		t.Fatal("passkey index empty after restart")
	}
}

func TestStartRefusesBadDataDirs(t *testing.T) {
	ctx := context.Background()
	try := func(t *testing.T, dir string, mutate func(*Config)) error {
		t.Helper()
		cfg := testConfig(t, dir)
		if mutate != nil {
			mutate(&cfg)
		}
		n, err := Start(ctx, cfg, quietLog())
		if err == nil {
			n.Close()
		}
		return err
	}
	// A healthy data dir made by a real start and stop.
	made := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "data")
		n := startNode(t, testConfig(t, dir))
		waitReady(t, n)
		// Something applied, so state.db has an applied index.
		for deadline := time.Now().Add(10 * time.Second); len(n.Store().Members()) == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("foreign non-empty dir", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "thesis.pdf"), []byte("x"), 0o600)
		err := try(t, dir, nil)
		if err == nil || !strings.Contains(err.Error(), "not a seedbank data dir") {
			t.Fatalf("got %v", err)
		}
		if _, serr := os.Stat(filepath.Join(dir, "state.db")); serr == nil {
			t.Fatal("created files in a foreign dir")
		}
	})
	t.Run("corrupt node.json", func(t *testing.T) {
		dir := made(t)
		os.WriteFile(filepath.Join(dir, "node.json"), []byte("{garbage"), 0o600)
		if err := try(t, dir, nil); err == nil || !strings.Contains(err.Error(), "node.json is corrupt") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("corrupt state.db", func(t *testing.T) {
		dir := made(t)
		os.WriteFile(filepath.Join(dir, "state.db"), []byte(strings.Repeat("garbage!", 1000)), 0o600)
		if err := try(t, dir, nil); err == nil || !strings.Contains(err.Error(), "state.db") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("corrupt raft log", func(t *testing.T) {
		dir := made(t)
		os.WriteFile(filepath.Join(dir, "raft", "raft.db"), []byte(strings.Repeat("garbage!", 1000)), 0o600)
		if err := try(t, dir, nil); err == nil || !strings.Contains(err.Error(), "raft log") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("lost raft folder", func(t *testing.T) {
		dir := made(t)
		os.RemoveAll(filepath.Join(dir, "raft"))
		if err := try(t, dir, nil); err == nil || !strings.Contains(err.Error(), "raft/ folder was lost") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other cluster's key", func(t *testing.T) {
		dir := made(t)
		err := try(t, dir, func(c *Config) {
			c.ClusterKey = base64.StdEncoding.EncodeToString([]byte("seedbank-other-cluster-key-32b!!"))
		})
		if err == nil || !strings.Contains(err.Error(), "another cluster") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other node id", func(t *testing.T) {
		dir := made(t)
		if err := try(t, dir, func(c *Config) { c.NodeID = "someone-else" }); err == nil || !strings.Contains(err.Error(), "belongs to node") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("join without key", func(t *testing.T) {
		err := try(t, filepath.Join(t.TempDir(), "d"), func(c *Config) { c.Join = []string{"127.0.0.1:1"} })
		if err == nil || !strings.Contains(err.Error(), "--cluster-key") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "seedbank.toml")
	os.WriteFile(file, []byte("data = \"/from/file\"\ninstitution = \"EMBL\"\njoin = [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\napply_timeout = \"3s\"\n"), 0o600)
	env := map[string]string{"SEEDBANK_INSTITUTION": "Sanger", "SEEDBANK_HTTP": "127.0.0.1:9999"}
	c := Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := Load(&c, fs, []string{"--config", file, "--http", "127.0.0.1:8888"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/file" || c.Institution != "Sanger" || c.HTTPAddr != "127.0.0.1:8888" ||
		len(c.Join) != 2 || c.ApplyTimeout != 3*time.Second || c.TrackerAddr != "127.0.0.1:6969" {
		t.Fatalf("wrong precedence: %+v", c)
	}

	bad := []struct {
		args []string
		env  map[string]string
		file string
		want string
	}{
		{args: []string{"--http", "nope"}, want: "http"},
		{args: []string{"--apply-timeout", "soon"}, want: "apply-timeout"},
		{args: []string{"--log-level", "loud"}, want: "log-level"},
		{args: []string{"--cluster-key", "!!"}, want: "cluster-key"},
		{args: []string{"--join", "host-without-port"}, want: "join"},
		{env: map[string]string{"SEEDBANK_SNAPSHOT_THRESHOLD": "-1"}, want: "SEEDBANK_SNAPSHOT_THRESHOLD"},
		{file: "colour = \"red\"\n", want: "unknown key"},
		{file: "data = [\n", want: "config file"},
		{args: []string{"stray"}, want: "unexpected arguments"},
	}
	for _, b := range bad {
		c := Default()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		args := b.args
		if b.file != "" {
			p := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(p, []byte(b.file), 0o600)
			args = append([]string{"--config", p}, args...)
		}
		err := Load(&c, fs, args, func(k string) string { return b.env[k] })
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v %v %q: got %v, want mention of %q", b.args, b.env, b.file, err, b.want)
		}
	}
}

// After announces and a write, /metrics reports each part with sane values.
func TestMetricsAfterLoad(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "data"))
	n := startNode(t, cfg)
	waitReady(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := model.User{ID: 7, Username: "bob", Email: "bob@example.org", PasswordHash: "h",
		Passkey: strings.Repeat("cd", 16), Role: model.RoleMember, Enabled: true, Created: time.Now().UnixMilli()}
	if err := n.Store().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	var ih [20]byte
	ih[0] = 1
	h := model.InfoHash(ih)
	tr := model.Torrent{ID: h, InfoHashV1: h.String(), Name: "d", Metainfo: []byte("x"),
		Files: []model.File{{Path: "a", Length: 10}}, TotalSize: 10, Uploader: 7, Created: 1}
	if err := n.Store().PutTorrent(ctx, tr); err != nil {
		t.Fatal(err)
	}
	announce := func(passkey string, port int) {
		q := "info_hash=" + url.QueryEscape(string(ih[:])) + "&peer_id=-TR3000-abcdefghijk" + fmt.Sprint(port%10) +
			"&port=" + fmt.Sprint(port) + "&uploaded=0&downloaded=0&left=10&compact=1"
		resp, err := http.Get(n.AnnounceURL() + "/" + passkey + "/announce?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i := 0; i < 3; i++ {
		announce(u.Passkey, 6881+i)
	}
	announce(strings.Repeat("0", 32), 7000)
	resp, err := http.Get(n.SiteURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`seedbank_announces_total{node="` + n.ID() + `",result="ok"} 3`,
		`seedbank_announces_total{node="` + n.ID() + `",result="unknown_passkey"} 1`,
		`seedbank_peers_local{node="` + n.ID() + `"} 3`,
		`seedbank_swarms{node="` + n.ID() + `"} 1`,
		`seedbank_raft_state{node="` + n.ID() + `",state="Leader"} 1`,
		`seedbank_raft_write_duration_seconds_count{node="` + n.ID() + `",outcome="ok"}`,
		`seedbank_http_request_duration_seconds_count{code="2xx",listener="tracker",node="` + n.ID() + `"} 4`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
