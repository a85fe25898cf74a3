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

// With CountersChanged, a refresh reads only the torrents it names; every
// torrent is read again once per CountersFullEvery.
func TestCountersRefreshReadsChangedOnly(t *testing.T) {
	t.Parallel()
	const n = 300
	src := newMemSource()
	var all []model.InfoHash
	for i := range n {
		tor := genTorrent(i)
		src.put(tor)
		all = append(all, tor.ID)
	}
	var mu sync.Mutex
	seeders := map[model.InfoHash]int{}
	var changed []model.InfoHash
	read := map[model.InfoHash]int{} // reads per torrent
	batch := func(hs []model.InfoHash, s, sn []int) {
		mu.Lock()
		defer mu.Unlock()
		for i, h := range hs {
			s[i], sn[i] = seeders[h], 0
			read[h]++
		}
	}
	setSeeders := func(h model.InfoHash, v int) {
		mu.Lock()
		defer mu.Unlock()
		seeders[h] = v
		changed = append(changed, h)
	}
	drain := func(dst []model.InfoHash) []model.InfoHash {
		mu.Lock()
		defer mu.Unlock()
		dst = append(dst, changed...)
		changed = nil
		return dst
	}
	ix, err := Open(t.TempDir(), src, Options{NotFound: errNotFound, CountersBatch: batch, CountersChanged: drain,
		CountersEvery: 50 * time.Millisecond, CountersFullEvery: time.Hour, BatchSize: 2000, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	sync1(t, ix)
	// Indexing read each torrent once; the first refresh is a full one.
	waitFor(t, "the first full refresh", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range all {
			if read[h] < 2 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	clear(read)
	mu.Unlock()
	time.Sleep(200 * time.Millisecond) // four more refreshes, nothing changed
	mu.Lock()
	if len(read) != 0 {
		t.Fatalf("%d torrents read with nothing changed", len(read))
	}
	mu.Unlock()

	setSeeders(all[7], 42)
	setSeeders(all[9], 5)
	ctx := context.Background()
	waitFor(t, "the changed torrent first by seeders", func() bool {
		res, err := ix.Search(ctx, Query{Sort: SortSeeders, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Hits) == 2 && res.Hits[0].ID == all[7] && res.Hits[0].Seeders == 42 && res.Hits[1].ID == all[9]
	})
	mu.Lock()
	defer mu.Unlock()
	for i, h := range all {
		want := 0
		if i == 7 || i == 9 {
			want = 1
		}
		if read[h] != want {
			t.Fatalf("torrent %d read %d times, want %d", i, read[h], want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
