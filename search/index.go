// Package search is seedbank's catalog search index: a bluge index on the
// node's local disk, built from the replicated torrents and kept current by
// following the changes the store applies.
//
// The index never holds up the store: Follow only records which torrents
// changed (a map insert under a short lock) and wakes one background
// goroutine, which reads the current torrents from the Source and writes
// them to bluge in batches. A "restore" change (the store replaced its state
// from a snapshot) or Rebuild reconciles the whole index with the Source:
// documents whose content fingerprint changed are rewritten, documents of
// torrents that are gone are deleted. Open starts such a reconcile too, since
// changes applied while the node was down were never followed.
//
// Filters, facet counts, sorting and paging run over an in-memory listing
// table (a few hundred bytes per dataset); bluge matches text and keeps the
// table's source on disk. Searches share one bluge snapshot (a view) per
// index generation, with a cache from document numbers to table rows that
// the worker fills after each write, so a text query reads no stored field
// or doc value per match (view.go). Sorting by seeders and snatches uses counters the
// index polls (Options.Counters) every Options.CountersEvery, in memory only.
//
// The node opens the index before the store, so no applied change is missed
// between the store opening and the index following it:
//
//	idx, _ := search.Open(filepath.Join(dataDir, "search"), nil, search.Options{
//		NotFound: raftstore.ErrNotFound, Counters: counters})
//	raftCfg.OnApply = func(c raftstore.Change) { idx.Follow(c.Index, c.Type, c.Torrents) }
//	store, _ := raftstore.Open(ctx, raftCfg)
//	idx.SetSource(store) // starts indexing: a reconcile, then the queued changes
package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/index"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// Source is the replicated catalog the index is built from. *raftstore.Store
// implements it.
type Source interface {
	Torrent(h model.InfoHash) (model.Torrent, error)
	ForEachTorrent(fn func(model.Torrent) error) error
}

// Options tune the index. Zero values get defaults.
type Options struct {
	// Counters returns a torrent's live seeders and cumulative snatches, for
	// sorting. Nil means both are always 0.
	Counters func(h model.InfoHash) (seeders, snatches int)
	// CountersBatch, if set, is used instead of Counters by the periodic
	// refresh: it fills seeders[i] and snatches[i] for hs[i], for a chunk
	// of CountersChunk torrents at a time, so a source can read them all in
	// one transaction.
	CountersBatch func(hs []model.InfoHash, seeders, snatches []int)
	// CountersChunk is how many torrents the periodic refresh reads at a
	// time, and CountersPause the pause between chunks: the refresh is
	// spread out so that, on a small machine, refreshing a large catalog
	// does not take the core from the tracker's announces in one burst.
	// Defaults 256 and 20ms (100,000 torrents: about 8 s per refresh).
	CountersChunk int
	CountersPause time.Duration
	// CountersEvery is how often Counters is polled. Default 1 minute.
	CountersEvery time.Duration
	// CountersChanged, if set, appends to dst the torrents whose counters
	// changed since its last call. The refresh every CountersEvery then
	// reads only those, and every torrent only once per CountersFullEvery
	// (default 15 minutes): a refresh of all of 100,000 torrents took about
	// 0.4 s of a busy tracker's core (cache misses), every minute.
	CountersChanged   func(dst []model.InfoHash) []model.InfoHash
	CountersFullEvery time.Duration
	// NotFound is the Source's error for a missing torrent (raftstore.
	// ErrNotFound). Nil matches any error whose text is "not found".
	NotFound error
	// BatchSize bounds the documents written per bluge batch. Default 500.
	BatchSize int
	// Logger gets indexing errors. Default slog.Default().
	Logger *slog.Logger
	// NoQueryCache turns off the cache of recent text queries' matches
	// (kept per bluge snapshot, so any write empties it); for measuring
	// the uncached path.
	NoQueryCache bool
	// NoInitialReconcile skips the reconcile Open starts (tests that fill
	// the index themselves).
	NoInitialReconcile bool
}

