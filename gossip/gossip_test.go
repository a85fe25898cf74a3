package gossip

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/gossip/gossiptest"
	"github.com/seedbank/seedbank/model"
)

// fakePeers is a peer table: local peers announced by the test, remote ones
// as gossip set them.
type fakePeers struct {
	mu       sync.Mutex
	observer func(announce.PeerEvent)
	local    map[peerKey]announce.Peer
	remote   map[peerKey]string // -> origin
	imported []announce.PeerCounters
	counters map[peerKey]announce.PeerCounters // live counters to hand off
}

func newFakePeers() *fakePeers {
	return &fakePeers{local: map[peerKey]announce.Peer{}, remote: map[peerKey]string{}, counters: map[peerKey]announce.PeerCounters{}}
}

func (p *fakePeers) SetObserver(fn func(announce.PeerEvent)) {
	p.mu.Lock()
	p.observer = fn
	p.mu.Unlock()
}

func (p *fakePeers) LocalPeers(fn func(model.InfoHash, announce.Peer, uint64) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, peer := range p.local {
		if !fn(k.swarm, peer, 1) {
			return
		}
	}
}

func (p *fakePeers) PutRemotePeer(origin string, swarm model.InfoHash, peer announce.Peer) (announce.PeerCounters, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := peerKey{swarm, peer.ID}
	delete(p.local, k)
	p.remote[k] = origin
	pc, ok := p.counters[k]
	delete(p.counters, k)
	return pc, ok
}

func (p *fakePeers) RemoveRemote(origin string, swarm model.InfoHash, id [20]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := (peerKey{swarm, id}); p.remote[k] == origin {
		delete(p.remote, k)
	}
}

func (p *fakePeers) DropOrigin(origin string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, o := range p.remote {
		if o == origin {
			delete(p.remote, k)
			n++
		}
	}
	return n
}

func (p *fakePeers) ImportPeerCounters(pc announce.PeerCounters) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.imported = append(p.imported, pc)
	return true
}

// announce makes peer i of swarm s local, as an announce would.
func (p *fakePeers) announce(s, i byte, counters bool) {
	k := peerKey{model.InfoHash{s}, [20]byte{i}}
	peer := announce.Peer{ID: k.id, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, s, i}), 6881)}
	p.mu.Lock()
	p.local[k] = peer
	delete(p.remote, k)
	if counters {
		p.counters[k] = announce.PeerCounters{UserID: 1, Torrent: k.swarm, PeerID: k.id, Uploaded: uint64(i) * 1000}
	}
	fn := p.observer
	p.mu.Unlock()
	fn(announce.PeerEvent{Kind: announce.PeerPut, Swarm: k.swarm, Peer: peer, UserID: 1})
}

func (p *fakePeers) stop(s, i byte) {
	k := peerKey{model.InfoHash{s}, [20]byte{i}}
	p.mu.Lock()
	peer, ok := p.local[k]
	delete(p.local, k)
	fn := p.observer
	p.mu.Unlock()
	if ok {
		fn(announce.PeerEvent{Kind: announce.PeerRemoved, Swarm: k.swarm, Peer: peer, UserID: 1})
	}
}

func (p *fakePeers) origin(s, i byte) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remote[peerKey{model.InfoHash{s}, [20]byte{i}}]
}

func (p *fakePeers) remoteCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.remote)
}

var testClusterKey = []byte("seedbank-test-cluster-key-32byte")

