package announce

import (
	"encoding/binary"
	"unsafe"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/prefetch"
)

// Warming a batch of UDP announces.
//
// A re-announce reads three records that are rarely in the CPU caches on a
// busy node (100,000 swarms are hundreds of megabytes): its swarm's slot,
// the swarm's peer records and the peer's counter record. Each is found
// through the one before, so answering the datagrams of a batch one by one
// waits for each miss in turn (on a virtual machine a miss that also
// misses the TLB costs a nested page walk; the three were 12% of the
// tracker's CPU at UDP peak). warmBatch walks the batch once per level
// first, asking the CPU to load that level's records for every announce of
// the batch together (prefetch), so the misses of a level overlap, and the
// answers then find them in the cache. (The user's record is a Go map
// entry in the registry, whose address cannot be known before the lookup:
// not warmed.) It changes nothing and answers nothing: a datagram it cannot
// read is left to handleUDP, and a stale position costs a useless prefetch
// at most.

// warmBatch prefetches the records that the announces among datagrams
// [0, n) of b will read. A batch of one has nothing to overlap.
func (t *Tracker) warmBatch(b udpBatcher, n int) {
	var w batchWarmer
	for i := range n {
		pkt, _, ok := b.datagram(i)
		if !ok || len(pkt) < udpAnnounceLen || binary.BigEndian.Uint32(pkt[8:]) != udpActionAnnounce {
			continue
		}
		w.hashes[w.n] = (*model.InfoHash)(pkt[16:36])
		w.ids[w.n] = (*[20]byte)(pkt[36:56])
		w.n++
	}
	if w.n < 2 {
		return
	}
	w.warm(t.peers, t.acct)
}

// batchWarmer is the info hash and peer_id of each announce of a batch;
// they point into the datagrams.
type batchWarmer struct {
	n      int
	hashes [udpBatch]*model.InfoHash
	ids    [udpBatch]*[20]byte
	hints  [udpBatch]int32
}

// warm prefetches level by level: swarm slots, then peer records, then
// counter records. Each step takes and drops a shard lock per announce; a
// lock does not wait for earlier prefetches to complete, so they overlap.
func (w *batchWarmer) warm(s *PeerStore, a *accountant) {
	hs := w.hashes[:w.n]
	for _, h := range hs {
		s.prefetchSwarm(h)
	}
	for _, h := range hs {
		s.prefetchPeers(h)
	}
	for i, h := range hs {
		w.hints[i] = s.counterHint(h, w.ids[i])
	}
	for i, h := range hs {
		a.prefetchCounters(h, w.hints[i])
	}
}

// prefetchSwarm prefetches the slot where a lookup of swarm h begins.
func (s *PeerStore) prefetchSwarm(h *model.InfoHash) {
	sh := s.shard(*h)
	sh.mu.Lock()
	sh.swarms.prefetch(h)
	sh.mu.Unlock()
}

// prefetchPeers prefetches the records of swarm h that a search for one
// peer reads first: a small swarm's records are searched from the start
// (see swarm.find); a large one's index is a map, left alone.
func (s *PeerStore) prefetchPeers(h *model.InfoHash) {
	sh := s.shard(*h)
	var start, end uintptr
	sh.mu.Lock()
	if sw := sh.swarms.ref(h); sw != nil && len(sw.peers) > 0 && sw.index == nil {
		start = uintptr(unsafe.Pointer(&sw.peers[0]))
		end = start + uintptr(min(len(sw.peers), 4))*unsafe.Sizeof(peerRec{})
	}
	sh.mu.Unlock()
	for a := start &^ 63; a < end; a += 64 {
		prefetch.Line(a)
	}
}

// counterHint returns where the accountant kept peer id's counters of
// swarm h at its last announce here, or -1.
func (s *PeerStore) counterHint(h *model.InfoHash, id *[20]byte) int32 {
	sh := s.shard(*h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw := sh.swarms.ref(h)
	if sw == nil {
		return -1
	}
	if i := sw.find(*id); i >= 0 {
		return sw.peers[i].counters
	}
	return -1
}

// prefetchCounters prefetches the counter record at position hint of
// torrent h's shard (as counterHint returned it).
func (a *accountant) prefetchCounters(h *model.InfoHash, hint int32) {
	if hint < 0 {
		return
	}
	sh := a.shard(*h)
	var p uintptr
	sh.mu.Lock()
	if int(hint) < len(sh.counters.recs) {
		p = uintptr(unsafe.Pointer(&sh.counters.recs[hint]))
	}
	sh.mu.Unlock()
	if p != 0 {
		// A record is two cache lines of the page-aligned array.
		prefetch.Line(p)
		prefetch.Line(p + 64)
	}
}
