package announce

// Counters restored after a crash (offers). A node that died under a client
// could not hand that client's counters off: the node the client failed
// over to took its first announce there as a baseline awaiting a handoff
// that never came. When the dead node starts again it offers the counters
// it restored from its queue (the ones no announce has touched since) to
// every member; a node whose counters of that peer still await a handoff
// counts the gap between the offered numbers and its baseline, exactly as
// for a live handoff, and answers that it took them; the offering node then
// stops counting from them. A node that never comes back leaves the gap
// uncounted: nothing is counted twice.

// restoredCounters returns the counters loaded at start that no announce,
// handoff or offer has touched since.
func (a *accountant) restoredCounters() []PeerCounters {
	var out []PeerCounters
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.counters.each(func(k counterKey, c counterRec) bool {
			if c.restored && !c.handedOff {
				out = append(out, PeerCounters{UserID: k.user, Torrent: k.torrent, PeerID: k.peer,
					Uploaded: c.up, Downloaded: c.down, Completed: c.completed, Updated: c.updated})
			}
			return true
		})
		sh.mu.Unlock()
	}
	return out
}

// offer applies counters another node restored, only if this node's
// counters of that peer await a handoff; it reports whether it took them.
func (a *accountant) offer(pc PeerCounters, totalSize int64) bool {
	k := counterKey{pc.UserID, pc.Torrent, pc.PeerID}
	sh := a.shard(pc.Torrent)
	sh.mu.Lock()
	c, ok := sh.counters.get(k)
	if !ok || c.handedOff || !c.recon {
		sh.mu.Unlock()
		return false
	}
	// As importCounters does for a live handoff.
	du, dd := delta(c.reconUp, pc.Uploaded), delta(c.reconDown, pc.Downloaded)
	du, dd, badUp, badDown := a.plausible(du, dd, c.reconAt-pc.Updated, totalSize)
	if du|dd != 0 {
		a.addLocked(sh, k, du, dd, 0)
	}
	c.up, c.down = max(c.up, pc.Uploaded), max(c.down, pc.Downloaded)
	c.completed = c.completed || pc.Completed
	c.recon, c.restored = false, false
	sh.counters.set(k, c, false, true)
	sh.mu.Unlock()
	if badUp != 0 || badDown != 0 {
		a.logJump(k, badUp, badDown, totalSize)
	}
	return true
}

// release stops this node counting from restored counters another node
// took; counters an announce touched meanwhile are left alone.
func (a *accountant) release(pc PeerCounters) bool {
	k := counterKey{pc.UserID, pc.Torrent, pc.PeerID}
	sh := a.shard(pc.Torrent)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c, ok := sh.counters.get(k)
	if !ok || !c.restored || c.handedOff {
		return false
	}
	c.handedOff, c.recon, c.restored = true, false, false
	sh.counters.set(k, c, false, true)
	return true
}

// RestoredCounters returns the peer counters this node restored from its
// queue at start that nothing has touched since: what it offers the other
// nodes after a crash (see OfferCounters).
func (t *Tracker) RestoredCounters() []PeerCounters { return t.acct.restoredCounters() }

// OfferCounters applies counters a restarted node restored, if and only if
// this node's counters of that peer await a handoff (the client failed over
// here while that node was down): the gap is counted and it returns true.
// Otherwise nothing changes.
func (t *Tracker) OfferCounters(pc PeerCounters) bool {
	var size int64
	if ref, ok := t.reg.TorrentByHash(pc.Torrent); ok {
		size = ref.TotalSize
	}
	return t.acct.offer(pc, size)
}

// ReleaseCounters stops this node counting from restored counters that
// another node took in OfferCounters, unless an announce touched them
// since. It reports whether it released them.
func (t *Tracker) ReleaseCounters(pc PeerCounters) bool { return t.acct.release(pc) }
