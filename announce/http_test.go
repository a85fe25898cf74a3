package announce

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/model"
)

// ann describes one HTTP announce.
type ann struct {
	ih             model.InfoHash
	id             [20]byte
	port           int
	up, down, left uint64
	event          string
	extra          string // more "&k=v" parameters
}

func (a ann) query() string {
	q := fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=%d&downloaded=%d&left=%d",
		url.QueryEscape(string(a.ih[:])), url.QueryEscape(string(a.id[:])), a.port, a.up, a.down, a.left)
	if a.event != "" {
		q += "&event=" + a.event
	}
	return q + a.extra
}

// serve answers a GET of target as if from remote, with optional headers
// ("Name: value" strings), through the tracker's own HTTP server's parser
// and responder (the path ServeTCP takes), and returns the body.
func serve(t testing.TB, tr *Tracker, remote, target string, headers ...string) []byte {
	t.Helper()
	raw := "GET " + target + " HTTP/1.1\r\nHost: tracker.example\r\n"
	for _, h := range headers {
		raw += h + "\r\n"
	}
	status, _, body := rawExchange(t, tr, remote, raw+"\r\n")
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d", target, status)
	}
	return body
}

// serveStd is serve through Handler (net/http).
func serveStd(t testing.TB, tr *Tracker, remote, target string, headers ...string) []byte {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		r.Header.Add(k, v)
	}
	w := httptest.NewRecorder()
	tr.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d", target, w.Code)
	}
	return w.Body.Bytes()
}

func announceVia(t testing.TB, tr *Tracker, remote, passkey string, a ann, headers ...string) map[string]any {
	t.Helper()
	return decodeDict(t, serve(t, tr, remote, "/"+passkey+"/announce?"+a.query(), headers...))
}

func failure(m map[string]any) string {
	s, _ := m["failure reason"].(string)
	return s
}

// compactPeers decodes a compact peer string of entries of size n (6 or 18).
func compactPeers(t testing.TB, s any, n int) []netip.AddrPort {
	t.Helper()
	if s == nil {
		return nil
	}
	b := []byte(s.(string))
	if len(b)%n != 0 {
		t.Fatalf("compact peers: length %d not a multiple of %d", len(b), n)
	}
	var out []netip.AddrPort
	for i := 0; i < len(b); i += n {
		ip, _ := netip.AddrFromSlice(b[i : i+n-2])
		out = append(out, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[i+n-2:])))
	}
	return out
}

type httpFixture struct {
	tr      *Tracker
	reg     *fakeRegistry
	sc      *fakeCommitter
	pk      string
	ih      model.InfoHash
	v1, v2  model.InfoHash
	disPK   string
	unknown model.InfoHash
}

func newHTTPFixture(t *testing.T, mod func(*Config)) *httpFixture {
	reg := newFakeRegistry()
	f := &httpFixture{reg: reg, sc: newFakeCommitter()}
	f.pk = reg.addUser(1, true)
	f.disPK = reg.addUser(2, false)
	f.ih = reg.addTorrent("genome.fa", 1<<30)
	f.v1, f.v2 = reg.addHybrid("proteome", 1<<30)
	copy(f.unknown[:], "unregistered-hash!!!")
	f.tr = newTestTracker(t, reg, f.sc, mod)
	return f
}

