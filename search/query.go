package search

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/blugelabs/bluge"

	"github.com/seedbank/seedbank/model"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Sort orders.
const (
	SortRelevance = "relevance" // text score, newest first among equals; the default with text
	SortNewest    = "newest"    // the default without text
	SortSize      = "size"      // largest first
	SortSeeders   = "seeders"   // most seeders first
	SortSnatches  = "snatches"  // most snatches first
)

// Facet names, also the filter names of Query.
const (
	FacetCategory = "category"
	FacetOrganism = "organism"
	FacetFormat   = "format"
	FacetLicense  = "license"
	FacetYear     = "year"
	FacetSize     = "size"
)

// Facets lists the facets in display order.
var Facets = []string{FacetCategory, FacetOrganism, FacetFormat, FacetLicense, FacetYear, FacetSize}

// termFacets are the facets filtered by an exact value.
var termFacets = []string{FacetCategory, FacetOrganism, FacetFormat, FacetLicense, FacetYear}

// SizeBucket is one range of the size facet: [Min, Max) bytes.
type SizeBucket struct {
	Key, Label string
	Min, Max   float64
}

// SizeBuckets are the size facet's ranges.
var SizeBuckets = []SizeBucket{
	{"lt100m", "under 100 MiB", 0, 100 << 20},
	{"100m-1g", "100 MiB to 1 GiB", 100 << 20, 1 << 30},
	{"1g-10g", "1 to 10 GiB", 1 << 30, 10 << 30},
	{"10g-100g", "10 to 100 GiB", 10 << 30, 100 << 30},
	{"gt100g", "100 GiB and more", 100 << 30, math.Inf(1)},
}

// Query is one catalog search.
type Query struct {
	// Text is matched (all words) against title, name, description, tags,
	// organism, accessions, authors, institution and platform.
	Text string
	// Filters by facet name (FacetCategory...): an exact value; for
	// FacetSize a SizeBuckets key.
	Filters map[string]string
	// Sort is one of the Sort constants; empty picks the default.
	Sort string
	// Offset and Limit page the hits; Limit defaults to 50, at most 500.
	Offset, Limit int
	// Facets asks for facet counts over the matching datasets.
	Facets bool
}

// FacetValue is one value of a facet and how many matching datasets have it.
type FacetValue struct {
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
	Count uint64 `json:"count"`
}

// Result is one page of hits.
type Result struct {
	Total  uint64                  `json:"total"`
	Hits   []Hit                   `json:"hits"`
	Facets map[string][]FacetValue `json:"facets,omitempty"`
	Took   time.Duration           `json:"-"`
}

// ErrBadQuery wraps query errors a user can fix (an unknown sort or filter).
var ErrBadQuery = fmt.Errorf("search: bad query")

// Search runs q over the index as it is now. Text is matched by bluge;
// filters, facet counts, sorting and paging run over the in-memory listing
// table, so a query costs one pass over its matches.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	start := time.Now()
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 500 {
		limit = 500
	}
	offset := max(q.Offset, 0)
	text := strings.TrimSpace(q.Text)

	var size SizeBucket
	for name, v := range q.Filters {
		if v == "" {
			continue
		}
		if name == FacetSize {
			b, ok := sizeBucket(v)
			if !ok {
				return Result{}, fmt.Errorf("%w: unknown size range %q", ErrBadQuery, v)
			}
			size = b
			continue
		}
		if !slices.Contains(termFacets, name) {
			return Result{}, fmt.Errorf("%w: unknown filter %q", ErrBadQuery, name)
		}
	}
	sort := q.Sort
	if sort == "" {
		sort = SortNewest
		if text != "" {
			sort = SortRelevance
		}
	}
	mode, ok := sortModes[sort]
	if !ok {
		return Result{}, fmt.Errorf("%w: unknown sort %q", ErrBadQuery, q.Sort)
	}

	var matches []textMatch
	if text != "" {
		var err error
		if matches, err = ix.matchText(ctx, text, mode == byScore); err != nil {
			return Result{}, err
		}
	}

	ix.tabMu.RLock()
	defer ix.tabMu.RUnlock()
	tab := ix.tab
	f, possible := tab.compile(q.Filters, size)
	var counts *facetCounts
	if q.Facets {
		counts = newFacetCounts(tab)
	}
	top := topK{k: offset + limit, mode: mode}
	var total uint64
	visit := func(r *row, score float64) {
		if !f.match(r) {
			return
		}
		total++
		if counts != nil {
			counts.add(r)
		}
		top.push(r, score)
	}
	if possible {
		if text == "" {
			for i := range tab.rows {
				visit(&tab.rows[i], 0)
			}
		} else {
			for _, m := range matches {
				var r *row
				if m.row < len(tab.rows) && tab.rows[m.row].k == m.k {
					r = &tab.rows[m.row] // the row cached with the match has not moved
				} else if r = tab.rowOf(m.k); r == nil {
					continue
				}
				visit(r, m.score)
			}
		}
	}

	res := Result{Total: total, Hits: []Hit{}}
	for i, sh := range top.sorted() {
		if i < offset {
			continue
		}
		h := sh.r.k.hit
		h.Seeders, h.Snatches = int(sh.r.seeders), int(sh.r.snatches)
		h.Score = sh.score
		res.Hits = append(res.Hits, h)
	}
	if counts != nil {
		res.Facets = counts.result(tab)
	}
	res.Took = time.Since(start)
	return res, nil
}

