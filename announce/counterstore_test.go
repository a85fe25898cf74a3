package announce

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// TestCounterStoreMatchesMaps drives a counterStore and the three maps it
// replaced (counters, owners, dirty) with the same random operations, few
// keys and several users per (torrent, peer_id), and compares them.
func TestCounterStoreMatchesMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := newCounterStore()
	counters := map[counterKey]counterRec{}
	owners := map[peerKey]uint64{}
	dirty := map[counterKey]bool{}
	key := func() counterKey {
		return counterKey{user: uint64(rng.IntN(3) + 1), torrent: model.InfoHash{byte(rng.IntN(3))}, peer: peerID(rng.IntN(4))}
	}
	for step := range 20000 {
		k := key()
		pk := peerKey{k.torrent, k.peer}
		switch op := rng.IntN(10); {
		case op < 4:
			_, exists := counters[k]
			own := rng.IntN(2) == 0 || !exists
			c := counterRec{up: uint64(step), updated: int64(rng.IntN(100))}
			mark := rng.IntN(4) != 0
			s.set(k, c, own, mark)
			counters[k] = c
			if own {
				owners[pk] = k.user
			}
			if mark {
				dirty[k] = true
			}
		case op < 6:
			_, exists := counters[k]
			if got := s.del(k); got != exists {
				t.Fatalf("step %d: del %v = %v, want %v", step, k, got, exists)
			}
			delete(counters, k)
			delete(dirty, k)
			if owners[pk] == k.user {
				delete(owners, pk)
			}
		case op < 7:
			s.markDirty(k)
			if _, ok := counters[k]; ok {
				dirty[k] = true
			}
		case op < 8:
			got := map[counterKey]counterRec{}
			s.takeDirty(func(k counterKey, c counterRec) {
				if _, dup := got[k]; dup {
					t.Fatalf("step %d: %v taken twice", step, k)
				}
				got[k] = c
			})
			want := map[counterKey]counterRec{}
			for k := range dirty {
				want[k] = counters[k]
			}
			if !maps.Equal(got, want) {
				t.Fatalf("step %d: dirty %v, want %v", step, got, want)
			}
			clear(dirty)
		case op < 9:
			cut := int64(rng.IntN(100))
			s.each(func(k counterKey, c counterRec) bool {
				if c != counters[k] {
					t.Fatalf("step %d: each gave %v for %v", step, c, k)
				}
				return c.updated >= cut
			})
			for k, c := range counters {
				if c.updated < cut {
					delete(counters, k)
					delete(dirty, k)
					if pk := (peerKey{k.torrent, k.peer}); owners[pk] == k.user {
						delete(owners, pk)
					}
				}
			}
		default:
			u, ok := s.owner(pk)
			if wu, wok := owners[pk]; ok != wok || u != wu {
				t.Fatalf("step %d: owner of %v = %d %v, want %d %v", step, pk, u, ok, wu, wok)
			}
		}
		if s.len() != len(counters) {
			t.Fatalf("step %d: %d counters, want %d", step, s.len(), len(counters))
		}
		for k, want := range counters {
			if got, ok := s.get(k); !ok || got != want {
				t.Fatalf("step %d: get %v = %v %v, want %v", step, k, got, ok, want)
			}
		}
		if _, ok := s.get(counterKey{user: 99}); ok {
			t.Fatal("get of an absent key")
		}
	}
}

// BenchmarkAccount measures the accountant's part of a re-announce over
// 100,000 peers. Budget: 0 allocations.
func BenchmarkAccount(b *testing.B) {
	cfg := Config{}.WithDefaults()
	a := newAccountant(&cfg, nil)
	const n = 100_000
	tors := make([]model.TorrentRef, n)
	ids := make([][20]byte, n)
	for i := range tors {
		ids[i] = peerID(i)
		tors[i] = model.TorrentRef{ID: model.InfoHash{byte(i), byte(i >> 8), byte(i >> 16)}, TotalSize: 1 << 40}
	}
	now := time.Now()
	for i := range n {
		a.account(&report{user: uint64(i%1000 + 1), torrent: tors[i], peer: ids[i]}, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		j := i % n
		a.account(&report{user: uint64(j%1000 + 1), torrent: tors[j], peer: ids[j], up: uint64(i), down: uint64(i)}, now.Add(time.Second))
		if i%n == 0 {
			b.StopTimer()
			a.take(false) // a flush: outside the announce path
			b.StartTimer()
		}
	}
}
