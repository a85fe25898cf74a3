package announce

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// udpClient speaks BEP 15 over a real socket.
type udpClient struct {
	t    testing.TB
	conn *net.UDPConn
	to   *net.UDPAddr
	tid  uint32
}

func newUDPClient(t testing.TB, network string, to net.Addr) *udpClient {
	t.Helper()
	conn, err := net.DialUDP(network, nil, to.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpClient{t: t, conn: conn, to: to.(*net.UDPAddr)}
}

// roundTrip sends pkt and returns the answer, or nil after a short wait.
func (c *udpClient) roundTrip(pkt []byte, wait time.Duration) []byte {
	c.t.Helper()
	if _, err := c.conn.Write(pkt); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	c.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := c.conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		c.t.Fatal(err)
	}
	return buf[:n]
}

func (c *udpClient) header(connID uint64, action uint32) []byte {
	c.tid++
	b := binary.BigEndian.AppendUint64(nil, connID)
	b = binary.BigEndian.AppendUint32(b, action)
	return binary.BigEndian.AppendUint32(b, c.tid)
}

func (c *udpClient) connect() uint64 {
	c.t.Helper()
	resp := c.roundTrip(c.header(udpProtocolID, udpActionConnect), 2*time.Second)
	if len(resp) != 16 || binary.BigEndian.Uint32(resp) != udpActionConnect || binary.BigEndian.Uint32(resp[4:]) != c.tid {
		c.t.Fatalf("connect response %x", resp)
	}
	return binary.BigEndian.Uint64(resp[8:])
}

type udpAnn struct {
	ih             model.InfoHash
	id             [20]byte
	down, left, up uint64
	event          uint32
	ip             [4]byte
	numWant        int32
	port           uint16
	opts           []byte
}

func (c *udpClient) announcePacket(connID uint64, a udpAnn) []byte {
	b := c.header(connID, udpActionAnnounce)
	return appendUDPAnnounce(b, a)
}

func appendUDPAnnounce(b []byte, a udpAnn) []byte {
	b = append(b, a.ih[:]...)
	b = append(b, a.id[:]...)
	b = binary.BigEndian.AppendUint64(b, a.down)
	b = binary.BigEndian.AppendUint64(b, a.left)
	b = binary.BigEndian.AppendUint64(b, a.up)
	b = binary.BigEndian.AppendUint32(b, a.event)
	b = append(b, a.ip[:]...)
	b = binary.BigEndian.AppendUint32(b, 0xabcd)
	b = binary.BigEndian.AppendUint32(b, uint32(a.numWant))
	b = binary.BigEndian.AppendUint16(b, a.port)
	return append(b, a.opts...)
}

// urlOpts encodes path as BEP 41 URL data, split into options of at most
// chunk bytes, with a NOP in front and an end marker.
func urlOpts(path string, chunk int) []byte {
	b := []byte{1}
	for len(path) > 0 {
		n := min(chunk, len(path))
		b = append(b, 2, byte(n))
		b = append(b, path[:n]...)
		path = path[n:]
	}
	return append(b, 0)
}

func errorText(t testing.TB, resp []byte) string {
	t.Helper()
	if len(resp) < 8 || binary.BigEndian.Uint32(resp) != udpActionError {
		t.Fatalf("want error packet, got %x", resp)
	}
	return string(resp[8:])
}

func startUDP(t testing.TB, tr *Tracker, network, addr string) net.Addr {
	t.Helper()
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.ServeUDP(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
		conn.Close()
	})
	return conn.LocalAddr()
}