func TestHTTPFailures(t *testing.T) {
	f := newHTTPFixture(t, func(c *Config) { c.AllowIPParam = true })
	good := ann{ih: f.ih, id: peerID(1), port: 6881, left: 10}
	base := good.query()
	without := func(param string) string {
		var parts []string
		for _, p := range strings.Split(base, "&") {
			if !strings.HasPrefix(p, param+"=") {
				parts = append(parts, p)
			}
		}
		return strings.Join(parts, "&")
	}
	badClient := good
	copy(badClient.id[:], "-XX0001-abcdefghijkl")
	unreg := good
	unreg.ih = f.unknown
	tests := []struct {
		name, path, want string
	}{
		{"unknown passkey", "/" + strings.Repeat("0", 32) + "/announce?" + base, "unknown passkey"},
		{"malformed passkey", "/NOTHEX/announce?" + base, "passkey in the announce URL is malformed"},
		{"upper-case passkey", "/" + strings.ToUpper(f.pk) + "/announce?" + base, "malformed"},
		{"no passkey", "/announce?" + base, "malformed"},
		{"disabled account", "/" + f.disPK + "/announce?" + base, "account is disabled"},
		{"unregistered torrent", "/" + f.pk + "/announce?" + unreg.query(), "not registered"},
		{"client not allowed", "/" + f.pk + "/announce?" + badClient.query(), "client is not on"},
		{"missing info_hash", "/" + f.pk + "/announce?" + without("info_hash"), "info_hash: missing"},
		{"missing peer_id", "/" + f.pk + "/announce?" + without("peer_id"), "peer_id: missing"},
		{"missing port", "/" + f.pk + "/announce?" + without("port"), "port: missing"},
		{"missing uploaded", "/" + f.pk + "/announce?" + without("uploaded"), "uploaded: missing"},
		{"missing downloaded", "/" + f.pk + "/announce?" + without("downloaded"), "downloaded: missing"},
		{"missing left", "/" + f.pk + "/announce?" + without("left"), "left: missing"},
		{"short info_hash", "/" + f.pk + "/announce?" + without("info_hash") + "&info_hash=abc", "info_hash: must be 20 bytes, got 3"},
		{"bad escape", "/" + f.pk + "/announce?" + without("info_hash") + "&info_hash=%zz" + strings.Repeat("a", 18), "info_hash: malformed"},
		{"long peer_id", "/" + f.pk + "/announce?" + without("peer_id") + "&peer_id=" + strings.Repeat("a", 21), "peer_id: malformed"},
		{"port zero", "/" + f.pk + "/announce?" + without("port") + "&port=0", "port: must be between"},
		{"port too big", "/" + f.pk + "/announce?" + without("port") + "&port=65536", "port: must be between"},
		{"uploaded not a number", "/" + f.pk + "/announce?" + without("uploaded") + "&uploaded=12x", "uploaded: not a number"},
		{"downloaded negative", "/" + f.pk + "/announce?" + without("downloaded") + "&downloaded=-5", "downloaded: not a number"},
		{"left overflow", "/" + f.pk + "/announce?" + without("left") + "&left=99999999999999999999", "left: too large"},
		{"bad event", "/" + f.pk + "/announce?" + base + "&event=finished", "event: must be"},
		{"bad numwant", "/" + f.pk + "/announce?" + base + "&numwant=lots", "numwant: not a number"},
		{"duplicate port", "/" + f.pk + "/announce?" + base + "&port=1", "port: given more than once"},
		{"bad ip", "/" + f.pk + "/announce?" + base + "&ip=example.org", "ip: must be an IPv4 or IPv6 address"},
		{"long key", "/" + f.pk + "/announce?" + base + "&key=" + strings.Repeat("k", 200), "key: too long"},
		{"scrape unknown passkey", "/" + strings.Repeat("1", 32) + "/scrape?info_hash=" + url.QueryEscape(string(f.ih[:])), "unknown passkey"},
		{"scrape disabled", "/" + f.disPK + "/scrape?info_hash=" + url.QueryEscape(string(f.ih[:])), "account is disabled"},
		{"scrape without hash", "/" + f.pk + "/scrape", "info_hash: missing"},
		{"scrape bad hash", "/" + f.pk + "/scrape?info_hash=xyz", "info_hash: must be 20 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := serve(t, f.tr, "192.0.2.7:5000", tc.path)
			m := decodeDict(t, body)
			if got := failure(m); !strings.Contains(got, tc.want) {
				t.Fatalf("failure reason %q, want it to contain %q", got, tc.want)
			}
			if len(m) != 1 {
				t.Fatalf("failure response has extra keys: %v", m)
			}
			if std := serveStd(t, f.tr, "192.0.2.7:5000", tc.path); string(std) != string(body) {
				t.Fatalf("net/http handler answered %q, own server %q", std, body)
			}
		})
	}
	if n := f.tr.peers.Len(); n != 0 {
		t.Fatalf("failed announces left %d peers", n)
	}
	if fs := f.tr.acct.take(0, numStatsShards, nil, nil, nil); !fs.empty() {
		t.Fatalf("failed announces touched stats: %+v", fs)
	}
}

func TestHTTPNotTrackerPaths(t *testing.T) {
	f := newHTTPFixture(t, nil)
	h := f.tr.Handler()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/", 404},
		{"GET", "/" + f.pk + "/other", 404},
		{"POST", "/" + f.pk + "/announce", 405},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.code)
		}
	}
}