// Index is a search index over the catalog. Its methods are safe for
// concurrent use.
type Index struct {
	w    *bluge.Writer
	src  Source
	opt  Options
	log  *slog.Logger
	wake chan struct{}
	quit chan struct{}
	done chan struct{}

	mu          sync.Mutex
	pending     map[model.InfoHash]struct{}
	rebuild     bool
	followed    uint64 // Follow calls and Rebuild requests so far
	latestIndex uint64 // highest raft index given to Follow
	processed   uint64 // followed count the worker has finished
	progress    chan struct{}

	started atomic.Bool   // the worker runs (a source is set)
	indexed atomic.Uint64 // raft index whose changes are searchable
	docs    atomic.Int64

	// known is the indexed documents' fingerprint and listing fields: the
	// worker writes it (under tabMu) when a batch is in bluge; searches
	// filter, count facets and sort over it in memory, so only text
	// matching needs bluge.
	tabMu sync.RWMutex
	known map[model.InfoHash]*known
	tab   *table
	// gen counts the writes to bluge; it moves (under tabMu, after the
	// table) when a batch is in, so a search that sees it also gets a
	// bluge snapshot holding the batch.
	gen atomic.Uint64

	viewMu sync.Mutex
	view   *view // the snapshot searches share (view.go)
}

type known struct {
	rev string
	hit Hit
	row int // position in tab.rows while it is the current entry of hit.ID (under tabMu)
}

// Open opens (or creates) the index in dir over src and starts its worker.
// An empty dir keeps the index in memory. With a nil src the index answers
// searches from what is on disk and queues followed changes until
// SetSource.
func Open(dir string, src Source, opt Options) (*Index, error) {
	if opt.CountersChunk <= 0 {
		opt.CountersChunk = 256
	}
	if opt.CountersPause <= 0 {
		opt.CountersPause = 20 * time.Millisecond
	}
	if opt.CountersEvery <= 0 {
		opt.CountersEvery = time.Minute
	}
	if opt.CountersFullEvery <= 0 {
		opt.CountersFullEvery = 15 * time.Minute
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	cfg := bluge.InMemoryOnlyConfig()
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		cfg = bluge.DefaultConfig(dir)
	}
	w, err := bluge.OpenWriter(cfg)
	if err != nil {
		return nil, fmt.Errorf("search: open index in %s: %w", dir, err)
	}
	ix := &Index{
		w: w, src: src, opt: opt, log: opt.Logger.With("component", "search"),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		pending: map[model.InfoHash]struct{}{}, progress: make(chan struct{}),
		known: map[model.InfoHash]*known{}, tab: newTable(),
	}
	if err := ix.loadKnown(); err != nil {
		_ = w.Close()
		return nil, err
	}
	if !opt.NoInitialReconcile {
		ix.Rebuild()
	}
	if src != nil {
		ix.started.Store(true)
		go ix.run()
	}
	return ix, nil
}

// SetSource binds the Source of an index opened without one and starts
// indexing. It does nothing if the index already has a source.
func (ix *Index) SetSource(src Source) {
	if src == nil || !ix.started.CompareAndSwap(false, true) {
		return
	}
	ix.src = src
	go ix.run()
}

// loadKnown reads every document's fingerprint and counters.
func (ix *Index) loadKnown() error {
	r, err := ix.w.Reader()
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	defer r.Close()
	dmi, err := r.Search(context.Background(), bluge.NewAllMatches(bluge.NewMatchAllQuery()))
	if err != nil {
		return fmt.Errorf("search: read index: %w", err)
	}
	for m, err := dmi.Next(); m != nil || err != nil; m, err = dmi.Next() {
		if err != nil {
			return fmt.Errorf("search: read index: %w", err)
		}
		var id model.InfoHash
		k := &known{}
		_ = m.VisitStoredFields(func(field string, value []byte) bool {
			switch field {
			case "_id":
				_ = id.UnmarshalText(value)
			case fRev:
				k.rev = string(value)
			case fSummary:
				_ = jsonUnmarshal(value, &k.hit)
			}
			return true
		})
		if !id.IsZero() {
			k.hit.ID = id
			ix.known[id] = k
			ix.tab.set(k)
		}
	}
	ix.docs.Store(int64(len(ix.known)))
	return nil
}

