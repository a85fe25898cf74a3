package search

import (
	"strconv"

	"github.com/seedbank/seedbank/model"
)

// table is the listing table: one compact row per dataset in a slice, with
// facet values interned to small ids, so a query filters, counts facets
// and sorts by scanning contiguous memory. The Index guards it with tabMu.
type table struct {
	rows []row
	pos  map[model.InfoHash]int
	// Interned facet values; id 0 is "none".
	category, license, organism, year, format interner
}

// row is one dataset's sortable and filterable values.
type row struct {
	id                model.InfoHash
	created, size     int64
	seeders, snatches int64
	category, license uint32
	organism, year    uint32
	formats           uint64 // bit i-1 set for format id i (ids 1..64)
	sizeBucket        uint8  // index in SizeBuckets
	k                 *known
}

func newTable() *table { return &table{pos: map[model.InfoHash]int{}} }

// interner maps strings to small ids, 1 and up.
type interner struct {
	ids   map[string]uint32
	names []string // names[id-1]
}

func (in *interner) id(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := in.ids[s]; ok {
		return id
	}
	if in.ids == nil {
		in.ids = map[string]uint32{}
	}
	in.names = append(in.names, s)
	id := uint32(len(in.names))
	in.ids[s] = id
	return id
}

// lookup returns the id of s without adding it; ok is false when no row
// ever had s.
func (in *interner) lookup(s string) (uint32, bool) {
	id, ok := in.ids[s]
	return id, ok
}

func (in *interner) name(id uint32) string { return in.names[id-1] }

// set adds or replaces the row of k.
func (t *table) set(k *known) {
	h := &k.hit
	r := row{id: h.ID, created: h.Created, size: h.Size, seeders: int64(h.Seeders), snatches: int64(h.Snatches),
		category: t.category.id(h.Category), license: t.license.id(h.License), organism: t.organism.id(h.Organism), k: k}
	if h.Year != 0 {
		r.year = t.year.id(strconv.Itoa(h.Year))
	}
	for _, f := range h.Formats {
		if id := t.format.id(f); id <= 64 {
			r.formats |= 1 << (id - 1)
		}
	}
	r.sizeBucket = uint8(sizeBucketOf(h.Size))
	if i, ok := t.pos[h.ID]; ok {
		t.rows[i] = r
		k.row = i
		return
	}
	t.pos[h.ID] = len(t.rows)
	k.row = len(t.rows)
	t.rows = append(t.rows, r)
}

// remove drops the row of h (the last row takes its place).
func (t *table) remove(h model.InfoHash) {
	i, ok := t.pos[h]
	if !ok {
		return
	}
	last := len(t.rows) - 1
	t.rows[i] = t.rows[last]
	t.pos[t.rows[i].id] = i
	t.rows[i].k.row = i
	t.rows[last] = row{}
	t.rows = t.rows[:last]
	delete(t.pos, h)
}

// rowOf returns the current row of k, or nil when k is no longer the
// current entry of its dataset: then the row of the same dataset, if any.
func (t *table) rowOf(k *known) *row {
	if i := k.row; i < len(t.rows) && t.rows[i].k == k {
		return &t.rows[i]
	}
	if i, ok := t.pos[k.hit.ID]; ok {
		return &t.rows[i]
	}
	return nil
}

// sizeBucketOf returns the index in SizeBuckets of size.
func sizeBucketOf(size int64) int {
	for i, b := range SizeBuckets {
		if float64(size) < b.Max {
			return i
		}
	}
	return len(SizeBuckets) - 1
}

// setCounters updates the counters of k's dataset (through k's row, which
// spares a map lookup in a refresh of the whole catalog).
func (t *table) setCounters(k *known, seeders, snatches int) {
	if r := t.rowOf(k); r != nil {
		r.seeders, r.snatches = int64(seeders), int64(snatches)
	}
}
