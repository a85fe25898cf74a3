package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/node"
)

// qbit is a qbittorrent-nox instance with its own profile, driven through
// its WebUI API (localhost needs no login with LocalHostAuth off).
type qbit struct {
	t       *testing.T
	api     string
	save    string
	profile string
	proc    *proc
}

// startQbit writes a profile with what CLIENTS.md says libtorrent needs on
// loopback (SSRF mitigation off, so a passkey path is allowed on localhost;
// several connections per IP, since every peer is 127.0.0.1) and starts it.
// It speaks TCP only: with uTP on too, a Transmission seeder (which keeps
// one connection per address) dropped qBittorrent a third of the way into
// a 30 MiB download in 2 of 3 federation runs, and it did not reconnect
// within two minutes; a second connection over uTP is the suspect.
// A non-empty addr (a 127.x address) is the one address it listens,
// announces and is listed at, as if it were another host.
func startQbit(t *testing.T, addr string) *qbit {
	t.Helper()
	need(t, "qbittorrent-nox")
	profile := t.TempDir()
	save := t.TempDir()
	webPort, btPort := freePort(t), freePort(t)
	conf := fmt.Sprintf(`[LegalNotice]
Accepted=true

[BitTorrent]
Session\DHTEnabled=false
Session\PeXEnabled=false
Session\LSDEnabled=false
Session\SSRFMitigation=false
Session\MultiConnectionsPerIp=true
Session\Port=%d
Session\DefaultSavePath=%s
Session\AnonymousModeEnabled=false
Session\QueueingSystemEnabled=false
Session\InterfaceAddress=%s
Session\BTProtocol=TCP

[Preferences]
WebUI\Port=%d
WebUI\Address=127.0.0.1
WebUI\LocalHostAuth=false
WebUI\CSRFProtection=false
WebUI\HostHeaderValidation=false
Connection\UPnP=false
Downloads\SavePath=%s
General\Locale=en
`, btPort, save, addr, webPort, save)
	dir := filepath.Join(profile, "qBittorrent", "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "qBittorrent.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	q := &qbit{t: t, api: fmt.Sprintf("http://127.0.0.1:%d/api/v2", webPort), save: save, profile: profile}
	q.proc = start(t, "qbittorrent-nox", "--profile="+profile, fmt.Sprintf("--webui-port=%d", webPort))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, ctx, "qbittorrent's WebUI", func() bool {
		resp, err := http.Get(q.api + "/app/version")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return q
}

// add uploads a .torrent file to qBittorrent, saving into its save folder.
func (q *qbit) add(torrent string) {
	q.t.Helper()
	raw, err := os.ReadFile(torrent)
	if err != nil {
		q.t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("torrents", filepath.Base(torrent))
	fw.Write(raw)
	mw.WriteField("savepath", q.save)
	mw.Close()
	resp, err := http.Post(q.api+"/torrents/add", mw.FormDataContentType(), &body)
	if err != nil {
		q.t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(msg) != "Ok." {
		q.t.Fatalf("qbittorrent add: %d %s", resp.StatusCode, msg)
	}
}

type qbitTorrent struct {
	Hash     string  `json:"hash"`
	Progress float64 `json:"progress"`
	State    string  `json:"state"`
}

func (q *qbit) torrents() []qbitTorrent {
	resp, err := http.Get(q.api + "/torrents/info")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []qbitTorrent
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// diagnose describes qBittorrent's torrents and their trackers, for a failure message.
func (q *qbit) diagnose() string {
	var b strings.Builder
	if log, err := os.ReadFile(filepath.Join(q.profile, "qBittorrent", "data", "logs", "qbittorrent.log")); err == nil {
		fmt.Fprintf(&b, "log:\n%s\n", log)
	}
	for _, tr := range q.torrents() {
		fmt.Fprintf(&b, "torrent %s progress %.2f state %s; trackers: ", tr.Hash, tr.Progress, tr.State)
		if resp, err := http.Get(q.api + "/torrents/trackers?hash=" + tr.Hash); err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			b.Write(raw)
		}
		if resp, err := http.Get(q.api + "/sync/torrentPeers?hash=" + tr.Hash); err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			b.WriteString("; peers: ")
			b.Write(raw)
		}
	}
	return b.String()
}

// waitComplete waits until every torrent is fully downloaded.
func (q *qbit) waitComplete(ctx context.Context) {
	q.t.Helper()
	defer func() {
		if q.t.Failed() {
			q.t.Logf("qbittorrent: %s", q.diagnose())
		}
	}()
	waitFor(q.t, ctx, "qbittorrent to complete", func() bool {
		ts := q.torrents()
		if len(ts) == 0 {
			return false
		}
		for _, tr := range ts {
			if tr.Progress < 1 {
				return false
			}
		}
		return true
	})
}

// Transmission seeds, qBittorrent downloads through one node.
func TestTransmissionSeedsQbittorrentDownloads(t *testing.T) {
	qbitDownloadsFromTransmission(t, func(n *node.Node) string { return n.AnnounceURL() })
}

// The UDP tracker with a real client: qBittorrent's torrent has only the
// udp:// tracker (BEP 15, the passkey in the BEP 41 URL data, which
// libtorrent sends; transmission 3.00 and aria2 1.36 send no URL data, so
// no private UDP tracker can know their user). Transmission seeds over
// HTTP into the same swarm. qBittorrent learns the seeder over UDP, the
// data arrives whole, and its user's download is counted from its UDP
// announces alone.
func TestQbittorrentDownloadsOverUDPTracker(t *testing.T) {
	qbitDownloadsFromTransmission(t, func(n *node.Node) string {
		udp := n.UDPAnnounceURL()
		if !strings.HasPrefix(udp, "udp://127.0.0.1:") {
			t.Fatalf("UDP announce URL %q", udp)
		}
		return udp
	})
}

// qbitDownloadsFromTransmission has transmission seed a dataset over the
// node's HTTP tracker and qBittorrent download it with a torrent whose
// only tracker is tracker(n); the data must arrive whole and the
// downloader's stats show it.
func qbitDownloadsFromTransmission(t *testing.T, tracker func(*node.Node) string) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice, carol := addUser(t, n, "alice"), addUser(t, n, "carol")
	const size = 8 << 20
	d := makeDataset(t, n, alice, size)
	base := tracker(n)
	seedWithTransmission(t, torrentFor(t, d, alice, n.AnnounceURL()), d)
	waitFor(t, ctx, "the seeder in the swarm", func() bool {
		st, ok := n.Tracker().SwarmStats(d.sanitized.ID)
		return ok && st.Seeders >= 1
	})
	q := startQbit(t, "")
	t0 := time.Now()
	q.add(torrentFor(t, d, carol, base))
	q.waitComplete(ctx)
	t.Logf("qbittorrent downloaded %d MiB from transmission in %v", size>>20, time.Since(t0).Round(time.Millisecond))
	if fileSHA(t, filepath.Join(q.save, d.name)) != d.sha {
		t.Fatal("qbittorrent's copy differs from the source")
	}
	waitFor(t, ctx, "carol's download in the stats", func() bool {
		return n.Store().UserStats(carol.ID).Downloaded >= size && n.Store().TorrentStats(d.sanitized.ID).Snatches == 1
	})
}
