package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/metainfo"
)

// The binaries under test, built once per test run from this checkout, by
// version string ("" for the default, "dev").
var (
	buildMu  sync.Mutex
	binPaths = map[string]string{}
)

func seedbankBinary(t *testing.T) string { return seedbankBinaryVersion(t, "") }

// seedbankBinaryVersion builds the seedbank command with main.version set
// to version, as `make build` does.
func seedbankBinaryVersion(t *testing.T, version string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := binPaths[version]; ok {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "seedbank-e2e-bin")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "seedbank")
	args := []string{"build", "-o", p}
	if version != "" {
		args = append(args, "-ldflags", "-X main.version="+version)
	}
	cmd := exec.Command("go", append(args, "./cmd/seedbank")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	binPaths[version] = p
	return p
}

// binNode is one seedbank process.
type binNode struct {
	// bin is the binary to run ("" for seedbankBinary); joinSecret, when
	// set, replaces the cluster key on the first start.
	bin, joinSecret                        string
	name                                   string
	dir, site, tracker, udp, cluster, goss string
	cmd                                    *exec.Cmd
	out                                    *lockedBuffer
	done                                   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// freeTCPUDPAddr is a port free for both TCP and UDP (memberlist uses both).
func freeTCPUDPAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := freeAddr(t)
		if c, err := net.ListenPacket("udp", addr); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// freeUDPAddr is freeAddr for a UDP listener (the kernel's free TCP and UDP
// ports differ).
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

type binCluster struct {
	t     *testing.T
	key   string
	nodes []*binNode
}

// newBinCluster starts n nodes with a cluster key made here, node1
// bootstrapping, and waits until all are ready.
func newBinCluster(t *testing.T, n int) *binCluster {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	c := emptyBinCluster(t, base64.StdEncoding.EncodeToString(k))
	for i := 0; i < n; i++ {
		c.addNode("")
	}
	for i := range c.nodes {
		c.start(i)
	}
	for _, nd := range c.nodes {
		c.waitReady(nd)
	}
	return c
}

// addNode adds a node (not started) that runs binary bin ("" for the
// default build).
func (c *binCluster) addNode(bin string) *binNode {
	t := c.t
	nd := &binNode{bin: bin,
		name: fmt.Sprintf("node%d", len(c.nodes)+1), dir: filepath.Join(t.TempDir(), "data"),
		site: freeAddr(t), tracker: freeAddr(t), udp: freeUDPAddr(t), cluster: freeAddr(t), goss: freeTCPUDPAddr(t),
	}
	c.nodes = append(c.nodes, nd)
	return nd
}

// emptyBinCluster is a cluster with no nodes yet; key "" lets the first
// node make one.
func emptyBinCluster(t *testing.T, key string) *binCluster {
	c := &binCluster{t: t, key: key}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.kill(nd)
		}
		// The nodes' logs: kept when SEEDBANK_E2E_LOGS names a folder,
		// shown when the test failed.
		for _, nd := range c.nodes {
			if nd.out == nil {
				continue
			}
			if dir := os.Getenv("SEEDBANK_E2E_LOGS"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, nd.name+".log"), []byte(nd.out.String()), 0o644)
			}
			if t.Failed() {
				s := nd.out.String()
				if len(s) > 4000 {
					s = s[len(s)-4000:]
				}
				t.Logf("%s log (tail):\n%s", nd.name, s)
			}
		}
	})
	return c
}

func (c *binCluster) start(i int) {
	nd := c.nodes[i]
	args := []string{"serve", "--data", nd.dir, "--node-id", nd.name, "--institution", "Lab " + nd.name,
		"--http", nd.site, "--tracker", nd.tracker, "--udp", nd.udp, "--cluster", nd.cluster, "--gossip", nd.goss,
		"--stats-flush", "500ms", "--announce-interval", "5s", "--log-level", "info"}
	switch {
	case nd.joinSecret != "":
		args = append(args, "--join-secret", nd.joinSecret)
	case c.key != "":
		args = append(args, "--cluster-key", c.key)
	}
	if i > 0 {
		args = append(args, "--join", c.nodes[0].cluster)
	}
	bin := nd.bin
	if bin == "" {
		bin = seedbankBinary(c.t)
	}
	nd.out = &lockedBuffer{}
	nd.cmd = exec.Command(bin, args...)
	nd.cmd.Stdout, nd.cmd.Stderr = nd.out, nd.out
	if err := nd.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	nd.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(nd.cmd, nd.done)
}

func (c *binCluster) kill(nd *binNode) {
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.done
	nd.cmd = nil
}

