package deploy

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite deploy/systemd/seedbank.env from `seedbank serve --help`")

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// seedbankBinary builds ./cmd/seedbank once per test run.
func seedbankBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "seedbank-deploy-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "seedbank")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/seedbank")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/seedbank: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// serveOption is one option of `seedbank serve`, read from its --help.
type serveOption struct {
	flag, env, def, help string
	isBool               bool
}

var (
	helpFlagRe = regexp.MustCompile(`^  -([a-z0-9-]+)(?: (\w+))?$`)
	helpEnvRe  = regexp.MustCompile(`^(.*) \(env (SEEDBANK_[A-Z0-9_]+)(?:=true)?(?:, default "(.*)")?\)$`)
)

// serveOptions runs `seedbank serve --help` and parses every option.
func serveOptions(t *testing.T) []serveOption {
	t.Helper()
	out, err := exec.Command(seedbankBinary(t), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("seedbank serve --help: %v\n%s", err, out)
	}
	var opts []serveOption
	lines := strings.Split(string(out), "\n")
	for i := 0; i < len(lines); i++ {
		m := helpFlagRe.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		var help []string
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    \t") {
			i++
			help = append(help, strings.TrimSpace(lines[i]))
		}
		text := strings.Join(help, " ")
		e := helpEnvRe.FindStringSubmatch(text)
		if e == nil {
			t.Fatalf("option -%s: help %q names no SEEDBANK_* env var", m[1], text)
		}
		opts = append(opts, serveOption{flag: m[1], env: e[2], def: e[3], help: e[1], isBool: m[2] == ""})
	}
	if len(opts) < 20 {
		t.Fatalf("only %d options parsed from seedbank serve --help:\n%s", len(opts), out)
	}
	return opts
}

const envHeader = `# /etc/seedbank/seedbank.env: options of the seedbank systemd service
# (deploy/systemd/seedbank.service), one SEEDBANK_* variable a line. Every
# option of ` + "`seedbank serve`" + ` is listed below, commented out, with its default;
# uncomment and edit what you need. Keep this file root-only (0600): it may
# hold the cluster key and the SMTP password.
#
# Generated from ` + "`seedbank serve --help`" + `: after adding a flag, run
#   go test ./deploy -run TestSystemdEnvFile -update
#
# A public node behind nginx (deploy/nginx/seedbank.conf) typically sets:
#   SEEDBANK_SITE_URL=https://seedbank.example.org
#   SEEDBANK_ANNOUNCE_URL=https://tracker.example.org
#   SEEDBANK_UDP=0.0.0.0:6969   SEEDBANK_UDP_URL=udp://tracker.example.org:6969
#   SEEDBANK_TLS=true           SEEDBANK_TRUSTED_PROXIES=127.0.0.1/32
#   SEEDBANK_CLUSTER=0.0.0.0:7000  SEEDBANK_ADVERTISE=<this host's IP>:7000
#   SEEDBANK_GOSSIP=0.0.0.0:7946   SEEDBANK_GOSSIP_ADVERTISE=<this host's IP>:7946
#   SEEDBANK_INSTITUTION=...   SEEDBANK_SMTP_HOST=...   SEEDBANK_SMTP_FROM=...
# and, on a node that joins an existing cluster (first start only):
#   SEEDBANK_JOIN=<member IP>:7000   SEEDBANK_JOIN_SECRET=<from an admin's Cluster page>
#   (or SEEDBANK_CLUSTER_KEY=<key from a member's cluster.key> instead of the join secret)
#
# SEEDBANK_DATA is fixed by the unit (--data /var/lib/seedbank wins over it).
# The format is systemd's EnvironmentFile=: no "export", no shell expansion;
# quote a value with spaces in double quotes.
`

// renderEnvFile writes the sample env file for opts.
func renderEnvFile(opts []serveOption) string {
	var b strings.Builder
	b.WriteString(envHeader)
	for _, o := range opts {
		b.WriteString("\n")
		for _, line := range wrap(fmt.Sprintf("--%s: %s.", o.flag, o.help), 76) {
			b.WriteString("# " + line + "\n")
		}
		def := o.def
		if o.isBool && def == "" {
			def = "false"
		}
		if strings.ContainsAny(def, " \t#") {
			def = `"` + def + `"`
		}
		fmt.Fprintf(&b, "#%s=%s\n", o.env, def)
	}
	return b.String()
}

func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

