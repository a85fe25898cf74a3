package announce

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/seedbank/seedbank/model"
)

// memBatcher is a udpBatcher over datagrams in memory: a benchmark fills
// it, answerBatch answers them, and it counts the answers.
type memBatcher struct {
	pkts    [udpBatch][]byte
	from    [udpBatch]netip.AddrPort
	answers int
}

func (m *memBatcher) read() (int, error) { return 0, nil }
func (m *memBatcher) datagram(i int) ([]byte, netip.AddrPort, bool) {
	return m.pkts[i], m.from[i], true
}
func (m *memBatcher) reply(i int, msg []byte) {
	if binary.BigEndian.Uint32(msg) == udpActionAnnounce {
		m.answers++
	}
}
func (m *memBatcher) send(func(netip.AddrPort, error)) error { return nil }

// BenchmarkUDPBatchScattered answers batches of re-announces spread over
// 100,000 swarms of 3 peers, 1,000 users: the tracker's records do not fit
// in the CPU caches, so this measures the cache misses of the announce path
// as the load generator meets them (trackerbench's fixture), without the
// kernel's share. ns/op is per announce; warm=true warms each batch first
// (warmBatch), as the UDP workers do.
func BenchmarkUDPBatchScattered(b *testing.B) {
	const torrents, peers, users = 100_000, 3, 1000
	reg := newFakeRegistry()
	pks := make([]string, users)
	for u := range users {
		pks[u] = reg.addUser(uint64(u+1), true)
	}
	hs := make([][20]byte, torrents)
	for i := range hs {
		hs[i] = reg.addTorrent(fmt.Sprintf("t%d", i), 1<<40)
	}
	tr := newTestTracker(b, reg, newFakeCommitter(), nil)
	// The datagrams sit one after another in the order they are sent, as
	// a socket's receive buffer would hand them over: reading them is not
	// what this measures.
	const stride = 192
	type peer struct {
		pkt  []byte
		from netip.AddrPort
	}
	order := rand.Perm(torrents * peers)
	buf := make([]byte, len(order)*stride)
	all := make([]peer, len(order))
	for n, at := range order {
		i, j := n/peers, n%peers
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), 6881)
		pkt := binary.BigEndian.AppendUint64(buf[at*stride:at*stride], validConnID(tr, from))
		pkt = binary.BigEndian.AppendUint32(pkt, udpActionAnnounce)
		pkt = binary.BigEndian.AppendUint32(pkt, uint32(n))
		pkt = appendUDPAnnounce(pkt, udpAnn{ih: hs[i], id: peerID(n), left: uint64(j % 2), numWant: 50, port: 6881,
			opts: urlOpts("/"+pks[n%users]+"/announce", 255)})
		if len(pkt) > stride {
			b.Fatalf("datagram of %d bytes", len(pkt))
		}
		all[at] = peer{pkt, from}
	}
	st := tr.newUDPState()
	outBuf := make([]byte, udpBatch*udpBufSize)
	for _, c := range []struct {
		batch int
		warm  bool
	}{{1, false}, {8, false}, {8, true}, {16, true}} {
		batch := c.batch
		b.Run(fmt.Sprintf("batch=%d/warm=%v", batch, c.warm), func(b *testing.B) {
			var m memBatcher
			next := 0
			run := func() {
				for i := range batch {
					p := &all[next]
					if next++; next == len(all) {
						next = 0
					}
					// Each announce reports 1 KiB more uploaded.
					binary.BigEndian.PutUint64(p.pkt[72:], binary.BigEndian.Uint64(p.pkt[72:])+1024)
					m.pkts[i], m.from[i] = p.pkt, p.from
				}
				if c.warm {
					tr.warmBatch(&m, batch)
				}
				tr.answerBatch(st, &m, batch, outBuf, tr.now())
			}
			for range len(all) / batch { // every peer once: the swarms hold it
				run()
			}
			m.answers = 0
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				run()
			}
			b.StopTimer()
			if want := (b.N + batch - 1) / batch * batch; m.answers != want {
				b.Fatalf("%d announce answers, want %d", m.answers, want)
			}
		})
	}
}