// TestHTTPCompactRoundTrip runs a real listener on 127.0.0.1 and checks
// compact IPv4 peer lists, counts, interval, tracker id and numwant.
func TestHTTPCompactRoundTrip(t *testing.T) {
	f := newHTTPFixture(t, func(c *Config) { c.NumWantMax = 4 })
	srv := httptest.NewServer(f.tr.Handler())
	defer srv.Close()
	get := func(a ann) map[string]any {
		t.Helper()
		resp, err := http.Get(srv.URL + "/" + f.pk + "/announce?" + a.query())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("content type %q", ct)
		}
		return decodeDict(t, b)
	}
	// Three seeders, three leechers.
	for i := range 6 {
		left := uint64(0)
		if i >= 3 {
			left = 100
		}
		m := get(ann{ih: f.ih, id: peerID(i), port: 7000 + i, left: left, event: "started"})
		if r := failure(m); r != "" {
			t.Fatal(r)
		}
	}
	m := get(ann{ih: f.ih, id: peerID(99), port: 7099, left: 5, extra: "&numwant=10&compact=1"})
	if m["complete"] != int64(3) || m["incomplete"] != int64(4) || m["downloaded"] != int64(0) {
		t.Fatalf("counts: %v", m)
	}
	if m["interval"] != int64(1800) || m["min interval"] != int64(60) || m["tracker id"] != "node-a" {
		t.Fatalf("interval/tracker id: %v", m)
	}
	peers := compactPeers(t, m["peers"], 6)
	if len(peers) != 4 { // NumWantMax caps numwant=10
		t.Fatalf("got %d peers, want 4: %v", len(peers), peers)
	}
	seen := map[uint16]bool{}
	for _, p := range peers {
		if p.Addr() != netip.MustParseAddr("127.0.0.1") || p.Port() < 7000 || p.Port() > 7005 || seen[p.Port()] {
			t.Fatalf("bad peer %v in %v", p, peers)
		}
		seen[p.Port()] = true
	}
	if _, ok := m["peers6"]; ok {
		t.Fatalf("peers6 present without IPv6 peers")
	}
	// A seeder gets only leechers, never itself.
	m = get(ann{ih: f.ih, id: peerID(0), port: 7000, left: 0, extra: "&numwant=50"})
	for _, p := range compactPeers(t, m["peers"], 6) {
		if p.Port() < 7003 {
			t.Fatalf("seeder got seeder or itself: %v", p)
		}
	}
	// numwant=0 gives no peers; default numwant (capped) gives 4.
	if m = get(ann{ih: f.ih, id: peerID(3), port: 7003, left: 1, extra: "&numwant=0"}); m["peers"] != "" {
		t.Fatalf("numwant=0 gave %q", m["peers"])
	}
	if m = get(ann{ih: f.ih, id: peerID(3), port: 7003, left: 1}); len(compactPeers(t, m["peers"], 6)) != 4 {
		t.Fatalf("default numwant: %v", m)
	}
	// stopped removes the peer and returns no peers.
	m = get(ann{ih: f.ih, id: peerID(3), port: 7003, left: 1, event: "stopped"})
	if m["incomplete"] != int64(3) || m["peers"] != "" {
		t.Fatalf("after stopped: %v", m)
	}
}

func TestHTTPNumWantDefault(t *testing.T) {
	f := newHTTPFixture(t, nil)
	for i := range 60 {
		announceVia(t, f.tr, "127.0.0.1:1", f.pk, ann{ih: f.ih, id: peerID(i), port: 1000 + i, left: 1})
	}
	m := announceVia(t, f.tr, "127.0.0.1:1", f.pk, ann{ih: f.ih, id: peerID(100), port: 9, left: 1})
	if n := len(compactPeers(t, m["peers"], 6)); n != 50 {
		t.Fatalf("default numwant gave %d peers, want 50", n)
	}
}