var envLineRe = regexp.MustCompile(`^#?(SEEDBANK_[A-Z0-9_]+)=`)

// TestSystemdEnvFile checks that seedbank.env names every option of
// `seedbank serve --help` exactly once and nothing else; -update rewrites it.
func TestSystemdEnvFile(t *testing.T) {
	opts := serveOptions(t)
	path := filepath.Join(repoRoot(t), "deploy", "systemd", "seedbank.env")
	if *update {
		if err := os.WriteFile(path, []byte(renderEnvFile(opts)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		if m := envLineRe.FindStringSubmatch(sc.Text()); m != nil {
			seen[m[1]]++
		}
	}
	var want []string
	for _, o := range opts {
		want = append(want, o.env)
		if seen[o.env] != 1 {
			t.Errorf("%s (--%s) appears %d times in deploy/systemd/seedbank.env, want once", o.env, o.flag, seen[o.env])
		}
	}
	for env := range seen {
		if !slices.Contains(want, env) {
			t.Errorf("deploy/systemd/seedbank.env names %s, which seedbank serve --help does not list", env)
		}
	}
	if t.Failed() {
		t.Log("regenerate with: go test ./deploy -run TestSystemdEnvFile -update")
	}
}

// unitFile is a parsed systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// TestSystemdUnit checks the hardening of seedbank.service in Go, then has
// systemd-analyze verify the unit (with ExecStart pointed at a freshly built
// binary, since verify wants the command to exist) and score its exposure.
func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(repoRoot(t), "deploy", "systemd", "seedbank.service")
	u := parseUnit(t, path)

	// The hardening this unit promises.
	want := map[string]string{
		"Type": "exec", "DynamicUser": "yes", "StateDirectory": "seedbank", "StateDirectoryMode": "0700",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"PrivateUsers": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
		"ProtectHostname": "yes", "ProtectProc": "invisible", "ProcSubset": "pid",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
		"RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
		"EnvironmentFile": "/etc/seedbank/seedbank.env", "Restart": "on-failure", "KillSignal": "SIGTERM",
	}
	for k, v := range want {
		if _, ok := u["Service"][k]; !ok {
			t.Errorf("[Service] lacks %s=%s", k, v)
		} else if got := u.get("Service", k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") {
		t.Errorf("SystemCallFilter %q does not allow-list @system-service", f)
	}
	for _, k := range []string{"User", "Group", "ReadWritePaths"} {
		if v := u.get("Service", k); v != "" {
			t.Errorf("[Service] %s=%s widens what the service may do", k, v)
		}
	}

	// ExecStart runs the installed binary's serve with the data dir in the
	// state directory, and the binary path matches the install notes.
	exec0 := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec0) < 4 || exec0[0] != "/usr/local/bin/seedbank" || exec0[1] != "serve" ||
		!slices.Equal(exec0[2:4], []string{"--data", "%S/" + u.get("Service", "StateDirectory")}) {
		t.Errorf("ExecStart %q: want /usr/local/bin/seedbank serve --data %%S/<StateDirectory>", exec0)
	}
	raw, _ := os.ReadFile(path)
	for _, note := range []string{"install -m 0755 bin/seedbank " + exec0[0], "/etc/seedbank/seedbank.env"} {
		if !strings.Contains(string(raw), note) {
			t.Errorf("the install notes in the unit do not say %q", note)
		}
	}
	// Every flag in ExecStart exists, and the env file the unit reads is the
	// one deploy/systemd/seedbank.env is installed as.
	opts := serveOptions(t)
	for _, a := range exec0[2:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !slices.ContainsFunc(opts, func(o serveOption) bool { return o.flag == name }) {
				t.Errorf("ExecStart uses --%s, which seedbank serve does not have", name)
			}
		}
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%q", u.get("Install", "WantedBy"))
	}

	// systemd-analyze: verify (no warnings at all) and exposure score.
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (apt-get install systemd): it verifies the unit")
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "seedbank.service")
	patched := strings.ReplaceAll(string(raw), "ExecStart=/usr/local/bin/seedbank ", "ExecStart="+seedbankBinary(t)+" ")
	if err := os.WriteFile(unit, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", unit).CombinedOutput()
	score := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(string(out))
	if err != nil || score == nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 or not scored: %v\n%s", err, out)
	} else {
		t.Logf("systemd-analyze security: exposure %s (0 = locked down, 10 = unprotected)", score[1])
	}
}