func TestUDPRoundTrip(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr := startUDP(t, f.tr, "udp4", "127.0.0.1:0")
	c := newUDPClient(t, "udp4", addr)
	cid := c.connect()
	path := "/" + f.pk + "/announce?x=1"

	// Seeder announces with the passkey split over three options.
	resp := c.roundTrip(c.announcePacket(cid, udpAnn{ih: f.v1, id: peerID(1), left: 0, event: 2, numWant: -1, port: 6881, opts: urlOpts(path, 15)}), 2*time.Second)
	if len(resp) != 20 || binary.BigEndian.Uint32(resp) != udpActionAnnounce || binary.BigEndian.Uint32(resp[4:]) != c.tid {
		t.Fatalf("announce response %x", resp)
	}
	// Leecher on the v2 hash of the same hybrid torrent gets the seeder.
	c2 := newUDPClient(t, "udp4", addr)
	cid2 := c2.connect()
	resp = c2.roundTrip(c2.announcePacket(cid2, udpAnn{ih: f.v2, id: peerID(2), left: 5, event: 2, numWant: 10, port: 6882, opts: urlOpts(path, 255)}), 2*time.Second)
	if len(resp) != 26 {
		t.Fatalf("announce response %x", resp)
	}
	if iv, le, se := binary.BigEndian.Uint32(resp[8:]), binary.BigEndian.Uint32(resp[12:]), binary.BigEndian.Uint32(resp[16:]); iv != 1800 || le != 1 || se != 1 {
		t.Fatalf("interval %d leechers %d seeders %d", iv, le, se)
	}
	if p := compactPeers(t, string(resp[20:]), 6); p[0] != netip.MustParseAddrPort("127.0.0.1:6881") {
		t.Fatalf("peer %v", p)
	}
	// The leecher completes: a snatch.
	c2.roundTrip(c2.announcePacket(cid2, udpAnn{ih: f.v2, id: peerID(2), down: 5, left: 0, event: 1, numWant: 10, port: 6882, opts: urlOpts(path, 255)}), 2*time.Second)

	// Scrape three hashes: hybrid v1, plain torrent, unregistered.
	pkt := c.header(cid, udpActionScrape)
	pkt = append(pkt, f.v1[:]...)
	pkt = append(pkt, f.ih[:]...)
	pkt = append(pkt, f.unknown[:]...)
	resp = c.roundTrip(pkt, 2*time.Second)
	if len(resp) != 8+3*12 || binary.BigEndian.Uint32(resp) != udpActionScrape {
		t.Fatalf("scrape response %x", resp)
	}
	got := [9]uint32{}
	for i := range got {
		got[i] = binary.BigEndian.Uint32(resp[8+4*i:])
	}
	if got != [9]uint32{2, 1, 0, 0, 0, 0, 0, 0, 0} {
		t.Fatalf("scrape = %v", got)
	}
	// Stopped removes the peer.
	resp = c.roundTrip(c.announcePacket(cid, udpAnn{ih: f.v1, id: peerID(1), event: 3, numWant: -1, port: 6881, opts: urlOpts(path, 255)}), 2*time.Second)
	if binary.BigEndian.Uint32(resp[16:]) != 1 || len(resp) != 20 {
		t.Fatalf("after stopped: %x", resp)
	}
	fs := f.tr.acct.take(0, numStatsShards, nil, nil, nil)
	if len(fs.deltas) != 1 || fs.deltas[0].Downloaded != 5 || fs.deltas[0].Snatches != 1 || fs.deltas[0].Torrent != f.v1 {
		t.Fatalf("deltas %+v", fs.deltas)
	}
}

func TestUDPIPv6(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr := startUDP(t, f.tr, "udp6", "[::1]:0")
	path := "/" + f.pk + "/announce"
	var resp []byte
	for i := range 2 {
		c := newUDPClient(t, "udp6", addr)
		cid := c.connect()
		resp = c.roundTrip(c.announcePacket(cid, udpAnn{ih: f.ih, id: peerID(i), left: 1, numWant: -1, port: uint16(7000 + i), opts: urlOpts(path, 255)}), 2*time.Second)
	}
	if len(resp) != 20+18 {
		t.Fatalf("announce response %x", resp)
	}
	if p := compactPeers(t, string(resp[20:]), 18); p[0] != netip.MustParseAddrPort("[::1]:7000") {
		t.Fatalf("peer %v", p)
	}
}

