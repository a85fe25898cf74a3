package announce

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// TestCounterStoreMatchesMaps drives a counterStore and the four maps it
// replaced (counters, owners, dirty, pending deltas) with the same random
// operations, few keys and several users per (torrent, peer_id), and
// compares them. Deltas must survive every move of their record (del,
// another user taking the record over) and come out once.
func TestCounterStoreMatchesMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := newCounterStore()
	counters := map[counterKey]counterRec{}
	owners := map[peerKey]uint64{}
	dirty := map[counterKey]bool{}
	pending := map[sumKey]sums{}
	// hints are the record indexes set and find returned, as the peer store
	// keeps them: records move (del swaps the last one in), so many go stale.
	hints := map[counterKey]int32{}
	key := func() counterKey {
		return counterKey{user: uint64(rng.IntN(3) + 1), torrent: model.InfoHash{byte(rng.IntN(3))}, peer: peerID(rng.IntN(4))}
	}
	for step := range 20000 {
		k := key()
		pk := peerKey{k.torrent, k.peer}
		switch op := rng.IntN(11); {
		case op < 4:
			_, exists := counters[k]
			own := rng.IntN(2) == 0 || !exists
			c := counterRec{up: uint64(step), updated: int64(rng.IntN(100))}
			mark := rng.IntN(4) != 0
			if i := s.set(k, c, own, mark); i >= 0 {
				if r := s.recs[i]; r.user != k.user || r.pk != pk || r.c != c {
					t.Fatalf("step %d: set %v returned record %d holding %+v", step, k, i, r)
				}
				hints[k] = i
			} else if own {
				t.Fatalf("step %d: set %v as owner returned no record", step, k)
			}
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
			gotPend := map[sumKey]sums{}
			put := func(k counterKey, c counterRec) {
				if _, dup := got[k]; dup {
					t.Fatalf("step %d: %v taken twice", step, k)
				}
				got[k] = c
			}
			if rng.IntN(4) == 0 {
				put = nil // as a compaction takes them
			}
			s.takeDirty(put, func(k sumKey, d sums) {
				v := gotPend[k]
				v.add(d)
				gotPend[k] = v
			})
			want := map[counterKey]counterRec{}
			for k := range dirty {
				want[k] = counters[k]
			}
			if put != nil && !maps.Equal(got, want) {
				t.Fatalf("step %d: dirty %v, want %v", step, got, want)
			}
			if !maps.Equal(gotPend, pending) {
				t.Fatalf("step %d: pending deltas %v, want %v", step, gotPend, pending)
			}
			clear(dirty)
			clear(pending)
			if n := s.dirtyLen(); n != 0 {
				t.Fatalf("step %d: %d dirty after takeDirty", step, n)
			}
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
		case op < 10:
			d := sums{up: uint64(rng.IntN(1000)), down: uint64(rng.IntN(1000)), snatches: uint64(rng.IntN(2))}
			i := s.find(k, -1)
			s.addPending(i, k, d)
			if d == (sums{}) {
				break
			}
			sk := sumKey{k.user, k.torrent}
			v := pending[sk]
			v.add(d)
			pending[sk] = v
			if i >= 0 {
				dirty[k] = true
			}
		default:
			u, ok := s.owner(pk)
			if wu, wok := owners[pk]; ok != wok || u != wu {
				t.Fatalf("step %d: owner of %v = %d %v, want %d %v", step, pk, u, ok, wu, wok)
			}
			hint, ok := hints[k]
			if !ok || rng.IntN(4) == 0 {
				hint = int32(rng.IntN(len(s.recs)+3) - 2)
			}
			i := s.find(k, hint)
			_, has := counters[k]
			if want := has && owners[pk] == k.user; (i >= 0) != want {
				t.Fatalf("step %d: find %v (hint %d) = %d, want a record: %v", step, k, hint, i, want)
			}
			if i < 0 {
				if c, ok := s.other(k); ok != has || c != counters[k] {
					t.Fatalf("step %d: other %v = %v %v, want %v %v", step, k, c, ok, counters[k], has)
				}
				break
			}
			if r := s.recs[i]; r.user != k.user || r.pk != pk || r.c != counters[k] {
				t.Fatalf("step %d: find %v (hint %d) gave record %d holding %+v", step, k, hint, i, r)
			}
			hints[k] = i
			c := counterRec{up: uint64(step) + 1<<40}
			s.update(i, c)
			counters[k] = c
			dirty[k] = true
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
			a.take(0, numStatsShards, nil, nil, nil) // a flush: outside the announce path
			b.StartTimer()
		}
	}
}

// pending returns the unflushed deltas of (user, torrent): the sum over its
// records and spill.
func (s *counterStore) pending(k sumKey) sums {
	v := s.spill[k]
	for i := range s.recs {
		if r := &s.recs[i]; r.user == k.user && r.pk.torrent == k.torrent {
			v.add(r.unf.deltas())
		}
	}
	return v
}
