package announce

import (
	"encoding/binary"
	"math/bits"
	"unsafe"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/prefetch"
)

// swarmTable is one peer shard's swarms by info hash: an open-addressing
// hash table with linear probing, the swarm headers in its slots. A Go map
// would do, but the address of a map entry cannot be known before the
// lookup, and a batch of UDP announces wants to start loading all of its
// swarms' slots at once (prefetch) rather than wait for each cache miss in
// turn (Tracker.warmBatch). Not safe for concurrent use: the shard's lock
// guards it.
type swarmTable struct {
	slots []swarmSlot // nil, or a power of two long
	n     int         // used slots
	shift uint8       // 64 - log2(len(slots))
	seed  uint64
}

// swarmSlot is one slot of a swarmTable: 112 bytes, two cache lines.
type swarmSlot struct {
	h    model.InfoHash
	used bool
	sw   swarm
}

const (
	minSwarmSlots = 8
	// A table grows to keep at most 3/4 of its slots used, and shrinks
	// when fewer than 1/8 are (a burst of swarms does not keep its peak).
	swarmLoadNum, swarmLoadDen = 3, 4
)

func newSwarmTable(seed uint64) swarmTable { return swarmTable{seed: seed} }

// home is the slot where a probe for h starts: 64 bits of h (uniform for
// SHA-1 and SHA-256; the first byte chose the shard) mixed with the
// store's secret seed and spread by a Fibonacci multiply, whose top bits
// depend on all 64. An uploader who grinds hashes to share some bits
// cannot tell which slots they land in.
func (t *swarmTable) home(h *model.InfoHash) int {
	return int(((binary.LittleEndian.Uint64(h[1:9]) ^ t.seed) * 0x9E3779B97F4A7C15) >> t.shift)
}

// find returns the position of h, or -1.
func (t *swarmTable) find(h *model.InfoHash) int {
	if t.n == 0 {
		return -1
	}
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used {
			return -1
		}
		if s.h == *h {
			return i
		}
	}
}

// get returns a copy of swarm h's header.
func (t *swarmTable) get(h *model.InfoHash) (swarm, bool) {
	if i := t.find(h); i >= 0 {
		return t.slots[i].sw, true
	}
	return swarm{}, false
}

// ref returns swarm h's header in place, valid until the table next
// changes, or nil.
func (t *swarmTable) ref(h *model.InfoHash) *swarm {
	if i := t.find(h); i >= 0 {
		return &t.slots[i].sw
	}
	return nil
}

// set stores sw as swarm h's header.
func (t *swarmTable) set(h *model.InfoHash, sw *swarm) {
	if i := t.find(h); i >= 0 {
		t.slots[i].sw = *sw
		return
	}
	if (t.n+1)*swarmLoadDen > len(t.slots)*swarmLoadNum {
		t.resize(max(minSwarmSlots, 2*len(t.slots)))
	}
	t.insert(h, sw)
	t.n++
}

// insert puts h, known to be absent, in its first free slot.
func (t *swarmTable) insert(h *model.InfoHash, sw *swarm) {
	mask := len(t.slots) - 1
	i := t.home(h)
	for t.slots[i].used {
		i = (i + 1) & mask
	}
	t.slots[i] = swarmSlot{h: *h, used: true, sw: *sw}
}

// del removes swarm h, if there is one. Later slots of its probe run move
// back so that no lookup meets a hole before its key (no tombstones).
func (t *swarmTable) del(h *model.InfoHash) {
	i := t.find(h)
	if i < 0 {
		return
	}
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].used; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j]: a probe from there would not pass i.
		k := t.home(&t.slots[j].h)
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = swarmSlot{}
	t.n--
	if t.n == 0 {
		t.slots = nil
	} else if len(t.slots) > minSwarmSlots && t.n*8 < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
}

func (t *swarmTable) resize(size int) {
	old := t.slots
	t.slots = make([]swarmSlot, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	for i := range old {
		if s := &old[i]; s.used {
			t.insert(&s.h, &s.sw)
		}
	}
}

func (t *swarmTable) len() int { return t.n }

// each calls fn for every swarm, in no particular order, until fn returns
// false. fn may change the header in place but must not add or remove
// swarms.
func (t *swarmTable) each(fn func(h *model.InfoHash, sw *swarm) bool) {
	for i := range t.slots {
		if s := &t.slots[i]; s.used && !fn(&s.h, &s.sw) {
			return
		}
	}
}

// prefetch starts loading the slot where a lookup of h begins.
func (t *swarmTable) prefetch(h *model.InfoHash) {
	if t.n == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(&t.slots[t.home(h)]))
	for a, end := p&^63, p+unsafe.Sizeof(swarmSlot{}); a < end; a += 64 {
		prefetch.Line(a)
	}
}