// filter is a query's filters as interned ids (0: no filter).
type filter struct {
	category, license, organism, year uint32
	format                            uint64
	size                              int // 1 + index in SizeBuckets; 0: no filter
}

// compile turns filter values into ids; possible is false when a value
// names nothing in the table (no row can match).
func (t *table) compile(filters map[string]string, size SizeBucket) (f filter, possible bool) {
	possible = true
	get := func(in *interner, name string) uint32 {
		v := filters[name]
		if v == "" {
			return 0
		}
		id, ok := in.lookup(v)
		if !ok {
			possible = false
		}
		return id
	}
	f.category = get(&t.category, FacetCategory)
	f.license = get(&t.license, FacetLicense)
	f.organism = get(&t.organism, FacetOrganism)
	f.year = get(&t.year, FacetYear)
	if id := get(&t.format, FacetFormat); id > 0 {
		if id > 64 {
			possible = false
		} else {
			f.format = 1 << (id - 1)
		}
	}
	if size.Key != "" {
		for i, b := range SizeBuckets {
			if b.Key == size.Key {
				f.size = i + 1
			}
		}
	}
	return f, possible
}

func (f *filter) match(r *row) bool {
	if f.category != 0 && r.category != f.category || f.license != 0 && r.license != f.license ||
		f.organism != 0 && r.organism != f.organism || f.year != 0 && r.year != f.year ||
		f.format != 0 && r.formats&f.format == 0 {
		return false
	}
	return f.size == 0 || int(r.sizeBucket) == f.size-1
}

// facetCounts counts facet values (by interned id) over matches.
type facetCounts struct {
	category, license, organism, year, format []uint64
	size                                      [8]uint64
}

func newFacetCounts(t *table) *facetCounts {
	return &facetCounts{
		category: make([]uint64, len(t.category.names)+1), license: make([]uint64, len(t.license.names)+1),
		organism: make([]uint64, len(t.organism.names)+1), year: make([]uint64, len(t.year.names)+1),
		format: make([]uint64, 65),
	}
}

func (c *facetCounts) add(r *row) {
	c.category[r.category]++
	c.license[r.license]++
	c.organism[r.organism]++
	c.year[r.year]++
	for f := r.formats; f != 0; f &= f - 1 {
		c.format[bits.TrailingZeros64(f)+1]++
	}
	c.size[r.sizeBucket]++
}

// maxFacetValues bounds the values listed per facet (the most frequent).
const maxFacetValues = 25

func (c *facetCounts) result(t *table) map[string][]FacetValue {
	out := map[string][]FacetValue{}
	list := func(facet string, counts []uint64, in *interner) {
		var vals []FacetValue
		for id := 1; id < len(counts) && id <= len(in.names); id++ {
			if counts[id] > 0 {
				vals = append(vals, FacetValue{Value: in.name(uint32(id)), Count: counts[id]})
			}
		}
		slices.SortFunc(vals, func(a, b FacetValue) int {
			if a.Count != b.Count {
				return cmp.Compare(b.Count, a.Count)
			}
			if facet == FacetYear {
				return strings.Compare(b.Value, a.Value)
			}
			return strings.Compare(a.Value, b.Value)
		})
		if len(vals) > maxFacetValues {
			vals = vals[:maxFacetValues]
		}
		if len(vals) > 0 {
			out[facet] = vals
		}
	}
	list(FacetCategory, c.category, &t.category)
	list(FacetOrganism, c.organism, &t.organism)
	list(FacetFormat, c.format, &t.format)
	list(FacetLicense, c.license, &t.license)
	list(FacetYear, c.year, &t.year)
	for i, b := range SizeBuckets {
		if c.size[i] > 0 {
			out[FacetSize] = append(out[FacetSize], FacetValue{Value: b.Key, Label: b.Label, Count: c.size[i]})
		}
	}
	return out
}