func (c *binCluster) waitReady(nd *binNode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(c.t, ctx, nd.name+" ready (output: "+nd.out.String()+")", func() bool {
		resp, err := http.Get("http://" + nd.site + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// cli runs a seedbank subcommand against node nd.
func (c *binCluster) cli(nd *binNode, env []string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(seedbankBinary(c.t), append(args, "--cluster", nd.cluster, "--cluster-key", c.key)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("seedbank %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// apiUser is an account with an API token.
type apiUser struct {
	name, token string
}

// newUser registers name through the API on node nd as a new user would:
// POST /api/v1/users, the confirmation link from the email (nodes without
// SMTP log their emails), then POST /api/v1/tokens.
func (c *binCluster) newUser(nd *binNode, name string) apiUser {
	c.t.Helper()
	pw := "e2e password for " + name
	email := name + "@example.org"
	body, _ := json.Marshal(map[string]string{"username": name, "email": email, "password": pw})
	c.apiJSON(nd, "", http.MethodPost, "/api/v1/users", "application/json", bytes.NewReader(body), http.StatusCreated, nil)
	var link string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(c.t, ctx, "the confirmation email to "+email+" in "+nd.name+"'s log", func() bool {
		for _, line := range strings.Split(nd.out.String(), "\n") {
			if strings.Contains(line, "to="+email) {
				if m := confirmLink.FindString(line); m != "" {
					link = m
					return true
				}
			}
		}
		return false
	})
	resp, err := http.Get(link)
	if err != nil {
		c.t.Fatalf("open %s: %v", link, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("confirmation link %s: %d", link, resp.StatusCode)
	}
	var out struct {
		Token string `json:"token"`
	}
	body, _ = json.Marshal(map[string]string{"username": name, "password": pw, "name": "e2e"})
	c.apiJSON(nd, "", http.MethodPost, "/api/v1/tokens", "application/json", bytes.NewReader(body), http.StatusCreated, &out)
	return apiUser{name: name, token: out.Token}
}

// confirmLink finds an emailed confirmation link in a node's log line.
var confirmLink = regexp.MustCompile(`http://[0-9.:]+/confirm\?token=[A-Za-z0-9._~%-]+`)

func (c *binCluster) apiJSON(nd *binNode, token, method, path, ctype string, body io.Reader, want int, out any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, "http://"+nd.site+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s on %s: %d, want %d: %s", method, path, nd.name, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

func (c *binCluster) download(nd *binNode, u apiUser, id string) []byte {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+nd.site+"/api/v1/torrents/"+id+"/download", nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("download on %s: %d %s", nd.name, resp.StatusCode, raw)
	}
	return raw
}

type meStats struct {
	Uploaded   uint64 `json:"uploaded"`
	Downloaded uint64 `json:"downloaded"`
	Snatches   uint64 `json:"snatches"`
}

func (c *binCluster) me(nd *binNode, u apiUser) meStats {
	var m meStats
	c.apiJSON(nd, u.token, http.MethodGet, "/api/v1/me", "", nil, http.StatusOK, &m)
	return m
}

func (c *binCluster) dataset(nd *binNode, u apiUser, id string) (snatches int, seeders int) {
	var d struct {
		Snatches int  `json:"snatches"`
		Seeders  *int `json:"seeders"`
	}
	c.apiJSON(nd, u.token, http.MethodGet, "/api/v1/torrents/"+id, "", nil, http.StatusOK, &d)
	if d.Seeders != nil {
		seeders = *d.Seeders
	}
	return d.Snatches, seeders
}

// onlyTrackers rewrites a downloaded .torrent to announce to the given
// URLs only (the copy a test client gets, to pin it to one node).
func onlyTrackers(t *testing.T, torrent []byte, urls ...string) string {
	t.Helper()
	raw, err := metainfo.Personalize(torrent, urls, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pinned.torrent")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// trackerTiers rewrites a downloaded .torrent to announce to the given URLs
// in order, one tier each, so the client tries them in that order.
func trackerTiers(t *testing.T, torrent []byte, urls ...string) string {
	t.Helper()
	var top map[string]bencode.RawMessage
	if err := bencode.DecodeBytes(torrent, &top); err != nil {
		t.Fatal(err)
	}
	var tiers [][]string
	for _, u := range urls {
		tiers = append(tiers, []string{u})
	}
	var err error
	if top["announce"], err = bencode.EncodeBytes(urls[0]); err != nil {
		t.Fatal(err)
	}
	if top["announce-list"], err = bencode.EncodeBytes(tiers); err != nil {
		t.Fatal(err)
	}
	raw, err := bencode.EncodeBytes(top)
	if err != nil {
		t.Fatal(err)
	}
	if mustParse(t, raw).OriginalInfoHashV1 != mustParse(t, torrent).OriginalInfoHashV1 {
		t.Fatal("rewriting the trackers changed the info hash")
	}
	p := filepath.Join(t.TempDir(), "tiers.torrent")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastAnnounced returns the downloaded counter of the last announce in an
// aria2 log (written with --log-level=info, which logs each request line).
func lastAnnounced(t *testing.T, path string) uint64 {
	t.Helper()
	down, ok := lastDownloaded(mustRead(t, path))
	if !ok {
		t.Fatalf("no announce in %s", path)
	}
	return down
}

// announcedSoFar is lastAnnounced for a log still being written: 0 when
// there is no complete announce line yet.
func announcedSoFar(log []byte) uint64 {
	down, _ := lastDownloaded(log)
	return down
}

func lastDownloaded(log []byte) (uint64, bool) {
	var down uint64
	found := false
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.HasPrefix(line, "GET ") || !strings.Contains(line, "/announce?") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		u, err := url.Parse(f[1])
		if err != nil {
			continue
		}
		if d, err := strconv.ParseUint(u.Query().Get("downloaded"), 10, 64); err == nil {
			down, found = d, true
		}
	}
	return down, found
}

func mustParse(t *testing.T, raw []byte) *metainfo.Torrent {
	t.Helper()
	p, err := metainfo.Parse(raw, metainfo.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func step(t *testing.T, name string, start *time.Time) {
	t.Logf("step %-58s %6.1fs", name, time.Since(*start).Seconds())
	*start = time.Now()
}
