package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

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

	alice, bob := c.newUser(n1, "alice"), c.newUser(n2, "bob")
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
	step(t, "1. users registered through the API (email confirmed), dataset uploaded on node 1", &at)

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
	carol := c.newUser(n3, "carol")
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
	// Kill node 2 mid-transfer: once carol has told it she downloaded
	// something, so node 2 dies holding counters nobody else has.
	ariaLog := filepath.Join(logDir, "carol-aria2.log")
	waitFor(t, ctx, "carol announcing progress to node 2", func() bool {
		raw, err := os.ReadFile(ariaLog)
		return err == nil && bytes.Contains(raw, []byte(n2.tracker)) && announcedSoFar(raw) > 0
	})
	c.kill(n2)
	t.Logf("node 2 killed after carol reported %d bytes to it", announcedSoFar(mustRead(t, ariaLog)))
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
