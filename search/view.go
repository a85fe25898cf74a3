package search

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/analysis/analyzer"
	bsearch "github.com/blugelabs/bluge/search"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// viewMaxAge is how long searches share one bluge snapshot while the
// index does not change. bluge merges segments in the background; a view
// only sees the merged segments once it is replaced.
const viewMaxAge = 30 * time.Second

// view is one bluge snapshot shared by the searches of one index
// generation, with a cache from the snapshot's document numbers to the
// listing entries they hold. Loading a match's _id doc value costs a
// decompression per match, the most expensive part of a broad text query;
// with the cache a document's id is loaded once per view, not once per
// query.
//
// Document numbers are only meaningful within one snapshot, so the cache
// lives and dies with the view: a new view (after a write, or after
// viewMaxAge) starts with an empty cache.
type view struct {
	r    *bluge.Reader
	gen  uint64 // Index.gen when the view was made
	born time.Time
	warm bool // made by refreshView, every document cached
	// settled: made because the previous view of the same generation grew
	// old, so bluge's merges after the last write are in it; it is not
	// replaced until the next write.
	settled bool
	refs    atomic.Int64 // the Index's reference and each search's

	// mu guards docs. A search holds it for reading through its whole
	// bluge pass and takes it for writing only to add documents it had to
	// look up, which a warmed view never needs.
	mu   sync.RWMutex
	docs []docRef // by document number; k nil: not looked up yet

	// qmu guards the query cache: matches holds the matches of recent text
	// queries (by normalized text and scoring), oldest first in order;
	// cached counts their matches.
	qmu     sync.Mutex
	matches map[queryKey][]textMatch
	order   []queryKey
	cached  int
}

// queryKey identifies a text query: the same words, scored or not.
type queryKey struct {
	text   string
	scored bool
}

// Bounds of a view's query cache: a popular query, the next page of a
// query or a facet click on it skip bluge.
const (
	maxCachedQueries = 256
	maxCachedMatches = 1 << 20 // about 24 MiB
)

// cachedMatches returns the cached matches of key; the caller holds v.qmu.
func (v *view) cachedMatches(key queryKey) ([]textMatch, bool) {
	m, ok := v.matches[key]
	return m, ok
}

// cache keeps the matches of key, dropping the oldest queries to stay
// within the bounds; the caller holds v.qmu.
func (v *view) cache(key queryKey, m []textMatch) {
	if len(m) > maxCachedMatches/4 {
		return
	}
	if _, ok := v.matches[key]; ok {
		return
	}
	if v.matches == nil {
		v.matches = map[queryKey][]textMatch{}
	}
	for len(v.order) > 0 && (len(v.order) >= maxCachedQueries || v.cached+len(m) > maxCachedMatches) {
		old := v.order[0]
		v.order = v.order[1:]
		v.cached -= len(v.matches[old])
		delete(v.matches, old)
	}
	v.matches[key] = m
	v.order = append(v.order, key)
	v.cached += len(m)
}

func (v *view) release() {
	if v.refs.Add(-1) == 0 {
		_ = v.r.Close()
	}
}

// acquire returns the view of the current index generation. Normally the
// worker made it (refreshView); in the moment between a write and the
// worker's refresh it makes a cold one. The caller must release it.
func (ix *Index) acquire() (*view, error) {
	gen := ix.gen.Load() // before Reader: the snapshot is at least this new
	ix.viewMu.Lock()
	defer ix.viewMu.Unlock()
	select {
	case <-ix.quit:
		return nil, errors.New("search: index closed")
	default:
	}
	if v := ix.view; v != nil && v.gen == gen {
		v.refs.Add(1)
		return v, nil
	}
	r, err := ix.w.Reader()
	if err != nil {
		return nil, fmt.Errorf("search: open reader: %w", err)
	}
	v := &view{r: r, gen: gen, born: time.Now()}
	v.refs.Store(2) // the index's and the caller's
	if old := ix.view; old != nil {
		old.release()
	}
	ix.view = v
	return v, nil
}

// refreshView makes a warmed view of the current index and installs it,
// when the index changed since the current view was made, or once more
// when that view is older than viewMaxAge (so searches see the segments
// bluge merged after the write). The worker calls it; warming 100,000
// documents took 66 to 204 ms of one core in BENCHMARKS.md.
func (ix *Index) refreshView() {
	gen := ix.gen.Load()
	ix.viewMu.Lock()
	cur := ix.view
	same := cur != nil && cur.gen == gen && cur.warm
	fresh := same && (cur.settled || time.Since(cur.born) < viewMaxAge)
	ix.viewMu.Unlock()
	if fresh {
		return
	}
	r, err := ix.w.Reader()
	if err != nil {
		ix.log.Warn("search: open reader", "err", err)
		return
	}
	start := time.Now()
	v := &view{r: r, gen: gen, born: start, warm: true, settled: same}
	v.refs.Store(1)
	defer v.release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ix.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := ix.warm(ctx, v); err != nil {
		ix.log.Warn("search: warm the document cache", "err", err)
		return
	}
	ix.viewMu.Lock()
	if old := ix.view; old == nil || old.gen <= v.gen {
		v.refs.Add(1)
		ix.view = v
		if old != nil {
			old.release()
		}
	}
	ix.viewMu.Unlock()
	ix.log.Debug("search view warmed", "gen", gen, "took", time.Since(start))
}

