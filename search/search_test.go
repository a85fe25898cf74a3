package search

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blugelabs/bluge"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
)

var errNotFound = errors.New("not found")

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memSource is an in-memory catalog.
type memSource struct {
	mu sync.Mutex
	m  map[model.InfoHash]model.Torrent
}

func newMemSource() *memSource { return &memSource{m: map[model.InfoHash]model.Torrent{}} }

func (s *memSource) Torrent(h model.InfoHash) (model.Torrent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[h]
	if !ok {
		return t, fmt.Errorf("torrent %s: %w", h, errNotFound)
	}
	return t, nil
}

func (s *memSource) ForEachTorrent(fn func(model.Torrent) error) error {
	s.mu.Lock()
	ts := make([]model.Torrent, 0, len(s.m))
	for _, t := range s.m {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return string(ts[i].ID[:]) < string(ts[j].ID[:]) })
	for _, t := range ts {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) put(t model.Torrent) {
	s.mu.Lock()
	s.m[t.ID] = t
	s.mu.Unlock()
}

func (s *memSource) del(h model.InfoHash) {
	s.mu.Lock()
	delete(s.m, h)
	s.mu.Unlock()
}

var (
	organisms = []string{"Homo sapiens", "Mus musculus", "Arabidopsis thaliana", "Danio rerio", "Escherichia coli", "Saccharomyces cerevisiae", "Drosophila melanogaster", "Zea mays"}
	words     = []string{"drought", "root", "leaf", "tumour", "liver", "single-cell", "atlas", "methylation", "chromatin", "metagenome", "soil", "ocean", "time-course", "knockout", "hypoxia", "circadian", "immune", "neuron", "embryo", "pathogen"}
	licenses  = []string{"CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "ODbL-1.0"}
)

// genTorrent makes the i-th dataset of a deterministic generated catalog.
func genTorrent(i int) model.Torrent {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	id := model.InfoHash(sha1.Sum([]byte(strconv.Itoa(i))))
	cat := biometa.Categories[r.IntN(len(biometa.Categories))].ID
	org := organisms[r.IntN(len(organisms))]
	w1, w2, w3 := words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))]
	size := int64(1+r.IntN(1000)) << (20 + r.IntN(10))
	md := biometa.Metadata{
		Title:       fmt.Sprintf("%s %s study %d", w1, w2, i),
		Description: fmt.Sprintf("A %s dataset about %s in %s. Sample %d.", w3, w1, org, i),
		Category:    cat, Organism: org, License: licenses[r.IntN(len(licenses))],
		Formats: []string{biometa.Formats[r.IntN(len(biometa.Formats))]},
		Year:    2010 + r.IntN(15), Tags: []string{w3},
		Accessions: []biometa.Accession{{ID: fmt.Sprintf("SRR%07d", i)}, {ID: fmt.Sprintf("PRJNA%d", 100000+i/10)}},
	}
	if i%10 == 0 {
		md.DOI = fmt.Sprintf("10.5281/zenodo.%d", i)
	}
	return model.Torrent{
		ID: id, InfoHashV1: id.String(), Name: fmt.Sprintf("dataset_%d", i), Metainfo: []byte("x"),
		Files: []model.File{{Path: "a.fastq.gz", Length: size}}, TotalSize: size, Uploader: 1,
		Created: 1_700_000_000_000 + int64(i)*1000, Metadata: md.Map(),
	}
}

