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
	"sync"
	"testing"
	"time"

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
	for _, name := range []string{"text", "filtered", "faceted", "browse"} {
		mk := queries[name]
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