func TestUDPErrors(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr := startUDP(t, f.tr, "udp4", "127.0.0.1:0")
	c := newUDPClient(t, "udp4", addr)
	cid := c.connect()
	path := "/" + f.pk + "/announce"
	good := udpAnn{ih: f.ih, id: peerID(1), left: 1, numWant: -1, port: 1, opts: urlOpts(path, 255)}
	mod := func(fn func(*udpAnn)) udpAnn { a := good; fn(&a); return a }
	badClient := mod(func(a *udpAnn) { copy(a.id[:], "-XX1234-") })
	tests := []struct {
		name string
		pkt  func() []byte
		want string // "" means no answer
	}{
		{"short packet", func() []byte { return []byte{1, 2, 3} }, ""},
		{"connect with wrong magic", func() []byte { return c.header(12345, udpActionConnect) }, ""},
		{"unknown action", func() []byte { return c.header(cid, 9) }, ""},
		{"bad connection id", func() []byte { return c.announcePacket(cid^1, good) }, "connection id expired"},
		{"short announce", func() []byte { return c.announcePacket(cid, good)[:60] }, "too short"},
		{"no passkey", func() []byte { return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = nil })) }, "passkey missing"},
		{"passkey-less path", func() []byte {
			return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = urlOpts("/announce", 255) }))
		}, "passkey missing"},
		{"truncated option", func() []byte { return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = []byte{2, 40, '/'} })) }, "bad BEP 41 options"},
		{"too much URL data", func() []byte {
			return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = urlOpts("/"+strings.Repeat("a", 600), 255) }))
		}, "bad BEP 41 options"},
		{"unknown event", func() []byte { return c.announcePacket(cid, mod(func(a *udpAnn) { a.event = 7 })) }, "unknown event"},
		{"passkey not lowercase hex", func() []byte {
			return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = urlOpts("/"+strings.Repeat("A", 32)+"/announce", 255) }))
		}, "passkey in the announce URL is malformed"},
		{"unknown passkey", func() []byte {
			return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = urlOpts("/"+strings.Repeat("0", 32)+"/announce", 255) }))
		}, "unknown passkey"},
		{"disabled", func() []byte {
			return c.announcePacket(cid, mod(func(a *udpAnn) { a.opts = urlOpts("/"+f.disPK+"/announce", 255) }))
		}, "disabled"},
		{"unregistered", func() []byte { return c.announcePacket(cid, mod(func(a *udpAnn) { a.ih = f.unknown })) }, "not registered"},
		{"client not allowed", func() []byte { return c.announcePacket(cid, badClient) }, "client is not on"},
		{"empty scrape", func() []byte { return c.header(cid, udpActionScrape) }, "malformed scrape"},
		{"ragged scrape", func() []byte { return append(c.header(cid, udpActionScrape), make([]byte, 30)...) }, "malformed scrape"},
		{"huge scrape", func() []byte { return append(c.header(cid, udpActionScrape), make([]byte, 75*20)...) }, "at most 74"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wait := 2 * time.Second
			if tc.want == "" {
				wait = 100 * time.Millisecond
			}
			resp := c.roundTrip(tc.pkt(), wait)
			if tc.want == "" {
				if resp != nil {
					t.Fatalf("answered %x", resp)
				}
				return
			}
			if got := errorText(t, resp); !strings.Contains(got, tc.want) || binary.BigEndian.Uint32(resp[4:]) != c.tid {
				t.Fatalf("error %q (tid %x), want %q", got, resp[4:8], tc.want)
			}
		})
	}
	if f.tr.peers.Len() != 0 {
		t.Fatal("failed announces added peers")
	}
	if fs := f.tr.acct.take(0, numStatsShards, nil, nil, nil); !fs.empty() {
		t.Fatal("failed announces touched stats")
	}
}

func TestConnIDWindows(t *testing.T) {
	var c connIDs
	if err := c.init(); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort("192.0.2.1:5000")
	now := time.Unix(1_700_000_000, 0)
	id := c.make(a, now, new(macBuf))
	for _, tc := range []struct {
		addr  netip.AddrPort
		later time.Duration
		ok    bool
	}{
		{a, 0, true},
		{a, connIDWindow, true},      // next window
		{a, 2 * connIDWindow, false}, // too old
		{a, -connIDWindow, false},    // from the future
		{netip.MustParseAddrPort("192.0.2.1:5001"), 0, false},
		{netip.MustParseAddrPort("192.0.2.2:5000"), 0, false},
	} {
		if got := c.valid(id, tc.addr, now.Add(tc.later), new(macBuf)); got != tc.ok {
			t.Errorf("valid(%v, +%v) = %v, want %v", tc.addr, tc.later, got, tc.ok)
		}
	}
	var other connIDs
	if err := other.init(); err != nil {
		t.Fatal(err)
	}
	if other.valid(id, a, now, new(macBuf)) {
		t.Error("id valid under another secret")
	}
}

