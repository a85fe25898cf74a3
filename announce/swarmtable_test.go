package announce

import (
	"math/rand/v2"
	"testing"

	"github.com/seedbank/seedbank/model"
)

// TestSwarmTableMatchesMap runs random inserts, updates and deletes on a
// swarmTable and a Go map side by side; after each step both hold the same
// swarms, and every present key is found and every absent one is not. Keys
// come from a small pool, so probe runs collide, wrap around the end of the
// table and are cut by deletions; the table grows and shrinks on the way.
func TestSwarmTableMatchesMap(t *testing.T) {
	for _, seed := range []uint64{0, 1, 0xdeadbeef} {
		rng := rand.New(rand.NewPCG(seed, 7))
		tab := newSwarmTable(rng.Uint64())
		ref := map[model.InfoHash]int32{}
		pool := make([]model.InfoHash, 300)
		for i := range pool {
			for j := range pool[i] {
				pool[i][j] = byte(rng.UintN(256))
			}
		}
		for step := range 20000 {
			h := &pool[rng.IntN(len(pool))]
			// Mostly inserts early on, mostly deletes late, so the table
			// goes up to the whole pool and back down to a few.
			if rng.IntN(20000) < step {
				tab.del(h)
				delete(ref, *h)
			} else {
				v := int32(step)
				tab.set(h, &swarm{seeders: v})
				ref[*h] = v
			}
			if tab.len() != len(ref) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, tab.len(), len(ref))
			}
			if step%97 != 0 {
				continue
			}
			for i := range pool {
				sw, ok := tab.get(&pool[i])
				want, wantOK := ref[pool[i]]
				if ok != wantOK || ok && sw.seeders != want {
					t.Fatalf("seed %d step %d: get %x = %d %v, want %d %v", seed, step, pool[i][:4], sw.seeders, ok, want, wantOK)
				}
			}
			seen := 0
			tab.each(func(h *model.InfoHash, sw *swarm) bool {
				if ref[*h] != sw.seeders {
					t.Fatalf("seed %d step %d: each gave %x = %d, want %d", seed, step, h[:4], sw.seeders, ref[*h])
				}
				seen++
				return true
			})
			if seen != len(ref) {
				t.Fatalf("seed %d step %d: each visited %d, want %d", seed, step, seen, len(ref))
			}
			if n := len(tab.slots); n > minSwarmSlots && tab.len()*8 < n {
				t.Fatalf("seed %d step %d: %d slots for %d swarms, want it shrunk", seed, step, n, tab.len())
			}
		}
	}
}

// TestSwarmTableRefAndEach: ref and each hand out the stored header, so a
// change through them is seen by the next get.
func TestSwarmTableRefAndEach(t *testing.T) {
	tab := newSwarmTable(42)
	a, b := model.InfoHash{1, 2}, model.InfoHash{3, 4}
	tab.set(&a, &swarm{seeders: 1})
	tab.set(&b, &swarm{seeders: 2})
	tab.ref(&a).leechers = 5
	tab.each(func(h *model.InfoHash, sw *swarm) bool {
		sw.snatches = 7
		return true
	})
	for _, h := range []model.InfoHash{a, b} {
		sw, _ := tab.get(&h)
		if sw.snatches != 7 {
			t.Fatalf("%x: snatches %d after each, want 7", h[:2], sw.snatches)
		}
	}
	if sw, _ := tab.get(&a); sw.leechers != 5 {
		t.Fatalf("leechers %d after ref, want 5", sw.leechers)
	}
	if tab.ref(&model.InfoHash{9}) != nil {
		t.Fatal("ref of an absent swarm is not nil")
	}
	tab.del(&a)
	tab.del(&b)
	if tab.len() != 0 || tab.slots != nil {
		t.Fatalf("empty table keeps %d swarms, %d slots", tab.len(), len(tab.slots))
	}
	tab.prefetch(&a) // on an empty table: nothing to load, no panic
}
