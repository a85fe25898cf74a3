package announce

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// Ratio accounting rules (exact: nothing lost, nothing counted twice).
//
//   - A peer's counters are keyed by (user, torrent, peer_id), never by
//     address: a dual-stack client announcing over IPv4 and IPv6 reports the
//     same bytes twice, and the second report is a zero delta. The torrent is
//     TorrentRef.ID, so the two hashes of a hybrid torrent share counters.
//   - The first announce of an unknown (user, torrent, peer_id) is a baseline:
//     its uploaded/downloaded are remembered, not counted.
//   - Later announces count value - last for each of uploaded and downloaded.
//   - Counter reset: a value lower than the last one (a client restarted
//     with the same peer_id) becomes the new baseline for that counter and
//     counts nothing; no delta is ever negative.
//   - Implausible jump: an uploaded or downloaded delta above
//     MaxRate * seconds-since-last-announce + JumpSlack, or a downloaded delta
//     above the torrent's TotalSize + JumpSlack, is not counted (the new value
//     still becomes the baseline) and is logged at warn level.
//   - A snatch is counted once per (user, torrent, peer_id): on
//     event=completed, or when a peer last seen here with left > 0 reports
//     left = 0 (its completed announce was lost, e.g. in a crash of this
//     node).
//   - The last counters of every peer are persisted with each flushed batch in
//     the same bbolt transaction, so after a crash the announces that were
//     accounted in memory but not flushed are counted again from the
//     persisted baseline, exactly once, at the peer's next announce. Only a
//     peer that resets its counters or changes its peer_id before that next
//     announce loses what it transferred in the last FlushInterval before
//     the crash.
//   - Counters not updated for CounterTTL are forgotten; the peer's next
//     announce is a baseline.
//
// Failover between nodes (counter handoff). A peer is counted by the node it
// announces to. When node B learns through gossip that node A now serves a
// peer (Tracker.PutRemotePeer), B hands its counters for that peer off: it
// stops counting from them and returns them for the gossip layer to deliver
// to A's ImportPeerCounters. A took the first announce it saw of the peer as
// a baseline and remembered it as "awaiting handoff"; the handed-off counters
// let A count the gap between B's last numbers and that baseline. So a
// client that moves (even one that announces to several nodes in turn) is
// counted once, provided the handoff arrives before the client's next
// announce to A (gossip converges in about a second, announce intervals are
// minutes). If the handoff never arrives (B died), the gap since B's last
// announce is lost; nothing is counted twice.

// Flushing. Every FlushInterval the accountant's shards are flushed in
// FlushSlices slices spread over FlushSpread: each slice's deltas become a
// batch of their own, keyed by (node id, next sequence number) and
// persisted in the local queue with the counters they were computed against
// (one shard's deltas and counters always travel together). So an interval
// makes a few dozen small raft commands instead of one large one; each
// still applies exactly once, and a crash between slices leaves the
// unflushed shards' deltas to be recovered like any unflushed delta. The
// flush of everything at once cost about a second of CPU in one go at
// 60,000 announces/s, and the answers queued behind it waited hundreds of ms.

// numStatsShards is the number of independently locked parts of the
// accountant, picked by the torrent hash like the peer store's shards. Each
// has its own counter log in the stats queue, so the number is part of the
// file format (at most 256: the log's key has one byte for it).
const numStatsShards = 64

// shardOf returns the accountant shard of a torrent.
func shardOf(h model.InfoHash) int { return int(h[0]) % numStatsShards }

// PeerCounters are the last cumulative counters a peer reported for a
// torrent, as handed from one node to another when a client fails over.
type PeerCounters struct {
	UserID     uint64
	Torrent    model.InfoHash // TorrentRef.ID
	PeerID     [20]byte
	Uploaded   uint64
	Downloaded uint64
	// Completed is true once the peer's event=completed was counted.
	Completed bool
	// Updated is when the numbers were reported, Unix seconds.
	Updated int64
}

type counterKey struct {
	user    uint64
	torrent model.InfoHash
	peer    [20]byte
}

// peerKey finds a peer's counters without knowing its user (handoff).
type peerKey struct {
	torrent model.InfoHash
	peer    [20]byte
}

// counterRec is a peer's last counters on this node.
type counterRec struct {
	up, down  uint64
	updated   int64 // Unix seconds of the last report
	completed bool
	leeching  bool // the last report had left > 0
	// handedOff: another node serves the peer now; these numbers were handed
	// to it and no longer count here.
	handedOff bool
	// recon: the first numbers of a peer new to this node (reconUp,
	// reconDown at reconAt) await another node's handoff to count the gap.
	recon bool
	// restored: loaded from the queue at start and not touched since, so
	// they may be another node's to count from (see offer.go).
	restored           bool
	reconUp, reconDown uint64
	reconAt            int64
}