// TestServeUDPStops checks ServeUDP returns nil on cancel and an error when
// the conn is closed under it.
func TestServeUDPStops(t *testing.T) {
	f := newHTTPFixture(t, nil)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tr.ServeUDP(ctx, conn) }()
	conn.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed conn: %v", err)
	}
	cancel()
}

// TestServeUDPStopsUnderLoad: ServeUDP returns soon after cancel even
// while datagrams keep arriving (its workers then never find the socket
// empty and never wait on the read deadline that stops them).
func TestServeUDPStopsUnderLoad(t *testing.T) {
	f := newHTTPFixture(t, nil)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tr.ServeUDP(ctx, conn) }()
	c := newUDPClient(t, "udp4", conn.LocalAddr())
	pkt := binary.BigEndian.AppendUint64(nil, udpProtocolID)
	pkt = append(pkt, 0, 0, 0, 0, 1, 2, 3, 4) // connect, transaction id
	if c.roundTrip(pkt, 2*time.Second) == nil {
		t.Fatal("no answer to connect")
	}
	stopSending := make(chan struct{})
	sent := make(chan int)
	go func() {
		n := 0
		defer func() { sent <- n }()
		for {
			select {
			case <-stopSending:
				return
			default:
			}
			if _, err := c.conn.Write(pkt); err == nil {
				n++
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeUDP after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUDP still serving 5 s after cancel under load")
	}
	close(stopSending)
	if n := <-sent; n == 0 {
		t.Fatal("no load was sent")
	}
}

// validUDPPacket makes fuzz and benchmark inputs: a packet from `from` with
// a valid connection id.
func validConnID(tr *Tracker, from netip.AddrPort) uint64 {
	return tr.conns.make(from, tr.now(), new(macBuf))
}

func FuzzUDPPacket(f *testing.F) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("fuzz", 1<<20)
	tr := newTestTracker(f, reg, newFakeCommitter(), nil)
	from := netip.MustParseAddrPort("192.0.2.1:6881")
	hdr := func(action uint32) []byte {
		b := binary.BigEndian.AppendUint64(nil, 0)
		b = binary.BigEndian.AppendUint32(b, action)
		return binary.BigEndian.AppendUint32(b, 0x01020304)
	}
	connect := binary.BigEndian.AppendUint64(nil, udpProtocolID)
	connect = binary.BigEndian.AppendUint32(connect, 0)
	connect = binary.BigEndian.AppendUint32(connect, 7)
	f.Add(true, connect)
	f.Add(true, appendUDPAnnounce(hdr(1), udpAnn{ih: ih, id: peerID(1), left: 1, numWant: -1, port: 1, opts: urlOpts("/"+pk+"/announce", 7)}))
	f.Add(true, appendUDPAnnounce(hdr(1), udpAnn{ih: ih, id: peerID(2), up: 1 << 40, event: 1, numWant: 300, port: 2, opts: []byte{1, 1, 5, 3, 'a', 'b', 'c', 2, 33, '/'}}))
	f.Add(true, append(hdr(2), ih[:]...))
	f.Add(false, append(hdr(1), make([]byte, 90)...))
	f.Add(true, hdr(3))
	st := tr.newUDPState()
	f.Fuzz(func(t *testing.T, validID bool, pkt []byte) {
		if validID && len(pkt) >= 8 && binary.BigEndian.Uint64(pkt) != udpProtocolID {
			binary.BigEndian.PutUint64(pkt, validConnID(tr, from))
		}
		// Warming reads the datagram before its answer does.
		tr.warmBatch(&memBatcher{pkts: [udpBatch][]byte{pkt, pkt}}, 2)
		resp := tr.handleUDP(st, pkt, from)
		if resp == nil {
			return
		}
		if len(resp) < 8 || len(resp) > udpBufSize {
			t.Fatalf("response length %d", len(resp))
		}
		if string(resp[4:8]) != string(pkt[12:16]) {
			t.Fatalf("transaction id not echoed")
		}
		switch binary.BigEndian.Uint32(resp) {
		case udpActionConnect:
			if len(resp) != 16 {
				t.Fatalf("connect response %d bytes", len(resp))
			}
		case udpActionAnnounce:
			if (len(resp)-20)%6 != 0 || len(resp) > 20+6*udpMaxPeers4 {
				t.Fatalf("announce response %d bytes", len(resp))
			}
		case udpActionScrape:
			if (len(resp)-8)%12 != 0 {
				t.Fatalf("scrape response %d bytes", len(resp))
			}
		case udpActionError:
		default:
			t.Fatalf("unknown action in response %x", resp)
		}
	})
}

