package announce

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/seedbank/seedbank/model"
)

func TestPeerRecSize(t *testing.T) {
	if s := unsafe.Sizeof(peerRec{}); s > 48 {
		t.Fatalf("peerRec is %d bytes, want at most 48", s)
	}
}

type eventLog struct {
	mu sync.Mutex
	ev []PeerEvent
}

func (l *eventLog) add(e PeerEvent) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) take() []PeerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.ev
	l.ev = nil
	return ev
}

func local(id int, addr string, seeder bool) *localAnnounce {
	return &localAnnounce{user: 7, id: peerID(id), addr: netip.MustParseAddrPort(addr), seeder: seeder, numWant: 50, family: familyAny}
}

func TestPeerStoreEvents(t *testing.T) {
	s := NewPeerStore(time.Minute, 0)
	var log eventLog
	s.SetObserver(log.add)
	h := model.InfoHash{1}
	now := time.Now()
	s.announce(h, local(1, "192.0.2.1:1000", false), now, nil)
	ev := log.take()
	if len(ev) != 1 || ev[0].Kind != PeerPut || ev[0].Peer.Addr != netip.MustParseAddrPort("192.0.2.1:1000") || ev[0].UserID != 7 || ev[0].Swarm != h {
		t.Fatalf("new peer events: %+v", ev)
	}
	// Re-announce with nothing new: no event.
	s.announce(h, local(1, "192.0.2.1:1000", false), now.Add(time.Second), nil)
	if ev := log.take(); len(ev) != 0 {
		t.Fatalf("re-announce produced events: %+v", ev)
	}
	// Second address family, becoming a seeder, changing port: one event each.
	s.announce(h, local(1, "[2001:db8::1]:1000", false), now, nil)
	s.announce(h, local(1, "[2001:db8::1]:1000", true), now, nil)
	s.announce(h, local(1, "192.0.2.1:1001", true), now, nil)
	if ev := log.take(); len(ev) != 3 || !ev[1].Peer.Seeder || ev[2].Peer.Addr.Port() != 1001 {
		t.Fatalf("change events: %+v", ev)
	}
	if sd, l, _ := s.Counts(h); sd != 1 || l != 0 {
		t.Fatalf("counts %d/%d", sd, l)
	}
	// stopped: removed event; unknown peer stopping: nothing.
	s.announce(h, &localAnnounce{id: peerID(1), stopped: true}, now, nil)
	s.announce(h, &localAnnounce{id: peerID(2), stopped: true}, now, nil)
	if ev := log.take(); len(ev) != 1 || ev[0].Kind != PeerRemoved {
		t.Fatalf("stop events: %+v", ev)
	}
	if s.Len() != 0 {
		t.Fatal("peer left after stopped")
	}
}

