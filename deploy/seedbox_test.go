package deploy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/metainfo"
)

// TestSeedboxRSSFetch runs deploy/seedbox/seedbank-rss-fetch.sh against a
// real node's /rss/<token>/new feed: every dataset lands in the watch folder
// once, as a personalised .torrent that announces with the user's passkey.
func TestSeedboxRSSFetch(t *testing.T) {
	for _, tool := range []string{"sh", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the seedbox feed script needs it", tool)
		}
	}
	n := startTestNode(t, nil)
	code, err := auth.NewCode(20)
	if err != nil {
		t.Fatal(err)
	}
	token := "rss_" + code
	u := addUser(t, n, "seedbox", map[string]string{"rss_token": token})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, _ := json.Marshal(map[string]uint64{"user_id": u.ID})
	if err := n.Store().PutRecord(ctx, "rsstoken", auth.HashCode(token), rec, true); err != nil {
		t.Fatal(err)
	}
	addDataset(t, n, u, "run-1.fastq")
	addDataset(t, n, u, "run-2.fastq")

	script := filepath.Join(repoRoot(t), "deploy", "seedbox", "seedbank-rss-fetch.sh")
	watch := t.TempDir()
	feed := n.SiteURL() + "/rss/" + token + "/new"
	run := func() string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "sh", script, feed, watch)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("seedbank-rss-fetch.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "2 new") {
		t.Fatalf("first run: %s", out)
	}
	entries, _ := os.ReadDir(watch)
	var torrents []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".torrent") {
			torrents = append(torrents, e.Name())
		} else if !e.IsDir() {
			t.Errorf("stray file in the watch folder: %s", e.Name())
		}
	}
	if len(torrents) != 2 {
		t.Fatalf("watch folder holds %v, want two .torrent files", torrents)
	}
	got := map[string]bool{}
	for _, name := range torrents {
		raw, err := os.ReadFile(filepath.Join(watch, name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := metainfo.Parse(raw, metainfo.DefaultLimits())
		if err != nil {
			t.Fatalf("%s is not a valid .torrent: %v", name, err)
		}
		if !strings.Contains(string(raw), u.Passkey) {
			t.Errorf("%s does not announce with the user's passkey", name)
		}
		got[p.Name] = true
	}
	if !got["run-1.fastq"] || !got["run-2.fastq"] {
		t.Errorf("fetched datasets %v, want run-1.fastq and run-2.fastq", got)
	}

	// A second run fetches nothing new, even after the client consumed the
	// files (transmission renames them to .added).
	for _, name := range torrents {
		if err := os.Rename(filepath.Join(watch, name), filepath.Join(watch, name+".added")); err != nil {
			t.Fatal(err)
		}
	}
	if out := run(); !strings.Contains(out, "0 new") {
		t.Fatalf("second run: %s", out)
	}
	addDataset(t, n, u, "run-3.fastq")
	if out := run(); !strings.Contains(out, "1 new") {
		t.Fatalf("third run: %s", out)
	}
}

// TestSeedboxUnits has systemd-analyze verify the feed fetcher's service and
// timer (ExecStart pointed at the script in this tree).
func TestSeedboxUnits(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (apt-get install systemd): it verifies the units")
	}
	src := filepath.Join(repoRoot(t), "deploy", "seedbox")
	dir := t.TempDir()
	for _, name := range []string{"seedbank-rss-fetch.service", "seedbank-rss-fetch.timer"} {
		raw, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(raw), "ExecStart=/usr/local/bin/seedbank-rss-fetch.sh ", "ExecStart="+filepath.Join(src, "seedbank-rss-fetch.sh")+" ")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(sa, "verify", filepath.Join(dir, "seedbank-rss-fetch.service"), filepath.Join(dir, "seedbank-rss-fetch.timer")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSeedboxQBittorrentRSS configures a real qbittorrent-nox the way
// docs/SEEDBOX.md describes (RSS feed plus an auto-download rule through its
// Web API) against a real node's feed, and checks that qBittorrent adds the
// dataset by itself and announces it to the node's tracker successfully.
func TestSeedboxQBittorrentRSS(t *testing.T) {
	qb, err := exec.LookPath("qbittorrent-nox")
	if err != nil {
		t.Fatal("qbittorrent-nox is not installed (apt-get install qbittorrent-nox)")
	}
	n := startTestNode(t, nil)
	code, err := auth.NewCode(20)
	if err != nil {
		t.Fatal(err)
	}
	token := "rss_" + code
	u := addUser(t, n, "labseedbox", map[string]string{"rss_token": token})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rec, _ := json.Marshal(map[string]uint64{"user_id": u.ID})
	if err := n.Store().PutRecord(ctx, "rsstoken", auth.HashCode(token), rec, true); err != nil {
		t.Fatal(err)
	}
	ih := addDataset(t, n, u, "seedbox-reads.fastq")

	// A throwaway profile; the settings are those of docs/SEEDBOX.md, except
	// that the Web API skips authentication for loopback (never do that
	// behind a proxy on the same host) and libtorrent's SSRF mitigation is
	// off: it refuses a tracker on localhost whose path is not /announce,
	// and this test's tracker is on localhost (a real node is not).
	profile := t.TempDir()
	webPort, peerPort := freePort(t, false), freePort(t, true)
	conf := fmt.Sprintf(`[LegalNotice]
Accepted=true

[BitTorrent]
Session\DefaultSavePath=%s
Session\Port=%d
Session\DHTEnabled=false
Session\PeXEnabled=false
Session\LSDEnabled=false
Session\QueueingSystemEnabled=false
Session\SSRFMitigation=false

[Preferences]
WebUI\Address=127.0.0.1
WebUI\Port=%d
WebUI\LocalHostAuth=false
Connection\UPnP=false

[RSS]
AutoDownloader\EnableProcessing=true
Session\EnableProcessing=true
Session\RefreshInterval=15
`, filepath.Join(profile, "data"), peerPort, webPort)
	cfgDir := filepath.Join(profile, "qBittorrent", "config")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "qBittorrent.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(qb, "--profile="+profile)
	logFile, err := os.Create(filepath.Join(profile, "qbittorrent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(profile, "qbittorrent.log"))
			t.Logf("qbittorrent-nox output:\n%s", b)
		}
	})

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v2", webPort)
	hc := &http.Client{Timeout: 5 * time.Second}
	if err := eventually(20*time.Second, func() error {
		status, body, err := getStatus(ctx, hc, api+"/app/version")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		return err
	}); err != nil {
		t.Fatalf("qBittorrent Web API never answered: %v", err)
	}
	post := func(path string, v url.Values) {
		t.Helper()
		res, err := hc.PostForm(api+path, v)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, res.StatusCode, body)
		}
	}
	feed := n.SiteURL() + "/rss/" + token + "/new"
	rule, _ := json.Marshal(map[string]any{"enabled": true, "mustContain": "", "affectedFeeds": []string{feed},
		"savePath": filepath.Join(profile, "data"), "addPaused": false})
	post("/rss/setRule", url.Values{"ruleName": {"seedbank new datasets"}, "ruleDef": {string(rule)}})
	post("/rss/addFeed", url.Values{"url": {feed}, "path": {"seedbank"}})
	start := time.Now()

	// qBittorrent fetches the feed, the rule matches, the personalised
	// .torrent is added...
	// A feed's first fetch can come before qBittorrent's RSS session is
	// ready and then waits out the refresh interval (minutes): ask for a
	// refresh every few seconds instead.
	nudged := time.Now()
	err = eventually(30*time.Second, func() error {
		_, body, err := getStatus(ctx, hc, api+"/torrents/info?hashes="+hex.EncodeToString(ih))
		if err != nil {
			return err
		}
		var list []struct {
			Hash, Tracker string
		}
		if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 {
			if time.Since(nudged) > 3*time.Second {
				post("/rss/refreshItem", url.Values{"itemPath": {"seedbank"}})
				nudged = time.Now()
			}
			_, feed, _ := getStatus(ctx, hc, api+"/rss/items?withData=true")
			return fmt.Errorf("dataset not added yet: %s; feed: %.2000s", body, feed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dataset added by the RSS rule after %v", time.Since(start).Round(100*time.Millisecond))
	// ...and announced with the user's passkey: the node's tracker hands
	// qBittorrent's listen port to another peer of the swarm.
	err = eventually(30*time.Second, func() error {
		r, err := announce(ctx, hc, n.AnnounceURL(), u.Passkey, ih, "-TR3000-rsscheckpeer", 50099, 10)
		if err != nil {
			return err
		}
		if r.Failure != "" {
			return fmt.Errorf("check announce: %s", r.Failure)
		}
		if !hasPeer(r.Peers, netip.MustParseAddr("127.0.0.1"), uint16(peerPort)) {
			return fmt.Errorf("the swarm %v lacks qBittorrent (127.0.0.1:%d)", r.Peers, peerPort)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("announced to the node after %v", time.Since(start).Round(100*time.Millisecond))
}
