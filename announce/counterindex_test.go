package announce

import (
	"math/rand/v2"
	"testing"

	"github.com/seedbank/seedbank/model"
)

// TestCounterIndexMatchesMap grows an index to thousands of keys and
// shrinks it again with random inserts and swap-deletes (as counterStore
// does them), checking after every step that each key is found at its
// record and that absent keys are not found.
func TestCounterIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := newCounterIndex()
	var recs []counterSlot
	pos := map[peerKey]int32{}
	key := func() peerKey {
		// Few torrents, many peers: keys that share most of their bytes.
		return peerKey{torrent: model.InfoHash{byte(rng.IntN(4))}, peer: peerID(rng.IntN(6000))}
	}
	check := func(step int) {
		t.Helper()
		if x.n != len(recs) {
			t.Fatalf("step %d: index holds %d, %d records", step, x.n, len(recs))
		}
		for pk, want := range pos {
			if got, _ := x.find(&pk, recs); got != want {
				t.Fatalf("step %d: find %v = %d, want %d", step, pk, got, want)
			}
		}
		for range 20 {
			pk := key()
			if _, ok := pos[pk]; !ok {
				if got, _ := x.find(&pk, recs); got != -1 {
					t.Fatalf("step %d: absent %v found at %d", step, pk, got)
				}
			}
		}
	}
	del := func(pk peerKey) {
		i, slot := x.find(&pk, recs)
		last := int32(len(recs) - 1)
		if i != last {
			_, ls := x.find(&recs[last].pk, recs)
			x.move(ls, i)
			recs[i] = recs[last]
			pos[recs[i].pk] = i
		}
		recs = recs[:last]
		x.remove(slot)
		delete(pos, pk)
	}
	maxSlots := 0
	for step := range 30000 {
		growing := step < 15000
		pk := key()
		_, present := pos[pk]
		switch {
		case !present && (growing || rng.IntN(4) == 0):
			recs = append(recs, counterSlot{pk: pk})
			pos[pk] = int32(len(recs) - 1)
			x.insert(&pk, int32(len(recs)-1))
		case present:
			del(pk)
		case len(recs) > 0:
			del(recs[rng.IntN(len(recs))].pk)
		}
		maxSlots = max(maxSlots, len(x.slots))
		if step%500 == 0 || step > 29900 {
			check(step)
		}
	}
	check(-1)
	if maxSlots < 4096 || len(x.slots) > minIndexSlots*2 {
		t.Fatalf("table grew to %d slots and shrank to %d with %d keys; want growth past 4096 and back to <= %d",
			maxSlots, len(x.slots), x.n, 2*minIndexSlots)
	}
	// Emptied, nothing is left behind.
	for x.n > 0 {
		del(recs[0].pk)
	}
	check(-2)
}

// TestCounterIndexRemoveWraps: removals from probe runs that wrap around
// the end of the table leave every other entry reachable from its home.
// Entries are placed by their hash bits directly (maphash is keyed, so
// collisions cannot be made through keys).
func TestCounterIndexRemoveWraps(t *testing.T) {
	homes := []uint32{6, 6, 7, 7, 0, 6, 1}
	for victim := range homes {
		x := counterIndex{slots: make([]uint64, 8)}
		for i, h := range homes {
			x.put(uint64(h)<<32 | uint64(i+1))
			x.n++
		}
		var slot int
		for i, v := range x.slots {
			if uint32(v) == uint32(victim+1) {
				slot = i
			}
		}
		x.remove(slot)
		for i, h := range homes {
			if i == victim {
				continue
			}
			found := false
			for j := int(h); x.slots[j] != 0; j = (j + 1) & 7 {
				if uint32(x.slots[j]) == uint32(i+1) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("after removing entry %d: entry %d (home %d) unreachable in %x", victim, i, h, x.slots)
			}
		}
		if x.n != len(homes)-1 {
			t.Fatalf("n = %d", x.n)
		}
	}
}

// BenchmarkCounterIndexFind: a find of a present key in a 100,000-key index.
func BenchmarkCounterIndexFind(b *testing.B) {
	x := newCounterIndex()
	recs := make([]counterSlot, 100_000)
	for i := range recs {
		recs[i].pk = peerKey{torrent: model.InfoHash{byte(i), byte(i >> 8)}, peer: peerID(i)}
		x.insert(&recs[i].pk, int32(i))
	}
	i := 0
	for b.Loop() {
		i = (i + 7919) % len(recs)
		if p, _ := x.find(&recs[i].pk, recs); p != int32(i) {
			b.Fatal(p)
		}
	}
}