// dropView releases the index's reference to its view (on Close).
func (ix *Index) dropView() {
	ix.viewMu.Lock()
	defer ix.viewMu.Unlock()
	if ix.view != nil {
		ix.view.release()
		ix.view = nil
	}
}

// queryAnalyzer splits query text into terms as bluge's text fields do.
var queryAnalyzer = analyzer.NewStandardAnalyzer()

// queryTerms returns the distinct analyzed terms of text.
func queryTerms(text string) []string {
	var out []string
	for _, tok := range queryAnalyzer.Analyze([]byte(text)) {
		if t := string(tok.Term); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// docRef is what a view knows of one document number: the listing entry
// and its row in the table when it was looked up.
type docRef struct {
	k   *known
	row int
}

// lookedUp is a match whose id was read from bluge, not the view's cache.
type lookedUp struct {
	num   uint64 // document number
	id    model.InfoHash
	score float64
}

// textMatch is one dataset matching a text query.
type textMatch struct {
	docRef
	score float64
}

// matchText returns the datasets matching every word of text, with scores
// when scored (relevance sort) and 0 otherwise (an unscored search skips
// term frequencies and the boosting clauses). The result is shared with
// the view's query cache: callers must not modify it.
func (ix *Index) matchText(ctx context.Context, text string, scored bool) ([]textMatch, error) {
	v, err := ix.acquire()
	if err != nil {
		return nil, err
	}
	defer v.release()
	key := queryKey{text: strings.ToLower(strings.Join(strings.Fields(text), " ")), scored: scored}
	if !ix.opt.NoQueryCache {
		v.qmu.Lock()
		m, ok := v.cachedMatches(key)
		v.qmu.Unlock()
		if ok {
			return m, nil
		}
	}

	terms := queryTerms(text)
	if len(terms) == 0 {
		return nil, nil
	}
	// One flat boolean query (bluge's MatchQuery nests a boolean searcher
	// per field): every term must be in the text, and terms in the title
	// or the accessions raise the score.
	q := bluge.NewBooleanQuery()
	for _, t := range terms {
		q.AddMust(bluge.NewTermQuery(t).SetField(fAll))
	}
	if scored {
		for _, t := range terms {
			q.AddShould(bluge.NewTermQuery(t).SetField(fTitle).SetBoost(3))
			if strings.ContainsAny(t, "0123456789") {
				// Every accession has a digit, so only such a term can
				// match one; skipping the others saves work per match.
				q.AddShould(bluge.NewTermQuery(t).SetField(fAccessions).SetBoost(3))
			}
		}
	}
	out := make([]textMatch, 0, 64)
	var misses []lookedUp
	// Read the cache under one read lock for the whole pass; load the ids
	// of documents not seen yet, and add them after.
	v.mu.RLock()
	err = v.visit(ctx, q, scored, func(num uint64, score float64, load func() (model.InfoHash, bool)) {
		if num < uint64(len(v.docs)) {
			if d := v.docs[num]; d.k != nil {
				out = append(out, textMatch{docRef: d, score: score})
				return
			}
		}
		if id, ok := load(); ok {
			misses = append(misses, lookedUp{num: num, id: id, score: score})
		}
	})
	v.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if len(misses) > 0 {
		refs := ix.resolve(misses)
		v.mu.Lock()
		for i, m := range misses {
			if refs[i].k == nil {
				continue // not in the listing table (yet, or any more)
			}
			out = append(out, textMatch{docRef: refs[i], score: m.score})
			v.put(m.num, refs[i])
		}
		v.mu.Unlock()
	}
	if !ix.opt.NoQueryCache {
		v.qmu.Lock()
		v.cache(key, out)
		v.qmu.Unlock()
	}
	return out, nil
}

// resolve finds the listing entries of the ids in ms.
func (ix *Index) resolve(ms []lookedUp) []docRef {
	out := make([]docRef, len(ms))
	ix.tabMu.RLock()
	defer ix.tabMu.RUnlock()
	for i, m := range ms {
		if k := ix.known[m.id]; k != nil {
			out[i] = docRef{k: k, row: k.row}
		}
	}
	return out
}

// put caches d for document number num; the caller holds v.mu.
func (v *view) put(num uint64, d docRef) {
	if num >= uint64(len(v.docs)) {
		v.docs = append(v.docs, make([]docRef, int(num)+1-len(v.docs)+len(v.docs)/2)...)
	}
	v.docs[num] = d
}

// warm loads the id of every document of v into its cache, so searches
// on v never load one. The caller must hold a reference to v.
func (ix *Index) warm(ctx context.Context, v *view) error {
	var all []lookedUp
	// Every document: step aside now and then for the tracker (see pace).
	p := pace.New(0)
	err := v.visit(ctx, bluge.NewMatchAllQuery(), false, func(num uint64, _ float64, load func() (model.InfoHash, bool)) {
		p.Step()
		if id, ok := load(); ok {
			all = append(all, lookedUp{num: num, id: id})
		}
	})
	if err != nil {
		return err
	}
	// In chunks, each under the locks once, with steps aside between.
	const chunk = 1024
	for len(all) > 0 {
		part := all[:min(chunk, len(all))]
		all = all[len(part):]
		refs := ix.resolve(part)
		v.mu.Lock()
		for i, m := range part {
			if refs[i].k != nil {
				v.put(m.num, refs[i])
			}
		}
		v.mu.Unlock()
		p.StepN(len(part))
	}
	return nil
}

// visit runs q over v's snapshot and calls fn with each match's document
// number and score; load reads the match's id (a doc value).
func (v *view) visit(ctx context.Context, q bluge.Query, scored bool, fn func(num uint64, score float64, load func() (model.InfoHash, bool))) error {
	_, err := v.r.Search(ctx, &visitRequest{q: q, scored: scored, fn: fn})
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}

// visitRequest is a bluge search request that hands every match to fn as
// it is found (no sorting, no aggregations) and recycles the matches,
// optionally with scoring off: searchers then skip term frequencies and
// norms.
type visitRequest struct {
	q      bluge.Query
	scored bool
	fn     func(num uint64, score float64, load func() (model.InfoHash, bool))
	// loadID reads the _id doc value of a document of the snapshot; set by
	// Searcher, which gets the snapshot.
	loadID func(num uint64) (model.InfoHash, bool, error)
}

func (r *visitRequest) Collector() bsearch.Collector { return r }

func (r *visitRequest) Searcher(i bsearch.Reader, config bluge.Config) (bsearch.Searcher, error) {
	dv, err := i.DocumentValueReader(idField)
	if err != nil {
		return nil, fmt.Errorf("document id reader: %w", err)
	}
	r.loadID = func(num uint64) (model.InfoHash, bool, error) {
		var id model.InfoHash
		ok := false
		err := dv.VisitDocumentValues(num, func(field string, term []byte) {
			if field == "_id" && !ok {
				ok = id.UnmarshalText(term) == nil
			}
		})
		return id, ok, err
	}
	score := ""
	if !r.scored {
		score = "none"
	}
	return r.q.Searcher(i, bsearch.SearcherOptions{
		SimilarityForField: func(field string) bsearch.Similarity {
			if s, ok := config.PerFieldSimilarity[field]; ok {
				return s
			}
			return config.DefaultSimilarity
		},
		DefaultSearchField: config.DefaultSearchField,
		DefaultAnalyzer:    config.DefaultSearchAnalyzer,
		Score:              score,
	})
}

func (r *visitRequest) AddAggregation(string, bsearch.Aggregation) {}
func (r *visitRequest) Aggregations() bsearch.Aggregations         { return bsearch.Aggregations{} }
func (r *visitRequest) Size() int                                  { return 0 }
func (r *visitRequest) BackingSize() int                           { return 0 }

var idField = []string{"_id"}

// Collect runs the whole search: bluge's Reader.Search returns after it.
func (r *visitRequest) Collect(ctx context.Context, _ bsearch.Aggregations, s bsearch.Collectible) (bsearch.DocumentMatchIterator, error) {
	defer s.Close()
	sctx := bsearch.NewSearchContext(s.DocumentMatchPoolSize(), 0)
	var num uint64
	var loadErr error
	load := func() (model.InfoHash, bool) {
		id, ok, err := r.loadID(num)
		if err != nil {
			loadErr = fmt.Errorf("load document id: %w", err)
		}
		return id, ok
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		dm, err := s.Next(sctx)
		if err != nil {
			return nil, err
		}
		if dm == nil {
			return noMatches{}, nil
		}
		num = dm.Number
		r.fn(num, dm.Score, load)
		if loadErr != nil {
			return nil, loadErr
		}
		sctx.DocumentMatchPool.Put(dm)
	}
}

type noMatches struct{}

func (noMatches) Next() (*bsearch.DocumentMatch, error) { return nil, nil }
func (noMatches) Aggregations() *bsearch.Bucket         { return nil }