// TestWarmBatchChangesNothing warms a batch of every kind of datagram
// (announces of known and unknown peers and torrents, a connect, a scrape,
// short and garbage ones) after a stale hint was planted: nothing in the
// peer store or the accountant changes, and the answers that follow are
// those of an unwarmed batch.
func TestWarmBatchChangesNothing(t *testing.T) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("warm", 1<<30)
	other := reg.addTorrent("cold", 1<<30)
	tr := newTestTracker(t, reg, newFakeCommitter(), nil)
	st := tr.newUDPState()
	from := netip.MustParseAddrPort("192.0.2.1:6881")
	ann := func(h model.InfoHash, id int) []byte {
		pkt := binary.BigEndian.AppendUint64(nil, validConnID(tr, from))
		pkt = binary.BigEndian.AppendUint32(pkt, udpActionAnnounce)
		pkt = binary.BigEndian.AppendUint32(pkt, uint32(id))
		return appendUDPAnnounce(pkt, udpAnn{ih: h, id: peerID(id), left: 1, up: 1 << 20, numWant: 50, port: 6881,
			opts: urlOpts("/"+pk+"/announce", 255)})
	}
	for id := range 3 {
		if resp := tr.handleUDP(st, ann(ih, id), from); binary.BigEndian.Uint32(resp) != udpActionAnnounce {
			t.Fatalf("setup announce: %q", resp)
		}
	}
	// A hint past the end of the counter records, as a stale one may be.
	sh := tr.peers.shard(ih)
	sh.mu.Lock()
	sw := sh.swarms.ref(&ih)
	sw.peers[0].counters = 1 << 30
	sh.mu.Unlock()
	if h := tr.peers.counterHint(&ih, ptr(peerID(0))); h != 1<<30 {
		t.Fatalf("counter hint %d, want the planted 1<<30", h)
	}
	if h := tr.peers.counterHint(&ih, ptr(peerID(9))); h != -1 {
		t.Fatalf("counter hint of an unknown peer %d, want -1", h)
	}
	if h := tr.peers.counterHint(&other, ptr(peerID(0))); h != -1 {
		t.Fatalf("counter hint in a swarm with no peers %d, want -1", h)
	}
	connect := binary.BigEndian.AppendUint64(nil, udpProtocolID)
	connect = binary.BigEndian.AppendUint32(connect, udpActionConnect)
	connect = binary.BigEndian.AppendUint32(connect, 7)
	scrape := binary.BigEndian.AppendUint64(nil, validConnID(tr, from))
	scrape = binary.BigEndian.AppendUint32(scrape, udpActionScrape)
	scrape = binary.BigEndian.AppendUint32(scrape, 8)
	scrape = append(scrape, ih[:]...)
	batch := [][]byte{ann(ih, 0), ann(ih, 1), ann(ih, 7), ann(other, 0), connect, scrape,
		ann(ih, 2)[:udpAnnounceLen-1], {1, 2, 3}, nil}
	var m memBatcher
	for i, p := range batch {
		m.pkts[i], m.from[i] = p, from
	}
	before := tr.peers.Len()
	tr.acct.shard(ih).mu.Lock()
	recs := len(tr.acct.shard(ih).counters.recs)
	tr.acct.shard(ih).mu.Unlock()
	tr.warmBatch(&m, len(batch))
	if got := tr.peers.Len(); got != before {
		t.Fatalf("warming changed the peer count from %d to %d", before, got)
	}
	tr.acct.shard(ih).mu.Lock()
	got := len(tr.acct.shard(ih).counters.recs)
	tr.acct.shard(ih).mu.Unlock()
	if got != recs {
		t.Fatalf("warming changed the counter records from %d to %d", recs, got)
	}
	s, l, _ := tr.peers.Counts(ih)
	if s+l != 3 {
		t.Fatalf("swarm has %d peers after warming, want 3", s+l)
	}
	outBuf := make([]byte, udpBatch*udpBufSize)
	tr.answerBatch(st, &m, len(batch), outBuf, tr.now())
	if m.answers != 4 {
		t.Fatalf("%d announce answers after warming, want 4", m.answers)
	}
}

func ptr(id [20]byte) *[20]byte { return &id }