type sumKey struct {
	user    uint64
	torrent model.InfoHash
}

type sums struct {
	up, down, snatches uint64
}

func (s *sums) add(d sums) {
	s.up += d.up
	s.down += d.down
	s.snatches += d.snatches
}

type statsShard struct {
	mu       sync.Mutex
	counters counterStore            // with the unflushed deltas
	deleted  map[counterKey]struct{} // forgotten since the last flush
}

// accountant turns cumulative per-peer counters into per-(user, torrent)
// deltas. It never blocks on anything but its own short critical sections.
type accountant struct {
	shards     [numStatsShards]statsShard
	maxRate    int64
	slack      int64
	counterTTL time.Duration
	log        *slog.Logger
}

func newAccountant(cfg *Config, log *slog.Logger) *accountant {
	a := &accountant{maxRate: cfg.MaxRate, slack: cfg.JumpSlack, counterTTL: cfg.CounterTTL, log: log}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.counters = newCounterStore()
		sh.deleted = map[counterKey]struct{}{}
	}
	return a
}

func (a *accountant) shard(h model.InfoHash) *statsShard {
	return &a.shards[shardOf(h)]
}

// report is one announce's numbers for the accountant.
type report struct {
	user      uint64
	torrent   model.TorrentRef
	peer      [20]byte
	up, down  uint64
	completed bool
	seeding   bool // left == 0
}

// account applies one announce and reports whether it counted a new snatch.
func (a *accountant) account(r *report, now time.Time) (snatch bool) {
	snatch, _ = a.accountAt(r, now, -1)
	return snatch
}

// accountAt is account with hint, where the peer's counters were last (as
// accountAt returned it; any value is safe, -1 if unknown). It also returns
// where they are now, for the next announce of the peer.
func (a *accountant) accountAt(r *report, now time.Time, hint int32) (snatch bool, at int32) {
	k := counterKey{r.user, r.torrent.ID, r.peer}
	nowS := now.Unix()
	var badUp, badDown uint64
	sh := a.shard(r.torrent.ID)
	sh.mu.Lock()
	// One index lookup at most, none with a valid hint: recs[at] is updated
	// in place below (nothing in between adds or moves records).
	at = sh.counters.find(k, hint)
	var c counterRec
	var known bool
	if at >= 0 {
		c, known = sh.counters.recs[at].c, true
	} else {
		c, known = sh.counters.other(k)
	}
	own := false
	var add sums
	if !known || c.handedOff {
		// New here: a baseline, awaiting a possible handoff.
		completed := known && c.completed
		c = counterRec{up: r.up, down: r.down, updated: nowS, completed: completed,
			recon: true, reconUp: r.up, reconDown: r.down, reconAt: nowS}
		own = true
	} else {
		du, dd := delta(r.up, c.up), delta(r.down, c.down)
		du, dd, badUp, badDown = a.plausible(du, dd, nowS-c.updated, r.torrent.TotalSize)
		c.up, c.down, c.updated, c.restored = r.up, r.down, nowS, false
		add.up, add.down = du, dd
	}
	finished := r.completed || (r.seeding && c.leeching)
	c.leeching = !r.seeding
	if finished && !c.completed {
		c.completed, snatch = true, true
		add.snatches = 1
	}
	if at >= 0 {
		sh.counters.update(at, c)
	} else {
		at = sh.counters.set(k, c, own, true)
	}
	if add != (sums{}) {
		if at >= 0 {
			sh.counters.addPending(at, k, add)
		} else {
			sh.counters.addSpill(sumKey{k.user, k.torrent}, add)
		}
	}
	if len(sh.deleted) > 0 {
		delete(sh.deleted, k)
	}
	sh.mu.Unlock()
	if badUp != 0 || badDown != 0 {
		a.logJump(k, badUp, badDown, r.torrent.TotalSize)
	}
	return snatch, at
}

// plausible applies the jump rules to deltas over elapsed seconds. It returns
// the deltas to count and the ones it refused.
func (a *accountant) plausible(du, dd uint64, elapsed, totalSize int64) (okUp, okDown, badUp, badDown uint64) {
	limit := satMulAdd(a.maxRate, max(elapsed, 1), a.slack)
	if du > limit {
		badUp, du = du, 0
	}
	if dd > limit || (totalSize > 0 && dd > uint64(totalSize)+uint64(a.slack)) {
		badDown, dd = dd, 0
	}
	return du, dd, badUp, badDown
}

