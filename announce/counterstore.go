package announce

import "math"

// counterStore is one accountant shard's peer counters: one dense array of
// records and an index by (torrent, peer_id) (counterIndex), so an announce
// finds its record with at most one index lookup (none when the peer
// store's hint is right) and updates it in place. Neither holds pointers,
// so the garbage collector does not scan them. With the peer store, the
// tracker takes 239 bytes per peer at 1M peers (645 with the maps this
// replaced; BENCHMARKS.md).
//
// A (torrent, peer_id) normally has counters under one user. When another
// user announces the same peer_id in the same torrent, the record holds the
// counters of the user who created them last (the "owner", whose counters a
// handoff moves), and the others wait in the small others map. Not safe for
// concurrent use: the shard's lock guards it.
//
// The deltas counted since the last flush sit in the record of the peer
// that reported them (counterSlot.unf), added up per (user, torrent) only
// when the flush takes them: an announce then touches one record, not a
// record and a map entry. Deltas with no record to sit in (an others
// entry's, a deleted record's, a failed flush's) wait in spill.
type counterStore struct {
	idx    counterIndex
	recs   []counterSlot
	others map[counterKey]counterRec
	// dirty lists the positions in recs of the records changed since the
	// last flush (unflushed.dirty). A record that moves (del) is listed
	// again at its new position; takeDirty skips positions whose record is
	// not dirty, so stale and repeated positions are harmless.
	dirty []int32
	// othersDirty holds the changed others entries.
	othersDirty map[counterKey]struct{}
	spill       map[sumKey]sums
}

// counterSlot is 128 bytes, so a record sits in two cache lines of the
// page-aligned array; an announce reads the first (user, pk) and writes
// both (c, unf).
type counterSlot struct {
	user uint64
	pk   peerKey
	c    counterRec
	unf  unflushed
}

// unflushed is what a record holds for the next flush.
type unflushed struct {
	up, down uint64 // deltas counted since the last flush
	snatches uint32
	dirty    bool // c changed since the last flush
}

func (u *unflushed) deltas() sums { return sums{u.up, u.down, uint64(u.snatches)} }

func newCounterStore() counterStore {
	return counterStore{idx: newCounterIndex(), others: map[counterKey]counterRec{},
		othersDirty: map[counterKey]struct{}{}, spill: map[sumKey]sums{}}
}

// listDirty marks recs[i] changed since the last flush.
func (s *counterStore) listDirty(i int32) {
	if r := &s.recs[i]; !r.unf.dirty {
		r.unf.dirty = true
		s.dirty = append(s.dirty, i)
	}
}

// addPending adds d to k's unflushed deltas: in k's record when it has one
// (i, as find returned it; -1 if unknown), else in spill. The record is
// listed for the flush, which takes its deltas with its counters.
func (s *counterStore) addPending(i int32, k counterKey, d sums) {
	if d == (sums{}) {
		return
	}
	if i < 0 {
		i = s.find(k, -1)
	}
	r := (*counterSlot)(nil)
	if i >= 0 {
		r = &s.recs[i]
	}
	// A record holds a few snatches at most (one per peer between
	// flushes); anything that would not fit waits in spill.
	if r == nil || d.snatches > math.MaxUint32-uint64(r.unf.snatches) {
		s.addSpill(sumKey{k.user, k.torrent}, d)
		return
	}
	r.unf.up += d.up
	r.unf.down += d.down
	r.unf.snatches += uint32(d.snatches)
	s.listDirty(i)
}

func (s *counterStore) addSpill(k sumKey, d sums) {
	if d == (sums{}) {
		return
	}
	v := s.spill[k]
	v.add(d)
	s.spill[k] = v
}

// lookup returns the position of pk's record, or -1.
func (s *counterStore) lookup(pk peerKey) int32 {
	i, _ := s.idx.find(&pk, s.recs)
	return i
}

func (s *counterStore) slot(k counterKey) *counterSlot {
	i := s.lookup(peerKey{k.torrent, k.peer})
	if i < 0 || s.recs[i].user != k.user {
		return nil
	}
	return &s.recs[i]
}

// get returns k's counters.
func (s *counterStore) get(k counterKey) (counterRec, bool) {
	if r := s.slot(k); r != nil {
		return r.c, true
	}
	if len(s.others) == 0 {
		return counterRec{}, false
	}
	c, ok := s.others[k]
	return c, ok
}

// find returns the index in recs of k's record, or -1 if k's counters are
// not in a record (see other). hint is where k's record was last seen (the
// peer store keeps it beside the peer): when it still holds k, no index
// lookup is needed; a stale or negative hint costs one lookup.
func (s *counterStore) find(k counterKey, hint int32) int32 {
	pk := peerKey{k.torrent, k.peer}
	if hint >= 0 && int(hint) < len(s.recs) && s.recs[hint].user == k.user && s.recs[hint].pk == pk {
		return hint
	}
	i := s.lookup(pk)
	if i < 0 || s.recs[i].user != k.user {
		return -1
	}
	return i
}

// other returns k's counters when they are not in a record of k (another
// user owns the record, or there is none): get after find returned -1.
func (s *counterStore) other(k counterKey) (counterRec, bool) {
	if len(s.others) == 0 {
		return counterRec{}, false
	}
	c, ok := s.others[k]
	return c, ok
}

// update stores c as k's counters in recs[i], k's record as returned by
// find, and lists k for the next flush: set without the index lookup.
func (s *counterStore) update(i int32, c counterRec) {
	s.recs[i].c = c
	s.listDirty(i)
}