// Follow tells the index that the store applied entry index of type typ,
// changing torrents. It never blocks on I/O: the work happens in the
// background. typ "restore" (a snapshot replaced the state) reconciles the
// whole index.
func (ix *Index) Follow(index uint64, typ string, torrents []model.InfoHash) {
	ix.mu.Lock()
	for _, h := range torrents {
		ix.pending[h] = struct{}{}
	}
	if typ == "restore" {
		ix.rebuild = true
	}
	if index > ix.latestIndex {
		ix.latestIndex = index
	}
	ix.followed++
	ix.mu.Unlock()
	ix.poke()
}

// Rebuild asks for a reconcile of the whole index with the Source, in the
// background. Searches keep answering from the current index meanwhile.
func (ix *Index) Rebuild() {
	ix.mu.Lock()
	ix.rebuild = true
	ix.followed++
	ix.mu.Unlock()
	ix.poke()
}

func (ix *Index) poke() {
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// Sync waits until every change followed (and rebuild requested) before the
// call is searchable, or ctx ends.
func (ix *Index) Sync(ctx context.Context) error {
	ix.mu.Lock()
	want := ix.followed
	ix.mu.Unlock()
	for {
		ix.mu.Lock()
		ok, ch := ix.processed >= want, ix.progress
		ix.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("search: index not caught up: %w", ctx.Err())
		case <-ix.done:
			return errors.New("search: index closed")
		}
	}
}

// Indexed returns the highest raft index whose changes are searchable.
func (ix *Index) Indexed() uint64 { return ix.indexed.Load() }

// Count returns the number of indexed datasets.
func (ix *Index) Count() int { return int(ix.docs.Load()) }

// Close stops the worker and closes the index. Pending changes are dropped;
// the next Open reconciles.
func (ix *Index) Close() error {
	select {
	case <-ix.quit:
		return nil
	default:
	}
	close(ix.quit)
	if ix.started.CompareAndSwap(false, true) {
		close(ix.done) // never started
	} else {
		<-ix.done
	}
	ix.dropView()
	return ix.w.Close()
}

func (ix *Index) run() {
	defer close(ix.done)
	tick := time.NewTicker(ix.opt.CountersEvery)
	defer tick.Stop()
	viewTick := time.NewTicker(viewMaxAge)
	defer viewTick.Stop()
	// The counter refresh goes chunk by chunk: left is what remains of the
	// current one, step fires for its next chunk (nil when idle).
	var left []model.InfoHash
	var step <-chan time.Time
	var lastFull time.Time
	for {
		select {
		case <-ix.quit:
			return
		case <-ix.wake:
			ix.process()
			ix.refreshView()
		case <-viewTick.C:
			ix.refreshView()
		case <-tick.C:
			if (ix.opt.Counters != nil || ix.opt.CountersBatch != nil) && len(left) == 0 {
				left = ix.counterRefreshList(&lastFull)
				if len(left) > 0 {
					step = time.After(0)
				}
			}
		case <-step:
			left = ix.refreshCounters(left)
			step = nil
			if len(left) > 0 {
				step = time.After(ix.opt.CountersPause)
			}
		}
	}
}