func TestPeerStoreRemote(t *testing.T) {
	s := NewPeerStore(time.Minute, 0)
	var log eventLog
	s.SetObserver(log.add)
	h := model.InfoHash{2}
	now := time.Now()
	s.PutRemote("node-b", h, Peer{ID: peerID(1), Addr: netip.MustParseAddrPort("192.0.2.1:1"), Seeder: true})
	s.PutRemote("node-b", h, Peer{ID: peerID(2), Addr: netip.MustParseAddrPort("192.0.2.2:1")})
	s.PutRemote("node-c", h, Peer{ID: peerID(3), Addr: netip.MustParseAddrPort("[2001:db8::3]:1")})
	if sd, l, _ := s.Counts(h); sd != 1 || l != 2 {
		t.Fatalf("counts %d/%d", sd, l)
	}
	// A local announce gets remote peers and takes peer 2 over.
	peers, c := s.announce(h, local(2, "192.0.2.2:1", true), now, nil)
	if c.seeders != 2 || c.leechers != 1 {
		t.Fatalf("counts after takeover: %+v", c)
	}
	if len(peers) != 1 || peers[0].ID != peerID(3) { // a seeder gets no seeders
		t.Fatalf("peers: %+v", peers)
	}
	if ev := log.take(); len(ev) != 1 || ev[0].Kind != PeerPut {
		t.Fatalf("takeover event: %+v", ev)
	}
	// node-b's late removal of peer 2 does not remove the now-local peer.
	s.RemoveRemote("node-b", h, peerID(2))
	s.RemoveRemote("node-x", h, peerID(3)) // unknown origin
	s.RemoveRemote("node-b", h, peerID(3)) // not its peer
	if s.Len() != 3 {
		t.Fatalf("len %d after foreign removals", s.Len())
	}
	// node-b now serves peer 2 (the client moved back): it is no longer local.
	s.PutRemote("node-b", h, Peer{ID: peerID(2), Addr: netip.MustParseAddrPort("[2001:db8::2]:1"), Seeder: true})
	localCount := func() (n int) {
		s.LocalPeers(func(model.InfoHash, Peer, uint64) bool { n++; return true })
		return n
	}
	if n := localCount(); n != 0 {
		t.Fatalf("%d local peers after node-b took peer 2", n)
	}
	// Its next announce here takes it back, with an event.
	s.announce(h, local(2, "192.0.2.2:1", true), now, nil)
	if ev := log.take(); len(ev) != 1 || ev[0].Kind != PeerPut || localCount() != 2 { // two addresses
		t.Fatalf("take back: events %+v, local addresses %d", ev, localCount())
	}
	// node-c's peer moves to node-b.
	s.PutRemote("node-b", h, Peer{ID: peerID(3), Addr: netip.MustParseAddrPort("[2001:db8::3]:1"), Seeder: true})
	if n := s.DropOrigin("node-c"); n != 0 {
		t.Fatalf("DropOrigin(node-c) removed %d", n)
	}
	if n := s.DropOrigin("node-b"); n != 2 {
		t.Fatalf("DropOrigin(node-b) removed %d, want 2", n)
	}
	if sd, l, _ := s.Counts(h); sd != 1 || l != 0 || s.Len() != 1 {
		t.Fatalf("after drop: %d/%d len %d", sd, l, s.Len())
	}
	if ev := log.take(); len(ev) != 0 {
		t.Fatalf("remote changes produced events: %+v", ev)
	}
}

func TestPeerStoreExpiry(t *testing.T) {
	clock := &testClock{t: time.Now()}
	s := NewPeerStore(10*time.Second, 30*time.Second)
	s.clock = clock.now
	var log eventLog
	s.SetObserver(log.add)
	h := model.InfoHash{3}
	s.announce(h, local(1, "192.0.2.1:1", false), clock.now(), nil)
	s.announce(h, local(2, "192.0.2.2:1", false), clock.now(), nil)
	s.PutRemote("node-b", h, Peer{ID: peerID(3), Addr: netip.MustParseAddrPort("192.0.2.3:1")})
	log.take()
	clock.advance(6 * time.Second)
	s.announce(h, local(2, "192.0.2.2:1", false), clock.now(), nil) // keeps peer 2 alive
	clock.advance(6 * time.Second)
	if n := s.Sweep(clock.now()); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	ev := log.take()
	if len(ev) != 1 || ev[0].Kind != PeerRemoved || ev[0].Peer.ID != peerID(1) {
		t.Fatalf("expiry events: %+v", ev)
	}
	clock.advance(20 * time.Second)
	if n := s.Sweep(clock.now()); n != 2 { // peer 2 (local ttl) and the remote peer (remote ttl)
		t.Fatalf("swept %d, want 2", n)
	}
	if ev := log.take(); len(ev) != 1 || ev[0].Peer.ID != peerID(2) {
		t.Fatalf("events: %+v", ev)
	}
	if s.Len() != 0 {
		t.Fatal("peers left")
	}
	if sh := s.shard(h); sh.swarms.len() != 0 {
		t.Fatal("empty swarm kept")
	}
}