func (a *accountant) logJump(k counterKey, badUp, badDown uint64, totalSize int64) {
	a.log.Warn("implausible counter jump not counted",
		"user", k.user, "torrent", k.torrent.String(), "peer_id", hex.EncodeToString(k.peer[:]),
		"uploaded_delta", badUp, "downloaded_delta", badDown, "total_size", totalSize)
}

func (a *accountant) addLocked(sh *statsShard, k counterKey, up, down, snatches uint64) {
	sh.counters.addPending(-1, k, sums{up, down, snatches})
}

// delta returns now-last, or 0 when the counter went back (a reset).
func delta(now, last uint64) uint64 {
	if now < last {
		return 0
	}
	return now - last
}

// satMulAdd returns rate*secs+slack, saturating instead of overflowing.
func satMulAdd(rate, secs, slack int64) uint64 {
	if rate <= 0 || secs <= 0 {
		return uint64(max(slack, 0))
	}
	const maxU = ^uint64(0)
	if uint64(secs) > maxU/uint64(rate) {
		return maxU
	}
	p := uint64(rate) * uint64(secs)
	if p > maxU-uint64(max(slack, 0)) {
		return maxU
	}
	return p + uint64(max(slack, 0))
}

// Counters returns the live (not handed-off) last counters of a peer.
func (a *accountant) Counters(user uint64, torrent model.InfoHash, peer [20]byte) (PeerCounters, bool) {
	k := counterKey{user, torrent, peer}
	sh := a.shard(torrent)
	sh.mu.Lock()
	c, ok := sh.counters.get(k)
	sh.mu.Unlock()
	if !ok || c.handedOff {
		return PeerCounters{}, false
	}
	return PeerCounters{UserID: user, Torrent: torrent, PeerID: peer, Uploaded: c.up, Downloaded: c.down, Completed: c.completed, Updated: c.updated}, true
}

// importCounters applies counters another node handed off (or gossip
// carried) and reports whether they changed anything here:
//   - if this node's counters for the peer await a handoff, the gap between
//     pc and this node's first numbers is counted (jump rules apply) and the
//     baseline is raised to pc where pc is ahead;
//   - else if this node has no live counters for the peer, or older ones, pc
//     becomes the baseline (the peer's next announce counts from it);
//   - else (this node's counters are newer) pc is ignored.
func (a *accountant) importCounters(pc PeerCounters, totalSize int64) bool {
	k := counterKey{pc.UserID, pc.Torrent, pc.PeerID}
	var badUp, badDown uint64
	sh := a.shard(pc.Torrent)
	sh.mu.Lock()
	c, known := sh.counters.get(k)
	switch {
	case known && !c.handedOff && c.recon:
		du, dd := delta(c.reconUp, pc.Uploaded), delta(c.reconDown, pc.Downloaded)
		du, dd, badUp, badDown = a.plausible(du, dd, c.reconAt-pc.Updated, totalSize)
		if du|dd != 0 {
			a.addLocked(sh, k, du, dd, 0)
		}
		c.up, c.down = max(c.up, pc.Uploaded), max(c.down, pc.Downloaded)
		c.completed = c.completed || pc.Completed
		c.recon, c.restored = false, false
	case known && !c.handedOff && c.updated >= pc.Updated:
		sh.mu.Unlock()
		return false
	default:
		c = counterRec{up: pc.Uploaded, down: pc.Downloaded, updated: pc.Updated, completed: pc.Completed || (known && c.completed)}
	}
	sh.counters.set(k, c, true, true)
	delete(sh.deleted, k)
	sh.mu.Unlock()
	if badUp != 0 || badDown != 0 {
		a.logJump(k, badUp, badDown, totalSize)
	}
	return true
}

// handOff marks this node's live counters of peer in torrent as handed off
// to another node and returns them; false if there are none.
func (a *accountant) handOff(torrent model.InfoHash, peer [20]byte) (PeerCounters, bool) {
	sh := a.shard(torrent)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	user, ok := sh.counters.owner(peerKey{torrent, peer})
	if !ok {
		return PeerCounters{}, false
	}
	k := counterKey{user, torrent, peer}
	c, ok := sh.counters.get(k)
	if !ok || c.handedOff {
		return PeerCounters{}, false
	}
	c.handedOff, c.recon = true, false
	sh.counters.set(k, c, false, true)
	return PeerCounters{UserID: user, Torrent: torrent, PeerID: peer, Uploaded: c.up, Downloaded: c.down, Completed: c.completed, Updated: c.updated}, true
}