func testLogger() *slog.Logger {
	if os.Getenv("SEEDBANK_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startGossip(t *testing.T, nw *gossiptest.Net, id string, peers *fakePeers) *Gossip {
	t.Helper()
	return startGossipWith(t, nw, id, peers, "127.0.0.1:0", nil)
}

func startGossipWith(t *testing.T, nw *gossiptest.Net, id string, peers *fakePeers, bind string, tune func(*Config)) *Gossip {
	t.Helper()
	cfg := Config{
		NodeID: id, BindAddr: bind, ClusterKey: testClusterKey, Peers: peers, Logger: testLogger(),
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, SuspicionMult: 2,
		PushPullInterval: 2 * time.Second, TCPTimeout: time.Second, DeadNodeReclaimTime: 100 * time.Millisecond,
		DigestDelay: 200 * time.Millisecond, WrapTransport: nw.WrapTransport(id),
	}
	if tune != nil {
		tune(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	nw.Register(id, g.Addr())
	return g
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplication covers the protocol paths the node tests do not reach
// reliably: a batch lost on the wire (repaired by the tail digest and a
// full pull), a client moving between nodes (claim order and counter
// handoff), a graceful leave, and a restart under the same name.
func TestReplication(t *testing.T) {
	nw := gossiptest.New()
	pa, pb, pc := newFakePeers(), newFakePeers(), newFakePeers()
	a := startGossip(t, nw, "a", pa)
	b := startGossip(t, nw, "b", pb)
	c := startGossip(t, nw, "c", pc)
	for _, g := range []*Gossip{b, c} {
		if _, err := g.Join([]string{a.Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "3 members", func() bool { return a.NumAlive() == 3 && b.NumAlive() == 3 && c.NumAlive() == 3 })

	pa.announce(1, 1, true)
	eventually(t, "peer 1 on b and c", func() bool { return pb.origin(1, 1) == "a" && pc.origin(1, 1) == "a" })

	// A batch lost on the way to b: b learns it from a's tail digest.
	nw.Partition([]string{"a"}, []string{"b"})
	pa.announce(1, 2, false)
	eventually(t, "peer 2 on c", func() bool { return pc.origin(1, 2) == "a" })
	time.Sleep(60 * time.Millisecond) // the batch has gone (and was lost)
	nw.Heal()
	eventually(t, "peer 2 on b after the digest", func() bool { return pb.origin(1, 2) == "a" })
	if s := b.Stats(); s.SyncRequests == 0 || s.FullReceived == 0 {
		t.Fatalf("b repaired without a full pull? %+v", s)
	}

	// The client of peer 1 moves to b: a and c list it as b's, a hands its
	// counters to b, and a no longer claims it.
	pb.announce(1, 1, false)
	eventually(t, "peer 1 moved to b", func() bool { return pa.origin(1, 1) == "b" && pc.origin(1, 1) == "b" })
	eventually(t, "counters handed to b", func() bool {
		pb.mu.Lock()
		defer pb.mu.Unlock()
		return len(pb.imported) == 1 && pb.imported[0].Uploaded == 1000
	})
	// b's peer stops: gone everywhere, and a's older claim does not return.
	pb.stop(1, 1)
	eventually(t, "peer 1 gone", func() bool { return pa.origin(1, 1) == "" && pc.origin(1, 1) == "" })
	time.Sleep(100 * time.Millisecond)
	if o := pc.origin(1, 1); o != "" {
		t.Fatalf("peer 1 came back as %s's", o)
	}

	// c leaves gracefully after announcing a peer: dropped at once.
	pc.announce(3, 1, false)
	eventually(t, "c's peer on a", func() bool { return pa.origin(3, 1) == "c" })
	// Its UDP packets, memberlist's leave message among them, are lost:
	// the leave notice goes over TCP, so a and b still tell a leave from a
	// failure once they find c gone.
	nw.LosePackets("c", true)
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c's peer dropped after leave", func() bool { return pa.origin(3, 1) == "" && pb.origin(3, 1) == "" })
	for _, g := range []*Gossip{a, b} {
		eventually(t, "c left (not dead)", func() bool {
			m, _ := g.Member("c")
			if m.State == StateDead {
				t.Fatalf("c is dead on %s, not left", g.cfg.NodeID)
			}
			return m.State == StateLeft
		})
	}
	nw.LosePackets("c", false)

	// c restarts with an empty table under the same name: nothing stale
	// comes back, and its new peers spread.
	pc2 := newFakePeers()
	c2 := startGossip(t, nw, "c", pc2)
	if _, err := c2.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	pc2.announce(4, 1, false)
	eventually(t, "restarted c's peer on a and b", func() bool { return pa.origin(4, 1) == "c" && pb.origin(4, 1) == "c" })
	eventually(t, "restarted c learned a's peer", func() bool { return pc2.origin(1, 2) == "a" })
	if pa.origin(3, 1) != "" {
		t.Fatal("a stale peer of c's first run came back")
	}
	t.Logf("a: %+v", a.Stats())
}

// A node that restarts on the same address before failure detection
// notices: the others drop the peers of its previous run when it rejoins.
func TestQuickRestartDropsOldPeers(t *testing.T) {
	nw := gossiptest.New()
	slow := func(c *Config) { c.ProbeInterval, c.PushPullInterval = 10*time.Second, time.Minute }
	pa, pb := newFakePeers(), newFakePeers()
	a := startGossipWith(t, nw, "a", pa, "127.0.0.1:0", slow)
	b := startGossipWith(t, nw, "b", pb, "127.0.0.1:0", slow)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 members", func() bool { return a.NumAlive() == 2 })
	pb.announce(1, 1, false)
	eventually(t, "b's peer on a", func() bool { return pa.origin(1, 1) == "b" })
	addr := b.Addr()
	b.Close()
	pb2 := newFakePeers()
	b2 := startGossipWith(t, nw, "b", pb2, addr, slow)
	if _, err := b2.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "old run's peer dropped", func() bool { return pa.origin(1, 1) == "" })
	if m, _ := a.Member("b"); m.State != StateAlive {
		t.Fatalf("b is %v", m.State)
	}
}

// A batch too big for one UDP packet goes over TCP.
func TestLargeBatchUsesTCP(t *testing.T) {
	nw := gossiptest.New()
	pa, pb := newFakePeers(), newFakePeers()
	a := startGossip(t, nw, "a", pa)
	b := startGossip(t, nw, "b", pb)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 members", func() bool { return a.NumAlive() == 2 })
	time.Sleep(100 * time.Millisecond)
	for i := range 200 {
		pa.announce(byte(i/100+10), byte(i%100), false)
	}
	eventually(t, "200 peers on b", func() bool { return pb.remoteCount() == 200 })
	if s := a.Stats(); s.TCPBatches == 0 {
		t.Fatalf("no TCP batch: %+v", s)
	}
}

func TestMetaTooLarge(t *testing.T) {
	_, err := New(Config{NodeID: "a", BindAddr: "127.0.0.1:0", ClusterKey: testClusterKey, Peers: newFakePeers(),
		Meta: Meta{Institution: fmt.Sprintf("%0600d", 0)}})
	if err == nil {
		t.Fatal("600-byte institution accepted")
	}
}

// TestLoneNode: a node with no other member keeps no copy of its peers and
// builds no batches; the first node to join still gets every local peer as
// it is then; and once the others are gone and it is alone again, a later
// joiner gets its current peers, without those stopped while it was alone.
func TestLoneNode(t *testing.T) {
	nw := gossiptest.New()
	pa := newFakePeers()
	a := startGossip(t, nw, "a", pa)
	if !a.lone.Load() {
		t.Fatal("a node with no members keeps a view")
	}
	for i := range 50 {
		pa.announce(1, byte(i), false)
	}
	time.Sleep(10 * a.cfg.BatchInterval)
	if s := a.Stats(); s.BatchesSent != 0 {
		t.Fatalf("a lone node built %d batches", s.BatchesSent)
	}

	pb := newFakePeers()
	b := startGossip(t, nw, "b", pb)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's 50 peers on b", func() bool { return pb.remoteCount() == 50 && pb.origin(1, 49) == "a" })
	if a.lone.Load() {
		t.Fatal("a keeps no view with b a member")
	}
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	b.Close()
	eventually(t, "a alone again", func() bool { return a.lone.Load() })

	batches := a.Stats().BatchesSent
	for i := range 10 {
		pa.stop(1, byte(i))
	}
	for i := range 5 {
		pa.announce(2, byte(i), false)
	}
	time.Sleep(10 * a.cfg.BatchInterval)
	if s := a.Stats(); s.BatchesSent != batches {
		t.Fatalf("a lone node built %d batches", s.BatchesSent-batches)
	}

	pc := newFakePeers()
	c := startGossip(t, nw, "c", pc)
	if _, err := c.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's 45 current peers on c", func() bool {
		return pc.remoteCount() == 45 && pc.origin(1, 49) == "a" && pc.origin(2, 4) == "a"
	})
	for i := range 10 {
		if o := pc.origin(1, byte(i)); o != "" {
			t.Fatalf("peer %d, stopped while a was alone, is on c as %q's", i, o)
		}
	}
	// Changes after the rebuild travel as batches again.
	pa.announce(3, 1, false)
	eventually(t, "a new peer of a on c", func() bool { return pc.origin(3, 1) == "a" })
}