// udpAnnounceFixture is a tracker with one swarm of n peers and a
// re-announce datagram of another peer of it (numwant 50), from its sender.
func udpAnnounceFixture(tb testing.TB, n int) (*Tracker, *udpState, []byte, netip.AddrPort) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("bench", 1<<40)
	tr := newTestTracker(tb, reg, newFakeCommitter(), nil)
	st := tr.newUDPState()
	for i := range n {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}), 6881)
		pkt := binary.BigEndian.AppendUint64(nil, validConnID(tr, from))
		pkt = binary.BigEndian.AppendUint32(pkt, udpActionAnnounce)
		pkt = binary.BigEndian.AppendUint32(pkt, 1)
		pkt = appendUDPAnnounce(pkt, udpAnn{ih: ih, id: peerID(i), left: uint64(i % 2), numWant: 0, port: 6881, opts: urlOpts("/"+pk+"/announce", 255)})
		if resp := tr.handleUDP(st, pkt, from); binary.BigEndian.Uint32(resp) != udpActionAnnounce {
			tb.Fatalf("setup announce: %q", resp)
		}
	}
	from := netip.MustParseAddrPort("192.0.2.1:6881")
	pkt := binary.BigEndian.AppendUint64(nil, validConnID(tr, from))
	pkt = binary.BigEndian.AppendUint32(pkt, udpActionAnnounce)
	pkt = binary.BigEndian.AppendUint32(pkt, 1)
	pkt = appendUDPAnnounce(pkt, udpAnn{ih: ih, id: peerID(5000), left: 1, numWant: 50, port: 6881, opts: urlOpts("/"+pk+"/announce", 255)})
	if resp := tr.handleUDP(st, pkt, from); binary.BigEndian.Uint32(resp) != udpActionAnnounce {
		tb.Fatalf("first announce: %q", resp)
	}
	return tr, st, pkt, from
}

// TestUDPAnnounceAllocs holds the UDP announce (datagram in, answer out,
// accounting included) to its budget of 0 allocations.
func TestUDPAnnounceAllocs(t *testing.T) {
	tr, st, pkt, from := udpAnnounceFixture(t, 100)
	if n := testing.AllocsPerRun(1000, func() { tr.handleUDP(st, pkt, from) }); n != 0 {
		t.Fatalf("%v allocations per UDP announce, want 0", n)
	}
}

// BenchmarkUDPAnnounce: one announce datagram into a swarm of 1000 peers,
// answered with 50 IPv4 peers. Budget: 0 allocations.
func BenchmarkUDPAnnounce(b *testing.B) {
	tr, st, pkt, from := udpAnnounceFixture(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if resp := tr.handleUDP(st, pkt, from); len(resp) != 20+50*6 {
			b.Fatalf("response %d bytes", len(resp))
		}
	}
}

// TestUDPNoAmplification: a short datagram with a bad connection id gets no
// answer larger than itself.
func TestUDPNoAmplification(t *testing.T) {
	f := newHTTPFixture(t, nil)
	st := f.tr.newUDPState()
	from := netip.MustParseAddrPort("192.0.2.1:1")
	for n := udpHeaderLen; n < 200; n++ {
		pkt := make([]byte, n)
		binary.BigEndian.PutUint32(pkt[8:], udpActionScrape)
		if resp := f.tr.handleUDP(st, pkt, from); len(resp) > len(pkt) {
			t.Fatalf("%d-byte datagram answered with %d bytes", n, len(resp))
		}
	}
}

// countingBatcher records the largest batch one read returned.
type countingBatcher struct {
	udpBatcher
	most atomic.Int32
}

