package gossip

import (
	"encoding/binary"
	"time"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/model"
)

// view is one origin's peer set as this node knows it; the local node's
// own set is a view too.
type view struct {
	inc   uint64
	seq   uint64 // last batch applied
	peers map[peerKey]entry
	hash  uint64 // XOR of entry hashes

	// pending are batches that arrived ahead of a missing one, by seq.
	pending  map[uint64][]change
	gapSince time.Time // when a gap was first seen; zero when none
	syncAt   time.Time // when the full set was last asked for; zero when not waiting
}

func newView(inc uint64) *view {
	return &view{inc: inc, peers: map[peerKey]entry{}}
}

// replica is the replication state. Only the loop goroutine touches it.
type replica struct {
	g     *Gossip
	self  string
	views map[string]*view

	// hlc is the last claim time issued or seen (Unix ms).
	hlc int64
	// touched are local keys changed since the last batch.
	touched map[peerKey]struct{}
	// spareEvents is the event buffer drained by the last flush.
	spareEvents []announce.PeerEvent
	// handoffs to send, by new origin.
	handoffs map[string][]announce.PeerCounters

	lastBatch  time.Time
	digestSent bool
	peerBuf    []announce.Peer
}

// localPeer is one address of a local peer, as Peers.LocalPeers gives it.
type localPeer struct {
	swarm model.InfoHash
	peer  announce.Peer
}

func (r *replica) init(g *Gossip) {
	r.g = g
	r.self = g.cfg.NodeID
	r.views = map[string]*view{r.self: newView(g.inc)}
	r.touched = map[peerKey]struct{}{}
	r.handoffs = map[string][]announce.PeerCounters{}
	r.digestSent = true
	g.lone.Store(true)
}

// leaveLone starts keeping the local view: a new incarnation, so that a
// node holding an older copy of it (one that kept this node a member when
// this node saw none) drops that copy and pulls the new one, with the
// local peers as the tracker holds them now.
func (r *replica) leaveLone() {
	g := r.g
	if !g.lone.Load() {
		return
	}
	// Changes made before observe sees this are in the tracker's table
	// when LocalPeers reads it below (observe runs under the lock of the
	// change's shard, which LocalPeers takes after); later ones are queued
	// and applied over it by the next flush (puts and removes of the
	// latest state, so applying one twice changes nothing).
	g.lone.Store(false)
	g.evMu.Lock()
	g.events = g.events[:0]
	g.evMu.Unlock()
	lv := r.local()
	lv.inc = max(lv.inc+1, uint64(time.Now().UnixNano()))
	// Past every seq a receiver applied from an older incarnation, and
	// never 1: a receiver with no copy sees a gap and pulls the full set.
	lv.seq++
	// Applied after the walk: update may call into the tracker's table,
	// which LocalPeers holds locked.
	var peers []localPeer
	g.peers.LocalPeers(func(swarm model.InfoHash, p announce.Peer, _ uint64) bool {
		peers = append(peers, localPeer{swarm, p})
		return true
	})
	for _, lp := range peers {
		r.putLocal(lv, peerKey{lp.swarm, lp.peer.ID}, &lp.peer)
	}
	g.publishDigest()
	g.log.Info("gossip: keeping the local peer view for members", "peers", len(lv.peers), "incarnation", lv.inc)
}

// enterLone stops keeping the local view once no other node is a member
// and no other view is left.
func (r *replica) enterLone() {
	if r.g.lone.Load() || len(r.views) > 1 || len(r.g.aliveOthers()) > 0 {
		return
	}
	r.g.lone.Store(true)
	lv := r.local()
	clear(lv.peers)
	lv.hash = 0
	clear(r.touched)
	r.g.log.Info("gossip: no other members; not keeping the local peer view")
}

// putLocal records local peer p of k's swarm with a new claim time.
func (r *replica) putLocal(lv *view, k peerKey, p *announce.Peer) {
	e, ok := lv.peers[k]
	if !ok {
		e = entry{}
	}
	e.setAddr(p.Addr)
	if p.Seeder {
		e.flags |= flagSeeder
	} else {
		e.flags &^= flagSeeder
	}
	e.at = r.next()
	r.update(r.self, lv, k, &e)
}

func (r *replica) local() *view { return r.views[r.self] }

// next issues a claim time later than every one issued or seen.
func (r *replica) next() int64 {
	r.hlc = max(time.Now().UnixMilli(), r.hlc+1)
	return r.hlc
}