// process writes everything pending, then reports progress.
func (ix *Index) process() {
	ix.mu.Lock()
	pending, rebuild, upto, latest := ix.pending, ix.rebuild, ix.followed, ix.latestIndex
	ix.pending, ix.rebuild = map[model.InfoHash]struct{}{}, false
	ix.mu.Unlock()

	if rebuild {
		if err := ix.reconcile(); err != nil {
			ix.log.Error("search index reconcile failed; retrying in 10s", "err", err)
			ix.retryLater(nil, true)
		}
	}
	if len(pending) > 0 {
		hashes := make([]model.InfoHash, 0, len(pending))
		for h := range pending {
			hashes = append(hashes, h)
		}
		if failed := ix.update(hashes); len(failed) > 0 {
			ix.retryLater(failed, false)
		}
	}
	if latest > ix.indexed.Load() {
		ix.indexed.Store(latest)
	}
	ix.mu.Lock()
	if upto > ix.processed {
		ix.processed = upto
	}
	close(ix.progress)
	ix.progress = make(chan struct{})
	ix.mu.Unlock()
}

func (ix *Index) retryLater(hashes []model.InfoHash, rebuild bool) {
	time.AfterFunc(10*time.Second, func() {
		ix.mu.Lock()
		for _, h := range hashes {
			ix.pending[h] = struct{}{}
		}
		ix.rebuild = ix.rebuild || rebuild
		ix.mu.Unlock()
		ix.poke()
	})
}

func (ix *Index) notFound(err error) bool {
	if ix.opt.NotFound != nil {
		return errors.Is(err, ix.opt.NotFound)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "not found" {
			return true
		}
	}
	return false
}

func (ix *Index) counters(h model.InfoHash) (int, int) {
	if ix.opt.Counters == nil && ix.opt.CountersBatch != nil {
		var s, n [1]int
		ix.opt.CountersBatch([]model.InfoHash{h}, s[:], n[:])
		return s[0], n[0]
	}
	if ix.opt.Counters == nil {
		return 0, 0
	}
	return ix.opt.Counters(h)
}

// update re-reads hashes from the Source and writes or deletes their
// documents; it returns the hashes it could not read.
func (ix *Index) update(hashes []model.InfoHash) (failed []model.InfoHash) {
	b := newBatcher(ix)
	for _, h := range hashes {
		t, err := ix.src.Torrent(h)
		switch {
		case err == nil:
			if t.ID != h {
				// h was an alias (the v2 hash of a hybrid torrent).
				if _, ok := ix.known[h]; ok {
					b.delete(h)
				}
			}
			s, n := ix.counters(t.ID)
			b.put(&t, s, n)
		case ix.notFound(err):
			if _, ok := ix.known[h]; ok {
				b.delete(h)
			}
		default:
			ix.log.Warn("search: read torrent", "hash", h, "err", err)
			failed = append(failed, h)
		}
	}
	if err := b.flush(); err != nil {
		ix.log.Error("search: write index", "err", err)
		return hashes
	}
	return failed
}