// TestHTTPIPv6 serves on [::1] when the machine has it: the client's IPv6
// address lands in peers6 (BEP 7).
func TestHTTPIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	f := newHTTPFixture(t, nil)
	srv := httptest.NewUnstartedServer(f.tr.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	for i := range 2 {
		resp, err := http.Get(srv.URL + "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(i), port: 51000 + i, left: 1}.query())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := decodeDict(t, b)
		if i == 1 {
			p6 := compactPeers(t, m["peers6"], 18)
			if len(p6) != 1 || p6[0] != netip.MustParseAddrPort("[::1]:51000") {
				t.Fatalf("peers6 = %v (%v)", p6, m)
			}
			if m["peers"] != "" {
				t.Fatalf("peers = %q, want empty", m["peers"])
			}
		}
	}
}

// TestHTTPDualStack: one client (one peer_id) announcing over IPv4 and IPv6
// is one peer with two addresses, counted once, listed in peers and peers6.
func TestHTTPDualStack(t *testing.T) {
	f := newHTTPFixture(t, nil)
	a := ann{ih: f.ih, id: peerID(1), port: 6881, left: 10, event: "started"}
	announceVia(t, f.tr, "198.51.100.1:40000", f.pk, a)
	announceVia(t, f.tr, "[2001:db8::1]:40000", f.pk, a)
	a.up, a.down, a.event = 1000, 500, ""
	announceVia(t, f.tr, "198.51.100.1:40000", f.pk, a)
	announceVia(t, f.tr, "[2001:db8::1]:40000", f.pk, a) // same numbers again
	m := announceVia(t, f.tr, "198.51.100.2:1", f.pk, ann{ih: f.ih, id: peerID(2), port: 6882, left: 10})
	if m["incomplete"] != int64(2) {
		t.Fatalf("dual-stack peer counted twice: %v", m)
	}
	p4, p6 := compactPeers(t, m["peers"], 6), compactPeers(t, m["peers6"], 18)
	if len(p4) != 1 || p4[0] != netip.MustParseAddrPort("198.51.100.1:6881") ||
		len(p6) != 1 || p6[0] != netip.MustParseAddrPort("[2001:db8::1]:6881") {
		t.Fatalf("peers %v peers6 %v", p4, p6)
	}
	fs := f.tr.acct.take(0, numStatsShards, nil, nil, nil)
	if len(fs.deltas) != 1 || fs.deltas[0].Uploaded != 1000 || fs.deltas[0].Downloaded != 500 {
		t.Fatalf("deltas %+v, want one delta of 1000/500", fs.deltas)
	}
}

func TestHTTPNonCompact(t *testing.T) {
	f := newHTTPFixture(t, nil)
	announceVia(t, f.tr, "198.51.100.1:1", f.pk, ann{ih: f.ih, id: peerID(1), port: 6881, left: 1})
	announceVia(t, f.tr, "[2001:db8::5]:1", f.pk, ann{ih: f.ih, id: peerID(2), port: 6882, left: 1})
	m := announceVia(t, f.tr, "198.51.100.3:1", f.pk, ann{ih: f.ih, id: peerID(3), port: 6883, left: 1, extra: "&compact=0"})
	list, ok := m["peers"].([]any)
	if !ok || len(list) != 2 {
		t.Fatalf("peers: %#v", m["peers"])
	}
	got := map[string]bool{}
	for _, e := range list {
		d := e.(map[string]any)
		id := d["peer id"].(string)
		got[fmt.Sprintf("%s %v %s", d["ip"], d["port"], id[:8])] = true
	}
	if !got["198.51.100.1 6881 -qB4520-"] || !got["2001:db8::5 6882 -qB4520-"] {
		t.Fatalf("peers: %v", got)
	}
	m = announceVia(t, f.tr, "198.51.100.3:1", f.pk, ann{ih: f.ih, id: peerID(3), port: 6883, left: 1, extra: "&compact=0&no_peer_id=1"})
	for _, e := range m["peers"].([]any) {
		if _, has := e.(map[string]any)["peer id"]; has {
			t.Fatalf("no_peer_id ignored: %v", e)
		}
	}
}

// TestHTTPHybridScrape: both hashes of a hybrid torrent are one swarm;
// scrape answers several hashes, leaves out unregistered ones and counts
// completed downloads.
func TestHTTPHybridScrape(t *testing.T) {
	f := newHTTPFixture(t, nil)
	announceVia(t, f.tr, "198.51.100.1:1", f.pk, ann{ih: f.v1, id: peerID(1), port: 6881, left: 0})
	m := announceVia(t, f.tr, "198.51.100.2:1", f.pk, ann{ih: f.v2, id: peerID(2), port: 6882, left: 100, event: "started"})
	if p := compactPeers(t, m["peers"], 6); len(p) != 1 || p[0].Port() != 6881 {
		t.Fatalf("v2 announcer did not get the v1 seeder: %v", m)
	}
	m = announceVia(t, f.tr, "198.51.100.2:1", f.pk, ann{ih: f.v2, id: peerID(2), port: 6882, left: 0, down: 100, event: "completed"})
	if m["complete"] != int64(2) || m["downloaded"] != int64(1) {
		t.Fatalf("after completed: %v", m)
	}
	// completed again from the same peer is not a second snatch.
	announceVia(t, f.tr, "198.51.100.2:1", f.pk, ann{ih: f.v1, id: peerID(2), port: 6882, left: 0, down: 100, event: "completed"})
	announceVia(t, f.tr, "198.51.100.3:1", f.pk, ann{ih: f.ih, id: peerID(3), port: 6883, left: 9})

	q := "info_hash=" + url.QueryEscape(string(f.v2[:])) + "&info_hash=" + url.QueryEscape(string(f.ih[:])) +
		"&info_hash=" + url.QueryEscape(string(f.unknown[:])) + "&info_hash=" + url.QueryEscape(string(f.v1[:])) +
		"&info_hash=" + url.QueryEscape(string(f.ih[:]))
	m = decodeDict(t, serve(t, f.tr, "198.51.100.9:1", "/"+f.pk+"/scrape?"+q))
	files := m["files"].(map[string]any)
	if len(files) != 3 {
		t.Fatalf("scrape files: %v", files)
	}
	want := map[model.InfoHash][3]int64{f.v1: {2, 1, 0}, f.v2: {2, 1, 0}, f.ih: {0, 0, 1}}
	for h, w := range want {
		d, ok := files[string(h[:])].(map[string]any)
		if !ok || d["complete"] != w[0] || d["downloaded"] != w[1] || d["incomplete"] != w[2] {
			t.Fatalf("scrape %x: %v, want %v", h, d, w)
		}
	}
	st, ok := f.tr.SwarmStats(f.v2)
	if !ok || st != (SwarmStats{Seeders: 2, Snatches: 1}) {
		t.Fatalf("SwarmStats = %+v %v", st, ok)
	}
	if _, ok := f.tr.SwarmStats(f.unknown); ok {
		t.Fatal("SwarmStats of an unregistered hash")
	}
	fs := f.tr.acct.take(0, numStatsShards, nil, nil, nil)
	if len(fs.deltas) != 1 || fs.deltas[0].Torrent != f.v1 || fs.deltas[0].Snatches != 1 || fs.deltas[0].Downloaded != 100 {
		t.Fatalf("hybrid deltas: %+v", fs.deltas)
	}
}

func TestHTTPScrapeLimit(t *testing.T) {
	f := newHTTPFixture(t, func(c *Config) { c.MaxScrapeHashes = 2 })
	q := strings.Repeat("info_hash="+url.QueryEscape(string(f.ih[:]))+"&", 3)
	m := decodeDict(t, serve(t, f.tr, "198.51.100.9:1", "/"+f.pk+"/scrape?"+q))
	if !strings.Contains(failure(m), "too many") {
		t.Fatalf("scrape limit: %v", m)
	}
}

// TestHTTPClientAddress covers trusted-proxy rules and the ip parameter.
func TestHTTPClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name     string
		allowIP  bool
		remote   string
		extra    string
		headers  []string
		want     string // listed address, or "fail:<substring>"
		wantPort uint16
	}{
		{name: "direct", remote: "203.0.113.5:999", want: "203.0.113.5"},
		{name: "untrusted XFF ignored", remote: "203.0.113.5:999", headers: []string{"X-Forwarded-For: 198.51.100.1"}, want: "203.0.113.5"},
		{name: "untrusted X-Real-IP ignored", remote: "203.0.113.5:999", headers: []string{"X-Real-IP: 198.51.100.1"}, want: "203.0.113.5"},
		{name: "trusted XFF", remote: "10.1.2.3:999", headers: []string{"X-Forwarded-For: 198.51.100.1"}, want: "198.51.100.1"},
		{name: "trusted XFF chain takes rightmost untrusted", remote: "10.1.2.3:999", headers: []string{"X-Forwarded-For: 192.0.2.66, 198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
		{name: "trusted XFF several headers", remote: "10.1.2.3:999", headers: []string{"X-Forwarded-For: 192.0.2.66", "X-Forwarded-For: 10.2.2.2"}, want: "192.0.2.66"},
		{name: "trusted XFF all proxies", remote: "10.1.2.3:999", headers: []string{"X-Forwarded-For: 10.5.5.5, 10.6.6.6"}, want: "10.5.5.5"},
		{name: "trusted XFF IPv6 with port", remote: "[::1]:999", headers: []string{"X-Forwarded-For: [2001:db8::7]:4444"}, want: "2001:db8::7"},
		{name: "trusted X-Real-IP", remote: "10.1.2.3:999", headers: []string{"X-Real-IP: 198.51.100.4"}, want: "198.51.100.4"},
		{name: "trusted no header", remote: "10.1.2.3:999", want: "fail:proxy"},
		{name: "trusted garbage XFF", remote: "10.1.2.3:999", headers: []string{"X-Forwarded-For: not-an-ip"}, want: "fail:proxy"},
		{name: "mapped IPv4 remote", remote: "[::ffff:203.0.113.9]:1", want: "203.0.113.9"},
		{name: "ip param ignored", remote: "203.0.113.5:999", extra: "&ip=198.51.100.77", want: "203.0.113.5"},
		{name: "ip param allowed", allowIP: true, remote: "203.0.113.5:999", extra: "&ip=198.51.100.77", want: "198.51.100.77"},
		{name: "ip param IPv6 allowed", allowIP: true, remote: "203.0.113.5:999", extra: "&ip=2001%3Adb8%3A%3A9", want: "2001:db8::9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newHTTPFixture(t, func(c *Config) {
				c.TrustedProxies = proxies
				c.AllowIPParam = tc.allowIP
			})
			m := announceVia(t, f.tr, tc.remote, f.pk, ann{ih: f.ih, id: peerID(1), port: 6881, left: 1, extra: tc.extra}, tc.headers...)
			if want, ok := strings.CutPrefix(tc.want, "fail:"); ok {
				if !strings.Contains(failure(m), want) {
					t.Fatalf("got %v, want failure with %q", m, want)
				}
				if f.tr.peers.Len() != 0 {
					t.Fatal("failed announce added a peer")
				}
				return
			}
			if r := failure(m); r != "" {
				t.Fatal(r)
			}
			var got []netip.AddrPort
			f.tr.peers.LocalPeers(func(_ model.InfoHash, p Peer, _ uint64) bool {
				got = append(got, p.Addr)
				return true
			})
			want := netip.AddrPortFrom(netip.MustParseAddr(tc.want), 6881)
			if len(got) != 1 || got[0] != want {
				t.Fatalf("listed %v, want %v", got, want)
			}
		})
	}
}