func (g *Gossip) loop() {
	defer close(g.loopDone)
	r := &g.r
	tick := time.NewTicker(g.cfg.BatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
			g.inMu.Lock()
			items := g.inbox
			g.inbox = nil
			g.inMu.Unlock()
			for _, it := range items {
				r.handle(it)
			}
			r.sendHandoffs()
		case <-g.evWake:
			// Leading edge: the first change after a quiet spell goes out
			// at once; under load changes wait for the next tick, so at
			// most one batch leaves per BatchInterval.
			if now := time.Now(); now.Sub(r.lastBatch) >= g.cfg.BatchInterval {
				r.flush(now)
				r.sendHandoffs()
			}
		case now := <-tick.C:
			if now.Sub(r.lastBatch) >= g.cfg.BatchInterval/2 {
				r.flush(now)
			}
			r.checkGaps(now)
			r.sendHandoffs()
		}
	}
}

// flush applies the queued local events to the local view and sends the
// changed peers as one batch.
func (r *replica) flush(now time.Time) {
	g := r.g
	// Swap the event buffer for the one drained last time: the two grow to
	// the busiest interval's size once instead of on every flush.
	g.evMu.Lock()
	evs := g.events
	g.events = r.spareEvents[:0]
	g.evMu.Unlock()
	defer func() { r.spareEvents = evs[:0] }()
	if g.lone.Load() {
		return // nobody to tell; leaveLone reads the tracker's table
	}
	lv := r.local()
	for i := range evs {
		ev := &evs[i]
		k := peerKey{ev.Swarm, ev.Peer.ID}
		switch ev.Kind {
		case announce.PeerPut:
			r.putLocal(lv, k, &ev.Peer)
		case announce.PeerRemoved:
			r.update(r.self, lv, k, nil)
		}
		r.touched[k] = struct{}{}
	}
	if len(r.touched) > 0 {
		lv.seq++
		b := appendHeader(make([]byte, 0, 64+len(r.touched)*maxPutEntry), header{typ: msgDelta, origin: r.self, inc: lv.inc, seq: lv.seq})
		b = binary.AppendUvarint(b, uint64(len(r.touched)))
		for k := range r.touched {
			if e, ok := lv.peers[k]; ok {
				b = appendPut(b, k, &e)
			} else {
				b = appendRemove(b, k)
			}
		}
		clear(r.touched)
		n := g.sendAll(b)
		g.stats.batchesSent.Add(1)
		g.stats.batchBytes.Add(uint64(n * len(b)))
		r.lastBatch = now
		r.digestSent = false
		g.publishDigest()
	}
	if !r.digestSent && now.Sub(r.lastBatch) >= g.cfg.DigestDelay {
		r.digestSent = true
		g.sendAll(r.digestMsg())
		g.stats.digestsSent.Add(1)
	}
}

func (r *replica) digestMsg() []byte {
	lv := r.local()
	b := appendHeader(make([]byte, 0, 48), header{typ: msgDigest, origin: r.self, inc: lv.inc, seq: lv.seq})
	b = binary.AppendUvarint(b, uint64(len(lv.peers)))
	return binary.BigEndian.AppendUint64(b, lv.hash)
}

// publishDigest makes the local digest available to push-pull, which runs
// on memberlist's goroutines.
func (g *Gossip) publishDigest() {
	d := g.r.digestMsg()
	g.digest.Store(&d)
}

// checkGaps pulls the full set of origins whose missing batch has not come.
func (r *replica) checkGaps(now time.Time) {
	for origin, v := range r.views {
		if origin != r.self && !v.gapSince.IsZero() && now.Sub(v.gapSince) >= r.g.cfg.GapTimeout {
			r.requestSync(origin, v, now)
		}
	}
}

func (r *replica) requestSync(origin string, v *view, now time.Time) {
	if !v.syncAt.IsZero() && now.Sub(v.syncAt) < r.g.cfg.SyncTimeout {
		return
	}
	v.syncAt = now
	g := r.g
	g.stats.syncRequests.Add(1)
	g.sendReliable(origin, appendHeader(nil, header{typ: msgSyncReq, origin: r.self}), 4, func(err error) {
		if err != nil {
			g.enqueue(inItem{syncFailed: origin})
		}
	})
}