// reconcile makes the index match the Source.
func (ix *Index) reconcile() error {
	start := time.Now()
	b := newBatcher(ix)
	seen := make(map[model.InfoHash]struct{}, len(ix.known))
	written := 0
	err := ix.src.ForEachTorrent(func(t model.Torrent) error {
		select {
		case <-ix.quit:
			return errors.New("closing")
		default:
		}
		seen[t.ID] = struct{}{}
		s, n := ix.counters(t.ID)
		if k, ok := ix.known[t.ID]; ok && k.rev == rev(&t) {
			if k.hit.Seeders != s || k.hit.Snatches != n {
				ix.tabMu.Lock()
				k.hit.Seeders, k.hit.Snatches = s, n
				ix.tab.setCounters(k, s, n)
				ix.tabMu.Unlock()
			}
			return nil
		}
		written++
		b.put(&t, s, n)
		return b.maybeFlush()
	})
	if err != nil {
		_ = b.flush()
		return err
	}
	deleted := 0
	for h := range ix.known {
		if _, ok := seen[h]; !ok {
			b.delete(h)
			deleted++
		}
	}
	if err := b.flush(); err != nil {
		return err
	}
	ix.log.Info("search index reconciled", "datasets", len(seen), "written", written, "deleted", deleted, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// counterRefreshList lists the torrents a counter refresh goes through.
func (ix *Index) counterRefreshList(lastFull *time.Time) []model.InfoHash {
	var changed []model.InfoHash
	if f := ix.opt.CountersChanged; f != nil {
		changed = f(nil) // drained either way: a full pass covers them
		if time.Since(*lastFull) < ix.opt.CountersFullEvery {
			return changed
		}
	}
	*lastFull = time.Now()
	hs := make([]model.InfoHash, 0, len(ix.known))
	// known changes only on this goroutine, so a step aside in the middle
	// is safe; 100,000 torrents held a busy core for 15 ms (trace).
	p := pace.New(0)
	for h := range ix.known {
		hs = append(hs, h)
		p.Step()
	}
	return hs
}

// refreshCounters updates the counters the listing table sorts by for the
// first CountersChunk torrents of hs and returns the rest. The counters
// live only in memory (and in the stored summary as of the last write), so
// moving counters never rewrite documents.
//
// The run loop calls it once per CountersPause: on a tracker pinned to one
// core (GOMAXPROCS 1), refreshing 100,000 torrents in one go took the core
// for about half a second and, with the stats flush, stalled announces for
// up to 0.5 s (BENCHMARKS.md, tracker section).
func (ix *Index) refreshCounters(hs []model.InfoHash) []model.InfoHash {
	part := hs[:min(ix.opt.CountersChunk, len(hs))]
	seeders, snatches := make([]int, len(part)), make([]int, len(part))
	if ix.opt.CountersBatch != nil {
		ix.opt.CountersBatch(part, seeders, snatches)
	} else {
		for i, h := range part {
			seeders[i], snatches[i] = ix.opt.Counters(h)
		}
	}
	// known is only changed by this goroutine (run); a torrent deleted
	// since the list was made is skipped.
	ix.tabMu.Lock()
	for i, h := range part {
		k, ok := ix.known[h]
		if !ok {
			continue
		}
		if s, n := seeders[i], snatches[i]; s != k.hit.Seeders || n != k.hit.Snatches {
			k.hit.Seeders, k.hit.Snatches = s, n
			ix.tab.setCounters(k, s, n)
		}
	}
	ix.tabMu.Unlock()
	return hs[len(part):]
}

// batcher groups document writes into bluge batches and keeps known current.
type batcher struct {
	ix   *Index
	b    *index.Batch
	n    int
	puts map[model.InfoHash]*known
	dels []model.InfoHash
}

func newBatcher(ix *Index) *batcher {
	return &batcher{ix: ix, b: bluge.NewBatch(), puts: map[model.InfoHash]*known{}}
}

func (b *batcher) put(t *model.Torrent, seeders, snatches int) {
	d := buildDoc(t, seeders, snatches)
	b.b.Update(d.ID(), d)
	b.puts[t.ID] = &known{rev: rev(t), hit: summarize(t, seeders, snatches)}
	b.n++
}

func (b *batcher) delete(h model.InfoHash) {
	b.b.Delete(bluge.Identifier(h.String()))
	b.dels = append(b.dels, h)
	b.n++
}

func (b *batcher) maybeFlush() error {
	if b.n >= b.ix.opt.BatchSize {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if b.n == 0 {
		return nil
	}
	if err := b.ix.w.Batch(b.b); err != nil {
		return err
	}
	b.ix.tabMu.Lock()
	for _, h := range b.dels {
		delete(b.ix.known, h)
		b.ix.tab.remove(h)
	}
	for h, k := range b.puts {
		b.ix.known[h] = k
		b.ix.tab.set(k)
	}
	b.ix.docs.Store(int64(len(b.ix.known)))
	b.ix.gen.Add(1)
	b.ix.tabMu.Unlock()
	b.b.Reset()
	b.n = 0
	b.puts = map[model.InfoHash]*known{}
	b.dels = b.dels[:0]
	return nil
}