// TestTrackerExpiry runs the tracker's sweep with a fake clock.
func TestTrackerExpiry(t *testing.T) {
	f := newHTTPFixture(t, func(c *Config) { c.Interval = 100 * time.Second; c.PeerTTL = 150 * time.Second })
	clock := &testClock{t: time.Now()}
	useClock(f.tr, clock)
	announceVia(t, f.tr, "192.0.2.1:1", f.pk, ann{ih: f.ih, id: peerID(1), port: 1, left: 1})
	clock.advance(100 * time.Second)
	f.tr.sweep()
	if st, _ := f.tr.SwarmStats(f.ih); st.Leechers != 1 {
		t.Fatalf("peer expired early: %+v", st)
	}
	clock.advance(51 * time.Second)
	f.tr.sweep()
	if st, _ := f.tr.SwarmStats(f.ih); st.Leechers != 0 {
		t.Fatalf("peer not expired: %+v", st)
	}
}

func TestPeerStoreSelection(t *testing.T) {
	s := NewPeerStore(time.Minute, 0)
	h := model.InfoHash{4}
	now := time.Now()
	for i := range 20 {
		s.announce(h, local(i, fmt.Sprintf("192.0.2.%d:1", i+1), i < 10), now, nil)
	}
	seen := map[[20]byte]int{}
	for range 200 {
		a := local(100, "192.0.2.200:1", false)
		a.numWant = 5
		peers, _ := s.announce(h, a, now, nil)
		if len(peers) != 5 {
			t.Fatalf("got %d peers, want 5", len(peers))
		}
		dup := map[[20]byte]bool{}
		for _, p := range peers {
			if p.ID == peerID(100) || dup[p.ID] {
				t.Fatalf("self or duplicate in %v", peers)
			}
			dup[p.ID] = true
			seen[p.ID]++
		}
	}
	if len(seen) != 20 {
		t.Fatalf("random selection reached %d of 20 peers", len(seen))
	}
	// A seeder sees only the 10 leechers (plus the leecher 100).
	a := local(0, "192.0.2.1:1", true)
	a.numWant = 100
	peers, _ := s.announce(h, a, now, nil)
	if len(peers) != 11 {
		t.Fatalf("seeder got %d peers, want 11", len(peers))
	}
	for _, p := range peers {
		if p.Seeder {
			t.Fatalf("seeder got seeder %v", p)
		}
	}
	// Family filter.
	s.announce(h, local(200, "[2001:db8::1]:1", false), now, nil)
	a = local(201, "[2001:db8::2]:1", false)
	a.family, a.numWant = family6, 100
	if peers, _ := s.announce(h, a, now, nil); len(peers) != 1 || !peers[0].Addr.Addr().Is6() {
		t.Fatalf("IPv6-only selection: %v", peers)
	}
}

func TestPickStrideCoprime(t *testing.T) {
	for n := 1; n < 200; n++ {
		for range 10 {
			if s := pickStride(n); s < 1 || (n > 1 && s >= n) || gcd(s, n) != 1 {
				t.Fatalf("pickStride(%d) = %d", n, s)
			}
		}
	}
}

func TestPeerStoreConcurrent(t *testing.T) {
	s := NewPeerStore(time.Minute, 0)
	s.SetObserver(func(PeerEvent) {})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			buf := make([]Peer, 0, 100)
			for i := range 2000 {
				h := model.InfoHash{byte(i % 7)}
				a := local(g*10000+i%50, fmt.Sprintf("192.0.2.%d:%d", g+1, i%50+1), i%3 == 0)
				a.stopped = i%11 == 0
				buf, _ = s.announce(h, a, time.Now(), buf[:0])
				if i%100 == 0 {
					s.PutRemote("node-b", h, Peer{ID: peerID(i), Addr: netip.MustParseAddrPort("192.0.2.250:1")})
					s.RemoveRemote("node-b", h, peerID(i-100))
					s.Sweep(time.Now())
				}
			}
		})
	}
	wg.Wait()
	checkPeerStore(t, s)
}