func (r *replica) handle(it inItem) {
	g := r.g
	switch {
	case it.joined != "":
		r.leaveLone()
		// A new or returning node: pull its set (the views of a dead node
		// were dropped).
		v := r.views[it.joined]
		if v == nil {
			v = newView(0)
			r.views[it.joined] = v
		}
		v.syncAt = time.Time{}
		r.requestSync(it.joined, v, time.Now())
		// And tell it which run of this node it talks to, so a node that
		// restarted before the others noticed has its old peers dropped.
		if n := g.node(it.joined); n != nil {
			_ = g.ml.SendBestEffort(n, r.digestMsg())
		}
		r.offerRestored(it.joined)
		return
	case it.left != "":
		r.dropOrigin(it.left)
		r.enterLone()
		return
	case it.syncFailed != "":
		// Ask again after GapTimeout while the origin is a member.
		if v := r.views[it.syncFailed]; v != nil && g.isAlive(it.syncFailed) {
			v.syncAt = time.Time{}
			if v.gapSince.IsZero() {
				v.gapSince = time.Now()
			}
		}
		return
	}
	m, err := decode(it.msg)
	if err != nil {
		g.stats.badMessages.Add(1)
		g.log.Warn("undecodable gossip message", "err", err, "bytes", len(it.msg))
		return
	}
	if m.origin != r.self {
		// Another node talks to this one (perhaps before its join shows
		// here): what it asks for or compares must be the real view.
		r.leaveLone()
	}
	switch m.typ {
	case msgSyncReq:
		if m.origin == r.self {
			return
		}
		r.flush(time.Now()) // the full set then matches the last batch sent
		lv := r.local()
		b := appendHeader(make([]byte, 0, 64+len(lv.peers)*maxPutEntry), header{typ: msgFull, origin: r.self, inc: lv.inc, seq: lv.seq})
		b = binary.AppendUvarint(b, uint64(len(lv.peers)))
		for k, e := range lv.peers {
			b = appendPut(b, k, &e)
		}
		g.stats.fullSent.Add(1)
		g.sendReliable(m.origin, b, 3)
		return
	case msgLeave:
		if m.origin != r.self {
			r.dropOrigin(m.origin) // NotifyMsg marked it leaving
		}
		return
	case msgHandoff:
		for _, pc := range m.handoffs {
			g.peers.ImportPeerCounters(pc)
			g.stats.handoffsIn.Add(1)
		}
		return
	case msgOffer:
		r.takeOffer(m.origin, m.handoffs)
		return
	case msgTaken:
		r.release(m.handoffs)
		return
	}
	if m.origin == r.self || !g.isAlive(m.origin) {
		return // stale news of a node that is not a member now
	}
	v := r.views[m.origin]
	if v == nil {
		v = newView(m.inc)
		r.views[m.origin] = v
	}
	switch {
	case m.inc < v.inc:
		return // from a previous run of the origin, delayed
	case m.inc > v.inc:
		// The origin restarted: its old peers are gone.
		r.clearView(m.origin, v)
		v.inc = m.inc
	}
	now := time.Now()
	for _, c := range m.changes {
		if c.e != nil {
			r.hlc = max(r.hlc, c.e.at)
		}
	}
	switch m.typ {
	case msgDelta:
		switch {
		case m.seq <= v.seq:
			return // a duplicate or a batch the full set already held
		case m.seq == v.seq+1:
			r.applyChanges(m.origin, v, m.changes)
			v.seq = m.seq
			r.drainPending(m.origin, v, now)
		default:
			if v.pending == nil {
				v.pending = map[uint64][]change{}
			}
			if len(v.pending) < 4096 {
				v.pending[m.seq] = m.changes
			}
			if v.gapSince.IsZero() {
				v.gapSince = now
			}
		}
	case msgFull:
		g.stats.fullReceived.Add(1)
		full := make(map[peerKey]*entry, len(m.changes))
		for _, c := range m.changes {
			full[c.key] = c.e
		}
		for k := range v.peers {
			if _, ok := full[k]; !ok {
				r.update(m.origin, v, k, nil)
			}
		}
		for k, e := range full {
			r.update(m.origin, v, k, e)
		}
		v.seq = max(v.seq, m.seq)
		v.syncAt = time.Time{}
		v.gapSince = time.Time{}
		for s := range v.pending {
			if s <= v.seq {
				delete(v.pending, s)
			}
		}
		r.drainPending(m.origin, v, now)
	case msgDigest:
		if m.seq < v.seq {
			return // older than what this node applied
		}
		if m.seq > v.seq || m.count != uint64(len(v.peers)) || m.hash != v.hash {
			if v.gapSince.IsZero() {
				v.gapSince = now
			}
			if m.seq == v.seq || len(v.pending) == 0 {
				// Nothing in flight can fix it: pull now.
				r.requestSync(m.origin, v, now)
			}
		}
	}
}