func (c *countingBatcher) read() (int, error) {
	n, err := c.udpBatcher.read()
	if int32(n) > c.most.Load() {
		c.most.Store(int32(n))
	}
	return n, err
}

// TestUDPBatch queues datagrams of several clients before the worker reads:
// it takes them in batches (one system call for many) and every client gets
// the answer to each of its datagrams, with its own transaction id.
func TestUDPBatch(t *testing.T) {
	f := newHTTPFixture(t, nil)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const clients, each = 4, 25 // 100 datagrams, more than udpBatch
	cs := make([]*udpClient, clients)
	for i := range cs {
		cs[i] = newUDPClient(t, "udp4", conn.LocalAddr())
		cs[i].conn.SetReadBuffer(1 << 20)
	}
	conn.SetReadBuffer(1 << 20)
	for range each {
		for _, c := range cs {
			if _, err := c.conn.Write(c.header(udpProtocolID, udpActionConnect)); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := newUDPBatcher(conn, true)
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingBatcher{udpBatcher: b}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tr.udpWorker(ctx, cc) }()
	for i, c := range cs {
		seen := map[uint32]bool{}
		buf := make([]byte, 64)
		for range each {
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.conn.Read(buf)
			if err != nil {
				t.Fatalf("client %d after %d answers: %v", i, len(seen), err)
			}
			if n != 16 || binary.BigEndian.Uint32(buf) != udpActionConnect {
				t.Fatalf("client %d: answer %x", i, buf[:n])
			}
			tid := binary.BigEndian.Uint32(buf[4:])
			if tid < 1 || tid > each || seen[tid] {
				t.Fatalf("client %d: transaction id %d (seen %v)", i, tid, seen[tid])
			}
			seen[tid] = true
			local := c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
			if id := binary.BigEndian.Uint64(buf[8:]); !f.tr.conns.valid(id, local, f.tr.now(), new(macBuf)) {
				t.Fatalf("client %d: connection id not made for %v", i, local)
			}
		}
	}
	cancel()
	conn.SetReadDeadline(time.Unix(1, 0))
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if got := cc.most.Load(); got < 2 || got > udpBatch {
		t.Fatalf("largest read batch %d datagrams, want 2..%d", got, udpBatch)
	}
}

// TestUDPDualStack: a socket on [::] answers IPv4 clients (as IPv4 peers)
// and IPv6 clients through the same batched reads and writes.
func TestUDPDualStack(t *testing.T) {
	f := newHTTPFixture(t, nil)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tr.ServeUDP(ctx, conn) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
		conn.Close()
	}()
	path := "/" + f.pk + "/announce"
	c4 := newUDPClient(t, "udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	resp := c4.roundTrip(c4.announcePacket(c4.connect(), udpAnn{ih: f.ih, id: peerID(1), left: 1, numWant: -1, port: 7001, opts: urlOpts(path, 255)}), 2*time.Second)
	if len(resp) != 20 || binary.BigEndian.Uint32(resp) != udpActionAnnounce {
		t.Fatalf("IPv4 announce response %x", resp)
	}
	c4b := newUDPClient(t, "udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	resp = c4b.roundTrip(c4b.announcePacket(c4b.connect(), udpAnn{ih: f.ih, id: peerID(2), left: 1, numWant: -1, port: 7002, opts: urlOpts(path, 255)}), 2*time.Second)
	if len(resp) != 26 {
		t.Fatalf("second IPv4 announce response %x", resp)
	}
	if p := compactPeers(t, string(resp[20:]), 6); p[0] != netip.MustParseAddrPort("127.0.0.1:7001") {
		t.Fatalf("peer %v", p)
	}
	c6 := newUDPClient(t, "udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: port})
	if cid := c6.connect(); cid == 0 {
		t.Fatal("zero connection id over IPv6")
	}
}

// BenchmarkConnIDValid: checking a current connection id (one MAC).
func BenchmarkConnIDValid(b *testing.B) {
	var c connIDs
	if err := c.init(); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	a := netip.MustParseAddrPort("192.0.2.1:6881")
	id := c.make(a, now, new(macBuf))
	buf := new(macBuf)
	for b.Loop() {
		if !c.valid(id, a, now, buf) {
			b.Fatal("invalid")
		}
	}
}
