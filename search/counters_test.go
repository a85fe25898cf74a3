package search

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// The periodic counter refresh reads CountersBatch a chunk at a time, at
// least CountersPause apart, and the listing sorts by the new counters.
func TestCountersRefreshInPausedChunks(t *testing.T) {
	t.Parallel()
	const n, chunk, pause = 400, 40, 5 * time.Millisecond
	src := newMemSource()
	for i := range n {
		src.put(genTorrent(i))
	}
	var gen atomic.Int64
	gen.Store(1)
	var mu sync.Mutex
	var calls []time.Time
	var sizes []int
	record := false
	batch := func(hs []model.InfoHash, seeders, snatches []int) {
		g := int(gen.Load())
		for i, h := range hs {
			seeders[i], snatches[i] = g+int(h[0]), 2*g
		}
		mu.Lock()
		if record {
			calls, sizes = append(calls, time.Now()), append(sizes, len(hs))
		}
		mu.Unlock()
	}
	ix, err := Open(t.TempDir(), src, Options{NotFound: errNotFound, CountersBatch: batch,
		CountersEvery: 200 * time.Millisecond, CountersChunk: chunk, CountersPause: pause, BatchSize: 2000, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	sync1(t, ix)
	mu.Lock()
	record = true
	mu.Unlock()
	gen.Store(7)

	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := ix.Search(ctx, Query{Sort: SortSeeders, Limit: n})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != n {
			t.Fatalf("%d hits, want %d", len(res.Hits), n)
		}
		done := true
		for i, h := range res.Hits {
			if h.Seeders != 7+int(h.ID[0]) || h.Snatches != 14 {
				done = false
			}
			if i > 0 && h.Seeders > res.Hits[i-1].Seeders {
				t.Fatalf("hit %d has %d seeders after %d: not sorted", i, h.Seeders, res.Hits[i-1].Seeders)
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counters not refreshed in 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(calls) < n/chunk {
		t.Fatalf("%d batch calls, want at least %d", len(calls), n/chunk)
	}
	for i, s := range sizes {
		if s < 1 || s > chunk {
			t.Fatalf("call %d read %d torrents, want 1..%d", i, s, chunk)
		}
		if i > 0 && calls[i].Sub(calls[i-1]) < pause {
			t.Fatalf("calls %d and %d only %v apart, want at least %v", i-1, i, calls[i].Sub(calls[i-1]), pause)
		}
	}
}