// count returns the number of counters held.
func (a *accountant) count() int {
	n := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		n += sh.counters.len()
		sh.mu.Unlock()
	}
	return n
}

// unload removes a counter at startup (deleted after it was persisted).
func (a *accountant) unload(k counterKey) {
	sh := a.shard(k.torrent)
	sh.mu.Lock()
	sh.counters.del(k)
	sh.mu.Unlock()
}

// expire forgets, at startup, the counters not updated since cut and
// returns their keys.
func (a *accountant) expire(cut int64) []counterKey {
	var keys []counterKey
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.counters.each(func(k counterKey, c counterRec) bool {
			if c.updated < cut {
				keys = append(keys, k)
				return false
			}
			return true
		})
		sh.mu.Unlock()
	}
	return keys
}

// load installs a persisted counter at startup.
func (a *accountant) load(k counterKey, c counterRec) {
	c.restored = !c.handedOff
	sh := a.shard(k.torrent)
	sh.mu.Lock()
	sh.counters.set(k, c, true, false)
	sh.mu.Unlock()
}

// sweep forgets counters not updated since now-counterTTL and returns how
// many it forgot.
func (a *accountant) sweep(now time.Time) int {
	cut := now.Add(-a.counterTTL).Unix()
	n := 0
	pc := pace.New(0)
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.counters.each(func(k counterKey, c counterRec) bool {
			if c.updated < cut {
				sh.deleted[k] = struct{}{}
				n++
				return false
			}
			return true
		})
		live := sh.counters.len()
		sh.mu.Unlock()
		pc.StepN(live)
	}
	return n
}

// flushSet is what one flush takes out of the accountant: the deltas and,
// per shard, the counters they were computed against, consistent per shard.
type flushSet struct {
	deltas []model.StatsDelta
	parts  []logPart
	// dropLegacy: the parts rewrite every shard (full) and the counters in
	// the formats before the per-shard log are dropped.
	dropLegacy bool
	// scratch backs the parts' puts (see take).
	scratch []byte
}

// logPart is one accountant shard's counter changes, persisted in that
// shard's counter log.
type logPart struct {
	shard int
	// puts are the changed counters as records of the log (logPutLen bytes
	// each, see appendPut): encoded once, under the shard's lock, and
	// written to the log as they are.
	puts []byte
	dels []counterKey
	// full: puts hold every live counter of the shard (a compaction of its
	// log), not only the changed ones.
	full bool
}

func (p *logPart) empty() bool { return len(p.puts) == 0 && len(p.dels) == 0 && !p.full }

// addPut appends k's counters c to p's puts.
func (p *logPart) addPut(k counterKey, c counterRec) { p.puts = appendPut(p.puts, k, c) }

// nputs returns the number of counters in p's puts.
func (p *logPart) nputs() int { return len(p.puts) / logPutLen }

// putKey returns the key of p's i-th put.
func (p *logPart) putKey(i int) counterKey {
	return decodeCounterKey(p.puts[i*logPutLen+1 : i*logPutLen+1+counterKeyLen])
}

func (f *flushSet) empty() bool {
	if len(f.deltas) > 0 || f.dropLegacy {
		return false
	}
	for i := range f.parts {
		if !f.parts[i].empty() {
			return false
		}
	}
	return true
}

// counters returns the number of counter changes in f.
func (f *flushSet) counters() int {
	n := 0
	for i := range f.parts {
		n += f.parts[i].nputs() + len(f.parts[i].dels)
	}
	return n
}