// owner returns the user whose counters of (torrent, peer) were created last.
func (s *counterStore) owner(pk peerKey) (uint64, bool) {
	i := s.lookup(pk)
	if i < 0 {
		return 0, false
	}
	return s.recs[i].user, true
}

// set stores c as k's counters. own makes k.user the owner of the (torrent,
// peer); otherwise an existing entry is updated where it is. dirty lists k
// for the next flush. It returns the index of k's record, or -1 when the
// counters went to the others map.
func (s *counterStore) set(k counterKey, c counterRec, own, dirty bool) int32 {
	pk := peerKey{k.torrent, k.peer}
	i := s.lookup(pk)
	ok := i >= 0
	switch {
	case ok && s.recs[i].user == k.user:
	case ok && own:
		// Another user's counters leave the record for the others map.
		r := &s.recs[i]
		moved := counterKey{r.user, k.torrent, k.peer}
		s.others[moved] = r.c
		if r.unf.dirty {
			s.othersDirty[moved] = struct{}{}
		}
		s.addSpill(sumKey{r.user, k.torrent}, r.unf.deltas())
		dirty = s.fromOthers(k) || dirty
		*r = counterSlot{user: k.user, pk: pk}
	case !ok && own:
		dirty = s.fromOthers(k) || dirty
		i = int32(len(s.recs))
		s.recs = append(s.recs, counterSlot{user: k.user, pk: pk})
		s.idx.insert(&pk, i)
	default:
		s.others[k] = c
		if dirty {
			s.othersDirty[k] = struct{}{}
		}
		return -1
	}
	s.recs[i].c = c
	if dirty {
		s.listDirty(i)
	}
	return i
}

// fromOthers removes k from the others map and reports whether it was
// dirty there.
func (s *counterStore) fromOthers(k counterKey) bool {
	if len(s.others) == 0 {
		return false
	}
	delete(s.others, k)
	_, dirty := s.othersDirty[k]
	delete(s.othersDirty, k)
	return dirty
}

// markDirty lists k for the next flush if it has counters.
func (s *counterStore) markDirty(k counterKey) {
	if i := s.find(k, -1); i >= 0 {
		s.listDirty(i)
		return
	}
	if _, ok := s.others[k]; ok {
		s.othersDirty[k] = struct{}{}
	}
}

// del removes k's counters and reports whether there were any. Removing the
// owner's leaves the others in the others map, ownerless. The record's
// unflushed deltas go to spill.
func (s *counterStore) del(k counterKey) bool {
	pk := peerKey{k.torrent, k.peer}
	i, slot := s.idx.find(&pk, s.recs)
	if i < 0 || s.recs[i].user != k.user {
		if _, ok := s.others[k]; ok {
			delete(s.others, k)
			delete(s.othersDirty, k)
			return true
		}
		return false
	}
	s.addSpill(sumKey{k.user, k.torrent}, s.recs[i].unf.deltas())
	last := int32(len(s.recs) - 1)
	if i != last {
		_, lastSlot := s.idx.find(&s.recs[last].pk, s.recs)
		s.idx.move(lastSlot, i)
		s.recs[i] = s.recs[last]
		if s.recs[i].unf.dirty {
			s.dirty = append(s.dirty, i) // its listed position is stale
		}
	}
	s.recs[last] = counterSlot{}
	s.recs = s.recs[:last]
	s.idx.remove(slot)
	if cap(s.recs) > 64 && len(s.recs) < cap(s.recs)/4 {
		s.recs = append([]counterSlot(nil), s.recs...) // give back memory after a mass expiry
	}
	return true
}

// len returns the number of counters.
func (s *counterStore) len() int { return len(s.recs) + len(s.others) }

// each calls fn for every counter; fn returning false deletes it. fn must
// not call into s.
func (s *counterStore) each(fn func(k counterKey, c counterRec) (keep bool)) {
	for i := 0; i < len(s.recs); {
		r := &s.recs[i]
		k := counterKey{r.user, r.pk.torrent, r.pk.peer}
		if fn(k, r.c) {
			i++
			continue
		}
		s.del(k) // moves the last record to i
	}
	for k, c := range s.others {
		if !fn(k, c) {
			delete(s.others, k)
			delete(s.othersDirty, k)
		}
	}
}

// takeDirty calls put (if not nil) with every counter changed since the
// last call and clears the list, and calls pend with the unflushed deltas
// of every changed record and of spill (not added up: one (user, torrent)
// may come several times) and clears them.
func (s *counterStore) takeDirty(put func(k counterKey, c counterRec), pend func(k sumKey, d sums)) {
	for _, i := range s.dirty {
		if int(i) >= len(s.recs) {
			continue
		}
		r := &s.recs[i]
		if !r.unf.dirty {
			continue
		}
		r.unf.dirty = false
		if put != nil {
			put(counterKey{r.user, r.pk.torrent, r.pk.peer}, r.c)
		}
		if d := r.unf.deltas(); d != (sums{}) {
			pend(sumKey{r.user, r.pk.torrent}, d)
			r.unf = unflushed{}
		}
	}
	s.dirty = s.dirty[:0]
	if put != nil {
		for k := range s.othersDirty {
			put(k, s.others[k])
		}
	}
	clear(s.othersDirty)
	for k, d := range s.spill {
		pend(k, d)
	}
	clear(s.spill)
}

// dirtyLen returns at most how many counters takeDirty would give.
func (s *counterStore) dirtyLen() int { return len(s.dirty) + len(s.othersDirty) }