// drainPending applies buffered batches that follow v.seq.
func (r *replica) drainPending(origin string, v *view, now time.Time) {
	for {
		ch, ok := v.pending[v.seq+1]
		if !ok {
			break
		}
		delete(v.pending, v.seq+1)
		r.applyChanges(origin, v, ch)
		v.seq++
	}
	if len(v.pending) == 0 {
		v.gapSince = time.Time{}
	} else {
		v.gapSince = now // still missing one
	}
}

func (r *replica) applyChanges(origin string, v *view, changes []change) {
	for _, c := range changes {
		r.update(origin, v, c.key, c.e)
	}
}

// clearView removes every peer of v (an origin that restarted or died).
func (r *replica) clearView(origin string, v *view) {
	for k := range v.peers {
		r.update(origin, v, k, nil)
	}
	v.seq = 0
	v.pending = nil
	v.gapSince = time.Time{}
}

// dropOrigin forgets a dead or departed origin's peers.
func (r *replica) dropOrigin(origin string) {
	if origin == r.self {
		return
	}
	if v := r.views[origin]; v != nil {
		r.clearView(origin, v)
		delete(r.views, origin)
	}
	r.g.peers.DropOrigin(origin) // anything the views missed
}

// winner returns the origin whose claim of k is the latest, and its entry.
// Ties go to the greater origin name, so every node picks the same one.
func (r *replica) winner(k peerKey) (string, entry) {
	var best string
	var be entry
	for origin, v := range r.views {
		e, ok := v.peers[k]
		if !ok {
			continue
		}
		if best == "" || e.at > be.at || (e.at == be.at && origin > best) {
			best, be = origin, e
		}
	}
	return best, be
}

// update sets (e != nil) or removes origin's claim of peer k and brings the
// tracker's peer table in line with the winning claim.
func (r *replica) update(origin string, v *view, k peerKey, e *entry) {
	old, had := v.peers[k]
	if e == nil && !had || e != nil && had && old == *e {
		return
	}
	prevO, prevE := r.winner(k)
	if had {
		v.hash ^= old.hash(k)
	}
	if e == nil {
		delete(v.peers, k)
	} else {
		v.peers[k] = *e
		v.hash ^= e.hash(k)
	}
	nextO, nextE := r.winner(k)
	if prevO == nextO && (prevO == "" || prevE.sameAddrs(&nextE)) {
		return
	}
	g := r.g
	if prevO != "" && prevO != r.self && (nextO == "" || prevE.flags&^nextE.flags&(flagHas4|flagHas6) != 0) {
		g.peers.RemoveRemote(prevO, k.swarm, k.id)
	}
	if nextO == "" || nextO == r.self {
		return
	}
	r.peerBuf = nextE.peers(k.id, r.peerBuf[:0])
	for _, p := range r.peerBuf {
		if pc, ok := g.peers.PutRemotePeer(nextO, k.swarm, p); ok {
			r.handoffs[nextO] = append(r.handoffs[nextO], pc)
		}
	}
	if prevO == r.self {
		// The client moved to nextO: this node no longer serves it.
		lv := r.local()
		if le, ok := lv.peers[k]; ok {
			lv.hash ^= le.hash(k)
			delete(lv.peers, k)
			r.touched[k] = struct{}{}
		}
	}
}

// sendHandoffs delivers handed-off counters to the peers' new origins.
func (r *replica) sendHandoffs() {
	g := r.g
	for origin, pcs := range r.handoffs {
		b := appendHeader(nil, header{typ: msgHandoff, origin: r.self})
		b = binary.AppendUvarint(b, uint64(len(pcs)))
		for i := range pcs {
			b = appendCounters(b, &pcs[i])
		}
		n := uint64(len(pcs))
		g.sendReliable(origin, b, 5, func(err error) {
			if err != nil {
				g.stats.handoffsFailed.Add(n)
				g.log.Warn("counter handoff not delivered; the transfer since the peer's last announce here is not counted",
					"to", origin, "peers", n, "err", err)
				return
			}
			g.stats.handoffsSent.Add(n)
		})
		delete(r.handoffs, origin)
	}
}