// checkPeerStore checks that counts and indexes agree with the records.
func checkPeerStore(t *testing.T, s *PeerStore) {
	t.Helper()
	for i := range s.shards {
		seen := 0
		s.shards[i].swarms.each(func(hp *model.InfoHash, swp *swarm) bool {
			h, sw := *hp, *swp
			seen++
			if got, ok := s.shards[i].swarms.get(hp); !ok || got.seeders != sw.seeders || len(got.peers) != len(sw.peers) {
				t.Fatalf("swarm %x: visited but not found", h)
			}
			if h[0] != byte(i) {
				t.Fatalf("swarm %x in shard %d", h, i)
			}
			if sw.empty() {
				t.Fatalf("empty swarm %x kept", h)
			}
			var sd, l int32
			v6 := 0
			for j, r := range sw.peers {
				if r.seeder() {
					sd++
				} else {
					l++
				}
				if sw.find(r.id) != j {
					t.Fatalf("swarm %x: peer %d found at %d", h, j, sw.find(r.id))
				}
				if !r.has4() && !r.has6() {
					t.Fatalf("swarm %x: peer %d has no address", h, j)
				}
				if r.has6() {
					v6++
					if r.v6 < 1 || int(r.v6) > len(sw.v6) || sw.v6[r.v6-1].owner != int32(j) {
						t.Fatalf("swarm %x: peer %d's IPv6 address %d is not its own", h, j, r.v6)
					}
				}
			}
			if v6 != len(sw.v6) {
				t.Fatalf("swarm %x: %d peers with IPv6, %d addresses", h, v6, len(sw.v6))
			}
			if sd != sw.seeders || l != sw.leechers {
				t.Fatalf("swarm %x: counts %d/%d, records %d/%d", h, sw.seeders, sw.leechers, sd, l)
			}
			if big := len(sw.peers) > smallSwarm; big && sw.index == nil || sw.index != nil && len(sw.index) != len(sw.peers) {
				t.Fatalf("swarm %x: %d peers, index %v of %d", h, len(sw.peers), sw.index != nil, len(sw.index))
			}
			return true
		})
		if seen != s.shards[i].swarms.len() {
			t.Fatalf("shard %d: %d swarms visited, %d counted", i, seen, s.shards[i].swarms.len())
		}
	}
}

// BenchmarkPeerStoreAnnounce: parallel re-announces into 256 swarms of 200
// peers each, 50 peers returned. Budget: 0 allocations.
func BenchmarkPeerStoreAnnounce(b *testing.B) {
	s := NewPeerStore(time.Hour, 0)
	now := time.Now()
	const swarms, per = 256, 200
	var ids [per][20]byte
	for j := range ids {
		ids[j] = peerID(j)
	}
	for i := range swarms {
		h := model.InfoHash{byte(i % swarms), 0, 1}
		for j := range per {
			s.announce(h, &localAnnounce{id: peerID(j), addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(j), 1}), 6881), seeder: j%2 == 0}, now, nil)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]Peer, 0, 100)
		i := 0
		for pb.Next() {
			i++
			h := model.InfoHash{byte(i % swarms), 0, 1}
			a := localAnnounce{id: ids[i%per], addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i % per), 1}), 6881), seeder: (i%per)%2 == 0, numWant: 50, family: familyAny}
			buf, _ = s.announce(h, &a, now, buf[:0])
		}
	})
}

// BenchmarkPeerStoreAnnounceMany: re-announces of random peers in 100,000
// swarms of 3 peers (the trackerbench fixture's shape), so nearly every
// announce misses the CPU caches as in a real tracker; 50 peers wanted.
// Budget: 0 allocations.
func BenchmarkPeerStoreAnnounceMany(b *testing.B) {
	s := NewPeerStore(time.Hour, 0)
	now := time.Now()
	const swarms, per = 100_000, 3
	hash := func(i int) model.InfoHash {
		var h model.InfoHash
		binary.LittleEndian.PutUint64(h[:], uint64(i)*0x9e3779b97f4a7c15)
		binary.LittleEndian.PutUint64(h[8:], uint64(i))
		return h
	}
	addr := func(g int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(g >> 16), byte(g >> 8), byte(g)}), 6881)
	}
	ids := make([][20]byte, swarms*per)
	for i := range swarms {
		for j := range per {
			g := i*per + j
			ids[g] = peerID(g)
			s.announce(hash(i), &localAnnounce{user: 1, id: ids[g], addr: addr(g), seeder: j == 0}, now, nil)
		}
	}
	buf := make([]Peer, 0, 64)
	rng := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rng = rng*6364136223846793005 + 1442695040888963407
		g := int(rng>>33) % (swarms * per)
		a := localAnnounce{user: 1, id: ids[g], addr: addr(g), seeder: g%per == 0, numWant: 50, family: family4}
		buf, _ = s.announce(hash(g/per), &a, now, buf[:0])
	}
}