// discardWriter is a reusable ResponseWriter for benchmarks.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkAnnounceHTTP measures a compact announce into a swarm of 1000
// peers answered with 50 peers, calling the handler directly.
func BenchmarkAnnounceHTTP(b *testing.B) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("bench", 1<<40)
	tr := newTestTracker(b, reg, newFakeCommitter(), nil)
	h := tr.Handler()
	for i := range 1000 {
		serve(b, tr, fmt.Sprintf("10.0.%d.%d:1", i/250, i%250+1), "/"+pk+"/announce?"+ann{ih: ih, id: peerID(i), port: 6881, left: uint64(i % 2)}.query())
	}
	r := httptest.NewRequest(http.MethodGet, "/"+pk+"/announce?"+ann{ih: ih, id: peerID(5000), port: 6881, left: 1, extra: "&key=abcd1234&compact=1"}.query(), nil)
	r.RemoteAddr = "192.0.2.1:5555"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// registered returns the total size of the torrent whose ID is h if its
// swarm holds it under registry generation gen.
func (s *PeerStore) registered(h model.InfoHash, gen uint64) (totalSize int64, ok bool) {
	sh := s.shard(h)
	sh.mu.Lock()
	sw, ok := sh.swarms.get(&h)
	sh.mu.Unlock()
	if !ok || gen == 0 || sw.regGen != gen {
		return 0, false
	}
	return sw.totalSize, true
}

