package announce

import "hash/maphash"

// counterIndex finds a counter record by (torrent, peer_id): open
// addressing with linear probing over 8-byte slots, each the record's
// position + 1 (0: empty) and 32 bits of the key's hash, so a probe reads
// a record only when those bits match. The keys stay in the records. At a
// million peers a Go map keyed by the 40-byte key took about 90 bytes per
// peer; this takes 11 to 21. The hash is keyed per process (maphash), so
// peer_ids chosen to collide cannot make the probes long.
type counterIndex struct {
	slots []uint64 // hash<<32 | position+1; len is a power of 2 (or 0)
	n     int
	seed  maphash.Seed
}

func newCounterIndex() counterIndex { return counterIndex{seed: maphash.MakeSeed()} }

// minIndexSlots is the size of a new index's table, and the least a
// shrinking one keeps.
const minIndexSlots = 64

func (x *counterIndex) hash(pk *peerKey) uint32 {
	return uint32(maphash.Comparable(x.seed, *pk))
}

// find returns the position of pk's record in recs and its slot, or -1.
func (x *counterIndex) find(pk *peerKey, recs []counterSlot) (pos int32, slot int) {
	if x.n == 0 {
		return -1, -1
	}
	h := x.hash(pk)
	mask := len(x.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return -1, -1
		}
		if uint32(s>>32) == h {
			if p := int32(uint32(s)) - 1; recs[p].pk == *pk {
				return p, i
			}
		}
	}
}

// insert adds pk (not present) at record position pos.
func (x *counterIndex) insert(pk *peerKey, pos int32) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.resize(max(2*len(x.slots), minIndexSlots))
	}
	x.put(uint64(x.hash(pk))<<32 | uint64(pos+1))
	x.n++
}

// put places a slot value in its home or the first free slot after it.
func (x *counterIndex) put(v uint64) {
	mask := len(x.slots) - 1
	i := int(v>>32) & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = v
}

// move points slot (as find returned it) at record position pos.
func (x *counterIndex) move(slot int, pos int32) {
	x.slots[slot] = x.slots[slot]&^(1<<32-1) | uint64(pos+1)
}

// remove empties slot (as find returned it), moving later entries of the
// same probe run back so every entry stays reachable from its home.
func (x *counterIndex) remove(slot int) {
	mask := len(x.slots) - 1
	i := slot
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		home := int(x.slots[j]>>32) & mask
		// The entry at j may fill the hole at i unless its home lies in
		// (i, j] (cyclically): it would then be found before reaching i.
		if (j-home)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
	if len(x.slots) > minIndexSlots && x.n*8 < len(x.slots) {
		x.resize(len(x.slots) / 2) // give back memory after a mass expiry
	}
}

func (x *counterIndex) resize(size int) {
	old := x.slots
	x.slots = make([]uint64, size)
	for _, v := range old {
		if v != 0 {
			x.put(v)
		}
	}
}