// sortMode is what a sort orders by, first.
type sortMode uint8

const (
	byScore sortMode = iota
	byCreated
	bySize
	bySeeders
	bySnatches
)

var sortModes = map[string]sortMode{
	SortRelevance: byScore, SortNewest: byCreated, SortSize: bySize,
	SortSeeders: bySeeders, SortSnatches: bySnatches,
}

// scored is a candidate hit with its primary sort key.
type scored struct {
	r     *row
	key   float64
	score float64
}

// before reports whether a comes before b: the larger key first; ties go
// to the newer dataset, then the smaller id, so pages are stable.
func (a *scored) before(b *scored) bool {
	if a.key != b.key {
		return a.key > b.key
	}
	if a.r.created != b.r.created {
		return a.r.created > b.r.created
	}
	return bytes.Compare(a.r.id[:], b.r.id[:]) < 0
}

// topK keeps the k first candidates in a bounded heap whose root is the
// last one kept. push allocates only while the heap grows to k.
type topK struct {
	k     int
	mode  sortMode
	items []scored
}

func (t *topK) push(r *row, score float64) {
	if t.k <= 0 {
		return
	}
	s := scored{r: r, score: score}
	switch t.mode {
	case byScore:
		s.key = score
	case byCreated:
		s.key = float64(r.created)
	case bySize:
		s.key = float64(r.size)
	case bySeeders:
		s.key = float64(r.seeders)
	case bySnatches:
		s.key = float64(r.snatches)
	}
	if len(t.items) < t.k {
		t.items = append(t.items, s)
		t.up(len(t.items) - 1)
		return
	}
	if s.before(&t.items[0]) {
		t.items[0] = s
		t.down(0)
	}
}

// worse reports whether item i comes after item j (the heap order).
func (t *topK) worse(i, j int) bool { return t.items[j].before(&t.items[i]) }

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.worse(i, p) {
			return
		}
		t.items[i], t.items[p] = t.items[p], t.items[i]
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		w := l
		if r := l + 1; r < n && t.worse(r, l) {
			w = r
		}
		if !t.worse(w, i) {
			return
		}
		t.items[i], t.items[w] = t.items[w], t.items[i]
		i = w
	}
}

// sorted returns the kept candidates, first first.
func (t *topK) sorted() []scored {
	out := slices.Clone(t.items)
	slices.SortFunc(out, func(a, b scored) int {
		if a.before(&b) {
			return -1
		}
		if b.before(&a) {
			return 1
		}
		return 0
	})
	return out
}

func sizeBucket(key string) (SizeBucket, bool) {
	for _, b := range SizeBuckets {
		if b.Key == key {
			return b, true
		}
	}
	return SizeBucket{}, false
}

// Lookup returns the datasets (newest first, at most limit) that carry an
// identifier in the form biometa.LooksLikeIdentifier gives:
// "accession:SRR1234567" or "doi:10.1234/abc" (lowercase).
func (ix *Index) Lookup(ctx context.Context, ident string, limit int) ([]model.InfoHash, error) {
	kind, v, ok := strings.Cut(ident, ":")
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: identifier %q", ErrBadQuery, ident)
	}
	var field string
	switch kind {
	case "accession":
		field = fAccessionKW
	case "doi":
		field = fDOI
		v = strings.ToLower(v)
	default:
		return nil, fmt.Errorf("%w: identifier kind %q", ErrBadQuery, kind)
	}
	if limit <= 0 {
		limit = 10
	}
	r, err := ix.w.Reader()
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer r.Close()
	req := bluge.NewTopNSearch(limit, bluge.NewTermQuery(v).SetField(field)).SortBy([]string{"-" + fCreated, "_id"})
	dmi, err := r.Search(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var out []model.InfoHash
	for m, err := dmi.Next(); m != nil || err != nil; m, err = dmi.Next() {
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		_ = m.VisitStoredFields(func(field string, value []byte) bool {
			if field == "_id" {
				var h model.InfoHash
				if h.UnmarshalText(value) == nil {
					out = append(out, h)
				}
				return false
			}
			return true
		})
	}
	return out, nil
}