// openFilled opens an index over a generated catalog of n datasets and
// waits until it is built.
func openFilled(tb testing.TB, n int, dir string) (*Index, *memSource) {
	tb.Helper()
	src := newMemSource()
	for i := range n {
		src.put(genTorrent(i))
	}
	ix, err := Open(dir, src, Options{NotFound: errNotFound, Counters: func(h model.InfoHash) (int, int) {
		return int(h[0]), int(h[1])
	}, BatchSize: 2000, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ix.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := ix.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	if ix.Count() != n {
		tb.Fatalf("indexed %d, want %d", ix.Count(), n)
	}
	return ix, src
}

func sync1(t *testing.T, ix *Index) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ix.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSearchCatalog(t *testing.T) {
	t.Parallel()
	const n = 10000
	start := time.Now()
	ix, src := openFilled(t, n, t.TempDir())
	t.Logf("indexed %d datasets in %v", n, time.Since(start))
	ctx := context.Background()

	// Everything, newest first.
	res, err := ix.Search(ctx, Query{Limit: 5, Facets: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != n || len(res.Hits) != 5 || res.Hits[0].Name != fmt.Sprintf("dataset_%d", n-1) {
		t.Fatalf("total %d hits %+v", res.Total, res.Hits)
	}
	var catSum uint64
	for _, f := range res.Facets[FacetCategory] {
		catSum += f.Count
	}
	if catSum != n {
		t.Fatalf("category facet counts add up to %d", catSum)
	}
	if len(res.Facets[FacetSize]) == 0 || len(res.Facets[FacetOrganism]) != len(organisms) {
		t.Fatalf("facets %+v", res.Facets)
	}

	// Text: all words must match, the title counts most.
	want4242 := genTorrent(4242)
	res, err = ix.Search(ctx, Query{Text: want4242.Metadata["title"], Facets: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || res.Hits[0].ID != want4242.ID || res.Hits[0].Score <= 0 {
		t.Fatalf("title search: total %d, hits %+v", res.Total, res.Hits)
	}
	var sum uint64
	for _, f := range res.Facets[FacetCategory] {
		sum += f.Count
	}
	if sum != 1 {
		t.Fatalf("facet counts do not follow the query: %+v", res.Facets)
	}
	res, err = ix.Search(ctx, Query{Text: "drought", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total < 500 {
		t.Fatalf("drought: %d", res.Total)
	}
	for i := 1; i < len(res.Hits); i++ {
		if res.Hits[i].Score > res.Hits[i-1].Score {
			t.Fatal("not sorted by relevance")
		}
	}

	// Filters: every hit has the value; totals match a brute-force count.
	want := 0
	for i := range n {
		m := genTorrent(i).Metadata
		if m["category"] == "expression" && m["organism"] == "Mus musculus" && m["license"] == "CC0-1.0" {
			want++
		}
	}
	res, err = ix.Search(ctx, Query{Filters: map[string]string{FacetCategory: "expression", FacetOrganism: "Mus musculus", FacetLicense: "CC0-1.0"}, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if int(res.Total) != want || len(res.Hits) != min(want, 500) {
		t.Fatalf("filtered total %d, want %d", res.Total, want)
	}
	for _, h := range res.Hits {
		if h.Category != "expression" || h.Organism != "Mus musculus" {
			t.Fatalf("hit outside filter: %+v", h)
		}
	}

	// Size filter and sort by size.
	res, err = ix.Search(ctx, Query{Filters: map[string]string{FacetSize: "1g-10g"}, Sort: SortSize, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range res.Hits {
		if h.Size < 1<<30 || h.Size >= 10<<30 {
			t.Fatalf("size %d outside 1-10 GiB", h.Size)
		}
		if i > 0 && h.Size > res.Hits[i-1].Size {
			t.Fatal("not sorted by size")
		}
	}
	// Sort by seeders and snatches (from Counters).
	for _, s := range []string{SortSeeders, SortSnatches} {
		res, err = ix.Search(ctx, Query{Sort: s, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(res.Hits); i++ {
			a, b := res.Hits[i-1], res.Hits[i]
			if s == SortSeeders && a.Seeders < b.Seeders || s == SortSnatches && a.Snatches < b.Snatches {
				t.Fatalf("%s not sorted: %+v %+v", s, a, b)
			}
		}
	}
	// Pagination: pages do not overlap.
	p1, _ := ix.Search(ctx, Query{Limit: 20})
	p2, _ := ix.Search(ctx, Query{Limit: 20, Offset: 20})
	if p1.Hits[19].ID == p2.Hits[0].ID || p2.Hits[0].Created >= p1.Hits[19].Created {
		t.Fatal("pages overlap")
	}
	if _, err := ix.Search(ctx, Query{Sort: "bogus"}); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("bad sort: %v", err)
	}

	// Lookup by accession and DOI.
	ids, err := ix.Lookup(ctx, "accession:SRR0001234", 2)
	if err != nil || len(ids) != 1 || ids[0] != genTorrent(1234).ID {
		t.Fatalf("lookup: %v %v", ids, err)
	}
	ids, _ = ix.Lookup(ctx, "accession:PRJNA100123", 20)
	if len(ids) != 10 {
		t.Fatalf("project lookup: %d", len(ids))
	}
	ids, _ = ix.Lookup(ctx, "doi:10.5281/zenodo.4240", 2)
	if len(ids) != 1 || ids[0] != genTorrent(4240).ID {
		t.Fatalf("doi lookup: %v", ids)
	}

	// Follow: an edit, a delete and a new dataset become searchable.
	t1 := genTorrent(1)
	t1.Metadata["title"] = "Zebrafish fin regeneration"
	src.put(t1)
	src.del(genTorrent(2).ID)
	t3 := genTorrent(n + 1)
	src.put(t3)
	ix.Follow(100, "update_torrent", []model.InfoHash{t1.ID})
	ix.Follow(101, "delete_torrent", []model.InfoHash{genTorrent(2).ID})
	ix.Follow(102, "put_torrent", []model.InfoHash{t3.ID})
	sync1(t, ix)
	if ix.Indexed() != 102 || ix.Count() != n {
		t.Fatalf("indexed %d count %d", ix.Indexed(), ix.Count())
	}
	res, _ = ix.Search(ctx, Query{Text: "regeneration zebrafish"})
	if res.Total != 1 || res.Hits[0].ID != t1.ID {
		t.Fatalf("edit not found: %+v", res)
	}
	if ids, _ := ix.Lookup(ctx, "accession:SRR0000002", 2); len(ids) != 0 {
		t.Fatal("deleted dataset still found")
	}
}

// TestReopenReconciles checks that a reopened index catches up with changes
// it never followed, and that a restore reconciles.
func TestReopenReconciles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := newMemSource()
	for i := range 200 {
		src.put(genTorrent(i))
	}
	ix, err := Open(dir, src, Options{NotFound: errNotFound, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sync1(t, ix)
	must(t, ix.Close())

	src.del(genTorrent(5).ID)
	src.put(genTorrent(500))
	t7 := genTorrent(7)
	t7.Metadata["title"] = "Renamed while the node was down"
	src.put(t7)

	ix, err = Open(dir, src, Options{NotFound: errNotFound, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	sync1(t, ix)
	if ix.Count() != 200 {
		t.Fatalf("count %d", ix.Count())
	}
	res, _ := ix.Search(context.Background(), Query{Text: "renamed node down"})
	if res.Total != 1 {
		t.Fatalf("renamed: %d", res.Total)
	}

	src.del(genTorrent(8).ID)
	ix.Follow(9, "restore", nil)
	sync1(t, ix)
	if ix.Count() != 199 {
		t.Fatalf("after restore: %d", ix.Count())
	}
}

// TestFollowNeverBlocks: Follow returns at once even while the worker is
// busy with a slow source.
func TestFollowNeverBlocks(t *testing.T) {
	t.Parallel()
	slow := &slowSource{memSource: newMemSource(), delay: 50 * time.Millisecond}
	for i := range 5 {
		slow.put(genTorrent(i))
	}
	ix, err := Open("", slow, Options{NotFound: errNotFound, NoInitialReconcile: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var hashes [5][]model.InfoHash
	for i := range hashes {
		hashes[i] = []model.InfoHash{genTorrent(i).ID}
	}
	start := time.Now()
	for i := range 10000 {
		ix.Follow(uint64(i+1), "put_torrent", hashes[i%5])
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("10000 Follow calls took %v", d)
	}
	sync1(t, ix)
	if ix.Count() != 5 || ix.Indexed() != 10000 {
		t.Fatalf("count %d indexed %d", ix.Count(), ix.Indexed())
	}
}

type slowSource struct {
	*memSource
	delay time.Duration
}

func (s *slowSource) Torrent(h model.InfoHash) (model.Torrent, error) {
	time.Sleep(s.delay)
	return s.memSource.Torrent(h)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSearch builds a 100,000-dataset index and reports indexing rate
// and p50/p99 latency of text, filtered (text, two filters, sort by
// seeders) and faceted (text plus facet counts) queries, and of browsing
// (no text: facets, one filter, paging). The generated vocabulary is small,
// so one word matches about 15% of the catalog: a harsher load than real
// searches.
//
// SEEDBANK_BENCH_DOCS changes the catalog size (for profiling).
func BenchmarkSearch(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("SEEDBANK_BENCH_DOCS")); err == nil && v > 0 {
		n = v
	}
	start := time.Now()
	ix, _ := openFilled(b, n, b.TempDir())
	took := time.Since(start)
	b.Logf("indexed %d datasets in %v: %.0f datasets/s", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	ctx := context.Background()
	// The worker warms a view after indexing; time one warm-up (what each
	// write costs the worker on top of indexing).
	v, err := ix.acquire()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := ix.warm(ctx, v); err != nil {
		b.Fatal(err)
	}
	b.Logf("warmed the document cache of %d datasets in %v", n, time.Since(t0).Round(time.Millisecond))
	v.release()
	queries := map[string]func(i int) Query{
		"text": func(i int) Query { return Query{Text: words[i%len(words)] + " " + words[(i/3)%len(words)], Limit: 50} },
		"filtered": func(i int) Query {
			return Query{Text: words[i%len(words)], Filters: map[string]string{FacetCategory: biometa.Categories[i%9].ID, FacetOrganism: organisms[i%len(organisms)]}, Sort: SortSeeders, Limit: 50}
		},
		"faceted": func(i int) Query { return Query{Text: words[i%len(words)], Facets: true, Limit: 50} },
		"browse": func(i int) Query {
			return Query{Facets: true, Limit: 25, Offset: 25 * (i % 4), Filters: map[string]string{FacetLicense: licenses[i%len(licenses)]}}
		},
	}
	// The plain runs measure the uncached path (every query runs in bluge);
	// the -cached runs let the generated vocabulary's repeats hit the query
	// cache, as the next page of a query or a facet click does.
	for _, name := range []string{"text", "filtered", "faceted", "browse", "text-cached", "faceted-cached"} {
		mk := queries[strings.TrimSuffix(name, "-cached")]
		ix.opt.NoQueryCache = !strings.HasSuffix(name, "-cached")
		b.Run(name, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				if _, err := ix.Search(ctx, mk(i)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
	// Concurrent searches (4 goroutines), uncached: ns/op is the inverse
	// of throughput.
	ix.opt.NoQueryCache = true
	for _, name := range []string{"faceted", "filtered"} {
		mk := queries[name]
		b.Run(name+"-parallel", func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			var seq atomic.Int64
			b.SetParallelism(2) // 2 x GOMAXPROCS goroutines
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					if _, err := ix.Search(ctx, mk(int(seq.Add(1)))); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// TestSetSourceLater: an index opened before its store queues the changes
// it is told about and indexes them once the source is set.
func TestSetSourceLater(t *testing.T) {
	t.Parallel()
	ix, err := Open(t.TempDir(), nil, Options{NotFound: errNotFound, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	src := newMemSource()
	for i := range 3 {
		src.put(genTorrent(i))
	}
	ix.Follow(7, "put_torrent", []model.InfoHash{genTorrent(0).ID})
	ix.SetSource(src)
	sync1(t, ix)
	if ix.Count() != 3 || ix.Indexed() != 7 {
		t.Fatalf("count %d indexed %d", ix.Count(), ix.Indexed())
	}
	unstarted, err := Open("", nil, Options{Logger: quiet})
	must(t, err)
	must(t, unstarted.Close())
}

// bruteMatch reports whether generated dataset md matches every word of
// text (the generated words are the only shared vocabulary) and filters.
func bruteMatch(md map[string]string, size int64, words []string, filters map[string]string) bool {
	m := biometa.FromMap(md)
	have := strings.Fields(strings.ToLower(m.Title + " " + m.Description + " " + strings.Join(m.Tags, " ")))
	for _, w := range words {
		if !slices.Contains(have, w) && !slices.Contains(have, w+".") {
			return false
		}
	}
	for name, v := range filters {
		switch name {
		case FacetCategory:
			if m.Category != v {
				return false
			}
		case FacetOrganism:
			if m.Organism != v {
				return false
			}
		case FacetLicense:
			if m.License != v {
				return false
			}
		case FacetFormat:
			if !slices.Contains(m.Formats, v) {
				return false
			}
		case FacetYear:
			if strconv.Itoa(m.Year) != v {
				return false
			}
		case FacetSize:
			b, _ := sizeBucket(v)
			if float64(size) < b.Min || float64(size) >= b.Max {
				return false
			}
		}
	}
	return true
}

// bruteFacets counts every facet value over the datasets of src matching
// text and filters.
func bruteFacets(src *memSource, text string, filters map[string]string) (uint64, map[string]map[string]uint64) {
	words := strings.Fields(text)
	counts := map[string]map[string]uint64{}
	add := func(facet, v string) {
		if v == "" {
			return
		}
		if counts[facet] == nil {
			counts[facet] = map[string]uint64{}
		}
		counts[facet][v]++
	}
	var total uint64
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, t := range src.m {
		if !bruteMatch(t.Metadata, t.TotalSize, words, filters) {
			continue
		}
		total++
		m := biometa.FromMap(t.Metadata)
		add(FacetCategory, m.Category)
		add(FacetOrganism, m.Organism)
		add(FacetLicense, m.License)
		for _, f := range m.Formats {
			add(FacetFormat, f)
		}
		if m.Year != 0 {
			add(FacetYear, strconv.Itoa(m.Year))
		}
		for _, b := range SizeBuckets {
			if float64(t.TotalSize) >= b.Min && float64(t.TotalSize) < b.Max {
				add(FacetSize, b.Key)
			}
		}
	}
	return total, counts
}

// TestFacetsMatchBruteForce compares totals and every facet count of text
// queries, combined filters and both together with a count over the
// generated catalog, before and after edits and deletes (which move rows
// of the listing table and make new bluge snapshots).
func TestFacetsMatchBruteForce(t *testing.T) {
	t.Parallel()
	const n = 3000
	ix, src := openFilled(t, n, t.TempDir())
	ctx := context.Background()
	texts := []string{"", "drought", "liver root", "immune neuron embryo"}
	filterSets := []map[string]string{
		nil,
		{FacetCategory: "expression"},
		{FacetCategory: "raw-reads", FacetOrganism: "Mus musculus"},
		{FacetLicense: "CC0-1.0", FacetSize: "1g-10g"},
		{FacetFormat: "FASTQ", FacetYear: "2015"},
		{FacetOrganism: "Homo sapiens", FacetLicense: "CC-BY-4.0", FacetSize: "10g-100g", FacetCategory: "assembly"},
	}
	check := func(stage string) {
		t.Helper()
		nonEmpty := 0
		defer func() {
			if nonEmpty < 30 {
				t.Fatalf("%s: only %d of the queries match anything; the test checks too little", stage, nonEmpty)
			}
		}()
		for _, text := range texts {
			for _, filters := range filterSets {
				for _, sort := range []string{"", SortSeeders} {
					res, err := ix.Search(ctx, Query{Text: text, Filters: filters, Facets: true, Sort: sort, Limit: 10})
					if err != nil {
						t.Fatal(err)
					}
					total, want := bruteFacets(src, text, filters)
					if total > 0 {
						nonEmpty++
					}
					if res.Total != total {
						t.Fatalf("%s: %q %v: total %d, brute force %d", stage, text, filters, res.Total, total)
					}
					got := map[string]map[string]uint64{}
					for facet, vals := range res.Facets {
						got[facet] = map[string]uint64{}
						for _, v := range vals {
							got[facet][v.Value] = v.Count
						}
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("%s: %q %v: facets\n got %v\nwant %v", stage, text, filters, got, want)
					}
					for _, h := range res.Hits {
						tor, _ := src.Torrent(h.ID)
						if !bruteMatch(tor.Metadata, tor.TotalSize, strings.Fields(text), filters) {
							t.Fatalf("%s: %q %v: hit %s does not match", stage, text, filters, h.Name)
						}
					}
				}
			}
		}
	}
	check("built")

	// Delete every 7th dataset (rows move), retitle every 11th (documents
	// replaced), add a few.
	var changed []model.InfoHash
	for i := 0; i < n; i += 7 {
		h := genTorrent(i).ID
		src.del(h)
		changed = append(changed, h)
	}
	for i := 5; i < n; i += 11 {
		tor := genTorrent(i)
		if _, err := src.Torrent(tor.ID); err != nil {
			continue
		}
		tor.Metadata["title"] = "drought liver root immune neuron embryo " + strconv.Itoa(i)
		src.put(tor)
		changed = append(changed, tor.ID)
	}
	for i := n; i < n+50; i++ {
		tor := genTorrent(i)
		src.put(tor)
		changed = append(changed, tor.ID)
	}
	ix.Follow(500, "update_torrent", changed)
	sync1(t, ix)
	check("after edits")
	ix.refreshView() // the worker's warmed view answers the same
	check("warmed")
	check("warmed, from the query cache")
	ix.opt.NoQueryCache = true
	check("uncached")
}

// TestPaginationStable: walking every page of a query, in every sort,
// yields each matching dataset exactly once, in order.
func TestPaginationStable(t *testing.T) {
	t.Parallel()
	ix, _ := openFilled(t, 2000, t.TempDir())
	ctx := context.Background()
	for _, q := range []Query{
		{Text: "drought"},
		{Text: "drought", Sort: SortSeeders},
		{Sort: SortSnatches, Filters: map[string]string{FacetLicense: "CC0-1.0", FacetOrganism: "Zea mays"}},
		{Sort: SortSize},
		{Text: "liver", Sort: SortNewest, Filters: map[string]string{FacetSize: "100m-1g"}},
	} {
		q.Limit = 500
		all, err := ix.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if all.Total == 0 {
			t.Fatalf("%+v: nothing matches", q)
		}
		var walked []Hit
		q.Limit = 17
		for q.Offset = 0; q.Offset < len(all.Hits); q.Offset += 17 {
			page, err := ix.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != all.Total {
				t.Fatalf("%+v: total changed to %d", q, page.Total)
			}
			walked = append(walked, page.Hits...)
		}
		if all.Total > 500 && len(walked) > 500 {
			walked = walked[:500] // one page holds at most 500
		}
		if len(walked) != len(all.Hits) {
			t.Fatalf("%+v: walked %d hits, want %d", q, len(walked), len(all.Hits))
		}
		seen := map[model.InfoHash]bool{}
		for i, h := range walked {
			if seen[h.ID] {
				t.Fatalf("%+v: %s twice", q, h.Name)
			}
			seen[h.ID] = true
			if h.ID != all.Hits[i].ID {
				t.Fatalf("%+v: position %d is %s on the pages, %s in one page", q, i, h.Name, all.Hits[i].Name)
			}
		}
	}
}

// TestSearchWhileIndexing runs searches while the index takes writes and
// refreshes its views (run it with -race): every answer is consistent
// (hits match the text, totals never exceed the catalog) and the final
// answer equals a brute-force count.
func TestSearchWhileIndexing(t *testing.T) {
	t.Parallel()
	ix, src := openFilled(t, 1000, t.TempDir())
	ctx := context.Background()
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				q := Query{Text: words[(g+i)%len(words)], Facets: i%2 == 0, Sort: []string{"", SortSeeders, SortNewest}[i%3]}
				res, err := ix.Search(ctx, q)
				if err != nil {
					errs <- err
					return
				}
				if res.Total > 1100 {
					errs <- fmt.Errorf("total %d", res.Total)
					return
				}
			}
		}()
	}
	for round := range 20 {
		var changed []model.InfoHash
		for i := round; i < 1000; i += 40 {
			tor := genTorrent(i)
			if round%2 == 1 {
				src.del(tor.ID)
			} else {
				tor.Metadata["title"] = "drought " + strconv.Itoa(round)
				src.put(tor)
			}
			changed = append(changed, tor.ID)
		}
		ix.Follow(uint64(1000+round), "update_torrent", changed)
		if round%5 == 0 {
			ix.refreshView()
		}
	}
	sync1(t, ix)
	close(stop)
	wg.Wait()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	res, err := ix.Search(ctx, Query{Text: "drought", Facets: true})
	must(t, err)
	if total, _ := bruteFacets(src, "drought", nil); res.Total != total {
		t.Fatalf("total %d, brute force %d", res.Total, total)
	}
}

// TestViewRefresh: searches share a view until a write; the worker then
// installs a warmed view of the new generation; an old view is replaced
// once (for bluge's merges) and then kept until the next write; a view
// stays usable by the search holding it after it is replaced.
func TestViewRefresh(t *testing.T) {
	t.Parallel()
	ix, src := openFilled(t, 300, t.TempDir())
	ctx := context.Background()
	current := func() *view {
		ix.viewMu.Lock()
		defer ix.viewMu.Unlock()
		return ix.view
	}
	ix.refreshView()
	v1 := current()
	if v1 == nil || !v1.warm || v1.gen != ix.gen.Load() {
		t.Fatalf("no warmed view of the current generation: %+v", v1)
	}
	v1.mu.RLock()
	cached := 0
	for _, d := range v1.docs {
		if d.k != nil {
			cached++
		}
	}
	v1.mu.RUnlock()
	if cached != 300 {
		t.Fatalf("warmed view caches %d documents, want 300", cached)
	}
	ix.refreshView()
	if current() != v1 {
		t.Fatal("a fresh view was replaced")
	}
	held, err := ix.acquire()
	must(t, err)
	if held != v1 {
		t.Fatal("acquire made a new view")
	}

	// Old: replaced once, then settled.
	ix.viewMu.Lock()
	v1.born = v1.born.Add(-2 * viewMaxAge)
	ix.viewMu.Unlock()
	ix.refreshView()
	v2 := current()
	if v2 == v1 || !v2.settled {
		t.Fatalf("an old view was not replaced by a settled one")
	}
	ix.viewMu.Lock()
	v2.born = v2.born.Add(-2 * viewMaxAge)
	ix.viewMu.Unlock()
	ix.refreshView()
	if current() != v2 {
		t.Fatal("a settled view was replaced without a write")
	}

	// A write: the worker installs a view of the new generation.
	tor := genTorrent(7)
	tor.Metadata["title"] = "zebrafish heart regeneration"
	src.put(tor)
	ix.Follow(900, "update_torrent", []model.InfoHash{tor.ID})
	sync1(t, ix)
	res, err := ix.Search(ctx, Query{Text: "zebrafish"})
	must(t, err)
	if res.Total != 1 || res.Hits[0].ID != tor.ID {
		t.Fatalf("after the write: %+v", res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v := current(); v != nil && v.warm && v.gen == ix.gen.Load() && v != v2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not install a warmed view after the write")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The view held since before still answers (its snapshot is older).
	var n int
	must(t, held.visit(ctx, bluge.NewMatchAllQuery(), false, func(uint64, float64, func() (model.InfoHash, bool)) { n++ }))
	if n != 300 {
		t.Fatalf("held view sees %d documents", n)
	}
	held.release()
}