// TestSwarmKeepsTorrentLookup: a swarm keeps its torrent's registry answer
// while the registry's generation stands, so re-announces skip the lookup;
// any registry change makes the next announce look again, so a torrent
// removed from the catalog is refused at once and a changed size is used.
// The truncated v2 hash of a hybrid has no swarm of its own: always looked up.
func TestSwarmKeepsTorrentLookup(t *testing.T) {
	f := newHTTPFixture(t, nil)
	lookups := func() int64 { return f.reg.torrentLookups.Load() }
	a := ann{ih: f.ih, id: peerID(1), port: 6881, left: 100, event: "started"}
	announceVia(t, f.tr, "198.51.100.1:1", f.pk, a)
	before := lookups()
	for i := range 5 {
		a.event, a.down = "", uint64(i)
		if m := announceVia(t, f.tr, "198.51.100.1:1", f.pk, a); failure(m) != "" {
			t.Fatalf("re-announce: %v", m)
		}
	}
	if n := lookups() - before; n != 0 {
		t.Fatalf("%d torrent lookups for 5 re-announces of a kept torrent, want 0", n)
	}
	// A client not on the list is refused on a kept torrent too, and
	// changes nothing.
	var badID [20]byte
	copy(badID[:], "-XX0001-abcdefghijkl")
	if m := announceVia(t, f.tr, "198.51.100.9:1", f.pk, ann{ih: f.ih, id: badID, port: 6889, left: 5, event: "started"}); failure(m) != ErrClientNotAllowed.Error() {
		t.Fatalf("announce of a client not allowed: %v", m)
	}
	if s, l, _ := f.tr.peers.Counts(f.ih); s != 0 || l != 1 {
		t.Fatalf("after a refused client: %d seeders, %d leechers; want 0 and 1", s, l)
	}
	before = lookups()
	// A registry change (another torrent) costs one lookup, then none.
	f.reg.addTorrent("other", 5)
	announceVia(t, f.tr, "198.51.100.1:1", f.pk, a)
	announceVia(t, f.tr, "198.51.100.1:1", f.pk, a)
	if n := lookups() - before; n != 1 {
		t.Fatalf("%d torrent lookups after a registry change, want 1", n)
	}
	// Removed from the catalog: refused, swarm untouched.
	f.reg.removeTorrent(f.ih)
	m := announceVia(t, f.tr, "198.51.100.2:1", f.pk, ann{ih: f.ih, id: peerID(2), port: 6882, left: 100, event: "started"})
	if failure(m) != ErrUnregisteredTorrent.Error() {
		t.Fatalf("announce of a removed torrent: %v", m)
	}
	if s, l, _ := f.tr.peers.Counts(f.ih); s != 0 || l != 1 {
		t.Fatalf("swarm of the removed torrent: %d seeders, %d leechers; want 0 and 1", s, l)
	}
	// Registered again with another size: the new size applies (a 2 KiB
	// torrent cannot download 128 MiB more).
	f.reg.mu.Lock()
	f.reg.torrents[f.ih] = model.TorrentRef{ID: f.ih, TotalSize: 2048}
	f.reg.mu.Unlock()
	f.reg.gen.Add(1)
	f.tr.acct.take(0, numStatsShards, nil, nil, nil)
	a.down = 5 + 1<<27 // under the rate limit, over 2 KiB + JumpSlack
	announceVia(t, f.tr, "198.51.100.1:1", f.pk, a)
	if sz, ok := f.tr.peers.registered(f.ih, f.reg.TorrentGeneration()); !ok || sz != 2048 {
		t.Fatalf("kept size %d %v, want 2048", sz, ok)
	}
	if fs := f.tr.acct.take(0, numStatsShards, nil, nil, nil); len(fs.deltas) != 0 {
		t.Fatalf("a download above the new size was counted: %+v", fs.deltas)
	}
	// The v2 hash of a hybrid is looked up every time.
	before = lookups()
	for i := range 3 {
		announceVia(t, f.tr, "198.51.100.3:1", f.pk, ann{ih: f.v2, id: peerID(3), port: 6883, left: 1, down: uint64(i)})
	}
	if n := lookups() - before; n != 3 {
		t.Fatalf("%d lookups for 3 announces of a v2 hash, want 3", n)
	}
}
