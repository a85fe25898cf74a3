// Package e2e drives real BitTorrent clients from Debian's packages against
// real seedbank nodes on 127.0.0.1. A missing client fails the test: .ci/run
// installs them.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/metainfo"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/node"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (bash .ci/run installs it): %v", tool, err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr, cfg.TrackerAddr, cfg.UDPAddr, cfg.ClusterAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.StatsFlush = 200 * time.Millisecond
	// Short, so clients report their counters again within the test.
	cfg.AnnounceInterval = 5 * time.Second
	level := slog.LevelWarn
	if os.Getenv("SEEDBANK_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for !n.Store().IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("node never led")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

func addUser(t *testing.T, n *node.Node, name string) model.User {
	t.Helper()
	id, _ := auth.NewID()
	pk, _ := auth.NewPasskey()
	u := model.User{ID: id, Username: name, Email: name + "@example.org", PasswordHash: "unused",
		Passkey: pk, Role: model.RoleMember, Enabled: true, Created: time.Now().UnixMilli()}
	if err := n.Store().CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// dataset writes size random bytes into dir/name and makes a torrent of it
// with mktorrent, registered (sanitized) on the node by uploader.
type dataset struct {
	dir, name string
	sha       [32]byte
	size      int64
	sanitized metainfo.Sanitized
}

func makeDataset(t *testing.T, n *node.Node, uploader model.User, size int64) dataset {
	t.Helper()
	need(t, "mktorrent")
	dir := t.TempDir()
	name := "reads.fastq"
	buf := make([]byte, size)
	_, _ = rand.Read(buf)
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	tpath := filepath.Join(t.TempDir(), "up.torrent")
	out, err := exec.Command("mktorrent", "-p", "-l", "18", "-a", "http://example.invalid/announce", "-o", tpath, filepath.Join(dir, name)).CombinedOutput()
	if err != nil {
		t.Fatalf("mktorrent: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(tpath)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := metainfo.Parse(raw, metainfo.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	san, err := metainfo.Sanitize(parsed, "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	tr := model.Torrent{ID: san.ID, InfoHashV1: san.InfoHashV1Hex(), InfoHashV2: san.InfoHashV2Hex(),
		OriginalInfoHash: parsed.OriginalInfoHash(), Name: parsed.Name, Metainfo: san.Metainfo,
		Files: parsed.Files, TotalSize: parsed.TotalSize, Uploader: uploader.ID, Created: time.Now().UnixMilli()}
	if err := n.Store().PutTorrent(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	return dataset{dir: dir, name: name, sha: sha256.Sum256(buf), size: size, sanitized: san}
}

// torrentFor writes the personalised .torrent for user with the given
// announce base URLs.
func torrentFor(t *testing.T, d dataset, u model.User, bases ...string) string {
	t.Helper()
	var urls []string
	for _, b := range bases {
		urls = append(urls, b+"/"+u.Passkey+"/announce")
	}
	raw, err := metainfo.Personalize(d.sanitized.Metainfo, urls, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), u.Username+".torrent")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a client process whose output is kept for failure messages.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, out: &out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return p
}

func (p *proc) tail() string {
	s := p.out.String()
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return s
}

func seedWithTransmission(t *testing.T, torrent string, d dataset) *proc {
	t.Helper()
	need(t, "transmission-cli")
	return start(t, "transmission-cli", "-g", t.TempDir(), "-w", d.dir, "-p", fmt.Sprint(freePort(t)),
		"-M", "-B", "-et", "-U", torrent)
}

// downloadWithAria2 downloads torrent into a new folder; extra are more
// aria2c options (such as --interface).
func downloadWithAria2(t *testing.T, ctx context.Context, torrent string, d dataset, extra ...string) (string, *proc) {
	t.Helper()
	need(t, "aria2c")
	out := t.TempDir()
	args := []string{"--dir=" + out, "--enable-dht=false", "--enable-dht6=false", "--enable-peer-exchange=false",
		"--bt-enable-lpd=false", "--seed-time=0", "--listen-port=" + fmt.Sprint(freePort(t)),
		"--bt-tracker-interval=2", "--bt-stop-timeout=120", "--summary-interval=0",
		"--console-log-level=warn", "--check-integrity=true"}
	p := start(t, "aria2c", append(append(args, extra...), torrent)...)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("aria2c failed: %v\n%s", err, p.tail())
		}
	case <-ctx.Done():
		t.Fatalf("aria2c did not finish: %v\n%s", ctx.Err(), p.tail())
	}
	return filepath.Join(out, d.name), p
}

func fileSHA(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Transmission seeds and aria2 downloads a private torrent through one node;
// the data arrives whole and the ratio stats show the transfer.
func TestTransmissionSeedsAria2Downloads(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice, bob := addUser(t, n, "alice"), addUser(t, n, "bob")
	const size = 8 << 20
	d := makeDataset(t, n, alice, size)
	base := n.AnnounceURL()

	seeder := seedWithTransmission(t, torrentFor(t, d, alice, base), d)
	waitFor(t, ctx, "the seeder in the swarm", func() bool {
		st, ok := n.Tracker().SwarmStats(d.sanitized.ID)
		return ok && st.Seeders >= 1
	})
	t0 := time.Now()
	got, _ := downloadWithAria2(t, ctx, torrentFor(t, d, bob, base), d)
	t.Logf("aria2 downloaded %d MiB from transmission in %v", size>>20, time.Since(t0).Round(time.Millisecond))
	if fileSHA(t, got) != d.sha {
		t.Fatal("downloaded data differs from the source")
	}

	// Transmission reports what it uploaded at its next regular announce.
	waitFor(t, ctx, "bob's download in the stats", func() bool {
		return n.Store().UserStats(bob.ID).Downloaded >= size && n.Store().TorrentStats(d.sanitized.ID).Snatches == 1
	})
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	waitFor(t, sctx, fmt.Sprintf("alice's upload in the stats (seeder output: %s)", seeder.tail()), func() bool {
		return n.Store().UserStats(alice.ID).Uploaded >= size*9/10
	})
	bs, as := n.Store().UserStats(bob.ID), n.Store().UserStats(alice.ID)
	t.Logf("stats: bob %+v, alice %+v", bs, as)
	if bs.Downloaded > size*11/10 || as.Uploaded > size*11/10 {
		t.Fatalf("stats larger than the transfer: bob %+v alice %+v", bs, as)
	}
	if bs.Snatches != 1 || as.Snatches != 0 {
		t.Fatalf("snatches: bob %d alice %d", bs.Snatches, as.Snatches)
	}
}

// A torrent the tracker does not know gets nothing: 0 bytes, and the
// client sees the tracker's failure reason.
func TestUnregisteredTorrentGetsNothing(t *testing.T) {
	n := startNode(t)
	bob := addUser(t, n, "bob")
	d := makeDataset(t, n, bob, 1<<20)
	// A second, never registered dataset.
	raw := make([]byte, 1<<20)
	_, _ = rand.Read(raw)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "other.bin"), raw, 0o644)
	tp := filepath.Join(t.TempDir(), "x.torrent")
	url := n.AnnounceURL() + "/" + bob.Passkey + "/announce"
	if out, err := exec.Command("mktorrent", "-p", "-a", url, "-o", tp, filepath.Join(dir, "other.bin")).CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v %s", err, out)
	}
	_ = d
	out := t.TempDir()
	cmd := exec.Command("aria2c", "--dir="+out, "--enable-dht=false", "--enable-peer-exchange=false", "--bt-enable-lpd=false",
		"--seed-time=0", "--bt-stop-timeout=5", "--bt-tracker-timeout=5", "--listen-port="+fmt.Sprint(freePort(t)), tp)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	outb, _ := cmd.CombinedOutput()
	if fi, err := os.Stat(filepath.Join(out, "other.bin")); err == nil && fi.Size() > 0 {
		// aria2 preallocates; what matters is that no byte arrived.
		got := fileSHA(t, filepath.Join(out, "other.bin"))
		if got == sha256.Sum256(raw) {
			t.Fatal("unregistered torrent downloaded")
		}
	}
	if !strings.Contains(string(outb), "unregistered") && !strings.Contains(string(outb), "not registered") {
		t.Logf("aria2 output:\n%s", outb)
	}
	if st := n.Store().UserStats(bob.ID); st.Downloaded != 0 {
		t.Fatalf("stats moved for an unregistered torrent: %+v", st)
	}
	if _, ok := n.Tracker().SwarmStats(mustHash(t, tp)); ok {
		t.Fatal("a swarm was created for an unregistered torrent")
	}
}

func mustHash(t *testing.T, path string) model.InfoHash {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := metainfo.Parse(raw, metainfo.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	h, err := model.ParseInfoHash(hex.EncodeToString(p.OriginalInfoHashV1[:]))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