// TestSwarmGrowsAndShrinks: swarms that cross smallSwarm both ways (scan,
// then index map, then scan again) and swarms that come and go in a shard
// keep finding every peer and its addresses (IPv4, IPv6 kept beside the
// records, dual-stack), against a plain map of what should be there.
func TestSwarmGrowsAndShrinks(t *testing.T) {
	s := NewPeerStore(time.Minute, 0)
	now := time.Now()
	hashes := []model.InfoHash{{5, 1}, {5, 2}, {5, 3}, {6, 1}} // three share a shard
	type peerWant struct {
		seeder bool
		a4, a6 netip.AddrPort
	}
	want := map[model.InfoHash]map[[20]byte]peerWant{}
	for _, h := range hashes {
		want[h] = map[[20]byte]peerWant{}
	}
	indexed := map[model.InfoHash]bool{}
	var built, dropped int
	rng := uint64(7)
	next := func(n int) int {
		rng = rng*6364136223846793005 + 1442695040888963407
		return int(rng>>33) % n
	}
	for step := range 20000 {
		h := hashes[next(len(hashes))]
		// Drift: grow for a while, then shrink, so swarms cross both ways.
		// About 84 peers (of 96 ids) in a swarm at the top, 12 at the bottom.
		stop := next(8) == 0
		if step/2500%2 == 1 {
			stop = next(8) != 0
		}
		id := next(3 * smallSwarm)
		// A fifth of the peers IPv6 only, a fifth dual-stack (either
		// family, and a new port now and then), the rest IPv4 only.
		addr := fmt.Sprintf("192.0.2.%d:%d", id%250+1, id+1)
		if id%5 == 0 || id%5 == 1 && next(2) == 0 {
			addr = fmt.Sprintf("[2001:db8::%x]:%d", id+1, id+1+next(2))
		}
		a := local(id, addr, id%3 == 0)
		a.stopped = stop
		peers, c := s.announce(h, a, now, nil)
		if a.stopped {
			delete(want[h], a.id)
		} else {
			w := want[h][a.id]
			w.seeder = a.seeder
			if a.addr.Addr().Is4() {
				w.a4 = a.addr
			} else {
				w.a6 = a.addr
			}
			want[h][a.id] = w
		}
		distinct := map[[20]byte]bool{}
		for _, p := range peers {
			distinct[p.ID] = true
		}
		if len(distinct) > a.numWant || distinct[a.id] { // a dual-stack peer counts once
			t.Fatalf("step %d: %d peers for numwant %d", step, len(distinct), a.numWant)
		}
		if c.seeders+c.leechers != len(want[h]) {
			t.Fatalf("step %d: counts %+v, want %d peers", step, c, len(want[h]))
		}
		if sw := s.shard(h).get(h); (sw != nil && sw.index != nil) != indexed[h] {
			indexed[h] = !indexed[h]
			if indexed[h] {
				built++
			} else {
				dropped++
			}
		}
		if step%97 == 0 {
			checkPeerStore(t, s)
			for _, h := range hashes {
				sw := s.shard(h).get(h)
				if len(want[h]) == 0 {
					if sw != nil {
						t.Fatalf("step %d: empty swarm %x kept", step, h)
					}
					continue
				}
				if sw == nil || len(sw.peers) != len(want[h]) {
					t.Fatalf("step %d: swarm %x lost peers", step, h)
				}
				for id, w := range want[h] {
					i := sw.find(id)
					if i < 0 || sw.peers[i].seeder() != w.seeder {
						t.Fatalf("step %d: peer %q of %x at %d", step, id, h, i)
					}
					r := &sw.peers[i]
					var a4, a6 netip.AddrPort
					if r.has4() {
						a4 = r.addr4()
					}
					if r.has6() {
						a6 = sw.addr6(r)
					}
					if a4 != w.a4 || a6 != w.a6 {
						t.Fatalf("step %d: peer %q has %v %v, want %v %v", step, id, a4, a6, w.a4, w.a6)
					}
				}
			}
		}
	}
	checkPeerStore(t, s)
	if built < 4 || dropped < 4 {
		t.Fatalf("peer_id index built %d times, dropped %d: the test no longer crosses smallSwarm", built, dropped)
	}
}