// take removes the pending deltas and dirty counters of shards [lo, hi).
// A shard for which full(shard, live counters) is true gives every counter
// instead of the dirty ones (full runs under the shard's lock). Deltas come
// out sorted by (user, torrent), so a batch's encoding is deterministic.
// The parts' puts are carved from scratch (grown as needed and returned in
// flushSet.scratch), so a caller that reuses it allocates nothing for them
// in the steady state.
func (a *accountant) take(lo, hi int, full func(shard, live int) bool, scratch []byte, pc *pace.Pacer) flushSet {
	var f flushSet
	all := scratch[:0]
	var ends []int // per part: where its puts end in all
	put := func(k counterKey, c counterRec) { all = appendPut(all, k, c) }
	pend := func(k sumKey, d sums) {
		f.deltas = append(f.deltas, model.StatsDelta{UserID: k.user, Torrent: k.torrent, Uploaded: d.up, Downloaded: d.down, Snatches: d.snatches})
	}
	// Size the buffers for all the shards first: growing them shard by
	// shard copied a flush of every shard many times over (0.5 s of CPU
	// for 300,000 counters). What arrives in between is grown below. The
	// full decision is made here, once per shard.
	var puts, deltas int
	var isFull [numStatsShards]bool
	for i := lo; i < hi; i++ {
		sh := &a.shards[i]
		sh.mu.Lock()
		isFull[i] = full != nil && full(i, sh.counters.len())
		if isFull[i] {
			puts += sh.counters.len()
		} else {
			puts += sh.counters.dirtyLen()
		}
		deltas += sh.counters.dirtyLen() + len(sh.counters.spill)
		sh.mu.Unlock()
	}
	all = slices.Grow(all, puts*logPutLen)
	f.deltas = make([]model.StatsDelta, 0, deltas)
	for i := lo; i < hi; i++ {
		start := len(all)
		sh := &a.shards[i]
		sh.mu.Lock()
		p := logPart{shard: i, full: isFull[i]}
		f.deltas = slices.Grow(f.deltas, sh.counters.dirtyLen()+len(sh.counters.spill))
		if p.full {
			all = slices.Grow(all, sh.counters.len()*logPutLen)
			sh.counters.takeDirty(nil, pend)
			sh.counters.each(func(k counterKey, c counterRec) bool { put(k, c); return true })
		} else {
			all = slices.Grow(all, sh.counters.dirtyLen()*logPutLen)
			sh.counters.takeDirty(put, pend)
		}
		// A full part's log rewrite leaves the deleted out anyway; they are
		// kept for restore.
		for k := range sh.deleted {
			p.dels = append(p.dels, k)
		}
		clear(sh.deleted)
		sh.mu.Unlock()
		if len(all) > start || !p.empty() {
			f.parts = append(f.parts, p)
			ends = append(ends, len(all))
		}
		pc.StepN((len(all) - start) / logPutLen) // between shards, with no lock held
	}
	start := 0
	for i := range f.parts {
		f.parts[i].puts = all[start:ends[i]:ends[i]]
		start = ends[i]
	}
	f.scratch = all
	f.deltas = sumDeltas(f.deltas)
	pc.StepN(len(f.deltas))
	return f
}

// sumDeltas sorts ds by (user, torrent) and adds up the deltas of each
// (user, torrent) (the peers of one user in one torrent report apart).
func sumDeltas(ds []model.StatsDelta) []model.StatsDelta {
	slices.SortFunc(ds, func(x, y model.StatsDelta) int {
		if x.UserID != y.UserID {
			if x.UserID < y.UserID {
				return -1
			}
			return 1
		}
		return bytes.Compare(x.Torrent[:], y.Torrent[:])
	})
	out := ds[:0]
	for _, d := range ds {
		if n := len(out); n > 0 && out[n-1].UserID == d.UserID && out[n-1].Torrent == d.Torrent {
			out[n-1].Uploaded += d.Uploaded
			out[n-1].Downloaded += d.Downloaded
			out[n-1].Snatches += d.Snatches
			continue
		}
		out = append(out, d)
	}
	return out
}

// everyShard is a take filter that rewrites every shard's log.
func everyShard(int, int) bool { return true }

// restore puts back what take removed, after the flush failed to persist it.
func (a *accountant) restore(f flushSet) {
	for _, d := range f.deltas {
		sh := a.shard(d.Torrent)
		sh.mu.Lock()
		sh.counters.addSpill(sumKey{d.UserID, d.Torrent}, sums{d.Uploaded, d.Downloaded, d.Snatches})
		sh.mu.Unlock()
	}
	for _, p := range f.parts {
		sh := &a.shards[p.shard]
		sh.mu.Lock()
		for i := range p.nputs() {
			sh.counters.markDirty(p.putKey(i))
		}
		for _, k := range p.dels {
			if _, ok := sh.counters.get(k); !ok {
				sh.deleted[k] = struct{}{}
			}
		}
		sh.mu.Unlock()
	}
}

// StatsCommitter applies flushed stats batches to the replicated state.
type StatsCommitter interface {
	// CommitStats returns nil once the batch is applied; applying the same
	// (NodeID, Seq) twice is a no-op on the other side, so retrying is safe.
	CommitStats(ctx context.Context, b model.StatsBatch) error
}