// TestOriginTableFull: origin indexes share a field with the peer flags, so
// the table stops at originMask origins; a peer of the last origin keeps
// its flags, and a further origin's peers are not stored.
func TestOriginTableFull(t *testing.T) {
	s := NewPeerStore(time.Minute, 0)
	h := model.InfoHash{9}
	for i := 1; i < int(originMask); i++ {
		s.originIndex(fmt.Sprintf("node-%d", i))
	}
	last := Peer{ID: peerID(1), Addr: netip.MustParseAddrPort("192.0.2.1:1"), Seeder: true}
	s.PutRemote("last", h, last)
	s.PutRemote("one-too-many", h, Peer{ID: peerID(2), Addr: netip.MustParseAddrPort("192.0.2.2:1")})
	sw := s.shard(h).get(h)
	if sw == nil || len(sw.peers) != 1 {
		t.Fatalf("swarm %+v, want the last origin's peer only", sw)
	}
	if r := &sw.peers[0]; r.origin() != originMask || !r.seeder() || !r.has4() || r.addr4() != last.Addr {
		t.Fatalf("peer of origin %d: origin %d, seeder %v, address %v", originMask, r.origin(), r.seeder(), r.addr4())
	}
	if n := s.DropOrigin("last"); n != 1 || s.Len() != 0 {
		t.Fatalf("DropOrigin removed %d, %d left", n, s.Len())
	}
}

// ChangedSwarms lists a swarm once when its seeder count moved, by any
// path (announce, remote peer, expiry), and not for changes that keep it.
func TestChangedSwarms(t *testing.T) {
	clock := &testClock{t: time.Now()}
	s := NewPeerStore(10*time.Second, 30*time.Second)
	s.clock = clock.now
	a, b, c := model.InfoHash{1}, model.InfoHash{2}, model.InfoHash{3}
	drain := func(want ...model.InfoHash) {
		t.Helper()
		got := s.ChangedSwarms(nil)
		slices.SortFunc(got, func(x, y model.InfoHash) int { return bytes.Compare(x[:], y[:]) })
		if !slices.Equal(got, want) {
			t.Fatalf("changed %x, want %x", got, want)
		}
	}
	s.announce(a, local(1, "192.0.2.1:1", true), clock.now(), nil)  // a seeder
	s.announce(a, local(2, "192.0.2.2:1", true), clock.now(), nil)  // and another: still listed once
	s.announce(b, local(3, "192.0.2.3:1", false), clock.now(), nil) // a leecher only: no seeders yet
	drain(a)
	drain()
	s.announce(a, local(1, "192.0.2.1:1", true), clock.now(), nil) // re-announce
	s.announce(b, local(3, "192.0.2.3:1", true), clock.now(), nil) // completes
	drain(b)
	s.PutRemote("node-b", c, Peer{ID: peerID(4), Addr: netip.MustParseAddrPort("192.0.2.4:1"), Seeder: true})
	s.announce(a, &localAnnounce{id: peerID(2), stopped: true}, clock.now(), nil)
	drain(a, c)
	clock.advance(11 * time.Second)
	s.Sweep(clock.now()) // a's and b's last seeders expire; the swarms go
	drain(a, b)
	if n := len(s.ChangedSwarms(nil)); n != 0 {
		t.Fatalf("%d listed after a drain", n)
	}
}
