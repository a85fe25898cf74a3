package web

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/metainfo"
	"github.com/seedbank/seedbank/model"
)

// tinyTorrentN is a valid single-file torrent whose hash depends on n.
func tinyTorrentN(n int) []byte {
	name := fmt.Sprintf("file%05d.txt", n)
	return []byte(fmt.Sprintf("d4:infod6:lengthi%de4:name%d:%s12:piece lengthi16384e6:pieces20:01234567890123456789ee", 100+n, len(name), name))
}

// putDataset uploads a small dataset with fields changed by mod through
// the form.
func putDataset(t *testing.T, b *browser, n int, mod func(url.Values)) model.InfoHash {
	t.Helper()
	f := goodFields()
	f.Set("accessions", fmt.Sprintf("SRR%07d PRJNA555001", 8000000+n))
	f.Set("doi", fmt.Sprintf("10.5281/zenodo.%d", 900000+n))
	if mod != nil {
		mod(f)
	}
	return uploaded(t, b.uploadForm(f, tinyTorrentN(n)))
}

// TestBrowseSearch checks the browse page over a small catalog: text,
// filters with facet counts, sorting, paging, and identifiers typed into
// the box going straight to their dataset.
func TestBrowseSearch(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	e.mkUser("lab", model.RoleMember)
	b := e.browser()
	b.login("lab", "password-lab")
	var ids []model.InfoHash
	for i := range 30 {
		ids = append(ids, putDataset(t, b, i, func(f url.Values) {
			f.Set("title", fmt.Sprintf("Dataset number %d", i))
			if i%3 == 0 {
				f.Set("organism", "Mus musculus")
				f.Set("category", "variants")
				f.Set("formats", "VCF")
				f.Set("title", fmt.Sprintf("Mouse variants %d", i))
			}
		}))
	}
	e.syncIndex()

	r := b.get("/browse")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "30 datasets", `id="facet-category"`, "Variants</a> <span class=\"count\">10</span>", "Expression</a> <span class=\"count\">20</span>", `rel="next"`)
	if strings.Index(r.body, "Dataset number 29") > strings.Index(r.body, "Dataset number 28") {
		t.Fatal("not newest first")
	}
	r = b.get("/browse?page=2")
	contains(t, r.body, "Dataset number 1<", `rel="prev"`)

	r = b.get("/browse?q=mouse+variants")
	contains(t, r.body, "10 datasets", "Mouse variants 27")
	r = b.get("/browse?" + url.Values{"organism": {"Mus musculus"}, "format": {"VCF"}}.Encode())
	contains(t, r.body, "10 datasets", `aria-label="Remove filter Organism"`)
	if strings.Contains(r.body, "Dataset number") {
		t.Fatal("filter let other datasets through")
	}

	// An accession, a DOI or an info hash in the box goes to the dataset.
	for q, want := range map[string]model.InfoHash{
		"srr8000007":                            ids[7],
		"https://doi.org/10.5281/zenodo.900012": ids[12],
		ids[3].String():                         ids[3],
	} {
		r = b.get("/browse?q=" + url.QueryEscape(q))
		if r.status != http.StatusSeeOther || r.location() != "/t/"+want.String() {
			t.Fatalf("%s: %d to %q, want /t/%s", q, r.status, r.location(), want)
		}
	}
	// A shared accession shows the results instead.
	r = b.get("/browse?q=PRJNA555001")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "30 datasets")
	if r := b.get("/browse?sort=bogus"); r.status != http.StatusBadRequest {
		t.Fatalf("bad sort: %d", r.status)
	}

	// An edit and a delete show up in search.
	tp := "/t/" + ids[0].String()
	f := goodFields()
	f.Set("title", "Renamed zebrafish atlas")
	f.Set("accessions", "SRR8000000")
	wantStatus(t, b.post(tp+"/edit", tp+"/edit", f), http.StatusSeeOther)
	must(t, e.st.DeleteTorrent(context.Background(), ids[1]))
	e.syncIndex()
	contains(t, b.get("/browse?q=zebrafish").body, "1 datasets", "Renamed zebrafish atlas")
	contains(t, b.get("/browse").body, "29 datasets")

	// Logged out visitors are sent to log in (the catalog is not public).
	if r := e.browser().get("/browse"); r.status != http.StatusSeeOther {
		t.Fatalf("anonymous browse: %d", r.status)
	}
}

// TestRSSFeed: a saved-search feed lists a new upload once the index has
// caught up, and its enclosure downloads the personalised torrent with
// nothing but the feed token.
func TestRSSFeed(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	e.mkUser("seedbox", model.RoleMember)
	b := e.browser()
	b.login("seedbox", "password-seedbox")
	wantStatus(t, b.post("/me", "/me/rss", nil), http.StatusSeeOther)
	tok := e.user("seedbox").Extra[extraRSS]
	if !strings.HasPrefix(tok, "rss_") {
		t.Fatalf("token %q", tok)
	}
	contains(t, b.get("/me").body, e.ts.URL+"/rss/"+tok+"/new")

	feedURL := e.ts.URL + "/rss/" + tok + "/search?" + url.Values{"q": {"zebrafish"}, "category": {"imaging"}}.Encode()
	anon := newBrowser(t, "")
	items := func() []rssItem {
		r := anon.get(feedURL)
		wantStatus(t, r, http.StatusOK)
		var f rssFeed
		must(t, xml.Unmarshal([]byte(r.body), &f))
		return f.Channel.Items
	}
	putDataset(t, b, 1, nil)
	e.syncIndex()
	if n := len(items()); n != 0 {
		t.Fatalf("%d items before the upload", n)
	}
	id := putDataset(t, b, 2, func(f url.Values) {
		f.Set("title", "Zebrafish fin light-sheet imaging")
		f.Set("category", "imaging")
		f.Set("formats", "TIFF")
	})
	e.syncIndex()
	got := items()
	if len(got) != 1 || got[0].GUID.Value != id.String() || got[0].Enclosure.Type != "application/x-bittorrent" {
		t.Fatalf("items %+v", got)
	}
	enc := got[0].Enclosure.URL
	if enc != e.ts.URL+"/rss/"+tok+"/download/"+id.String() {
		t.Fatalf("enclosure %q", enc)
	}
	dl := anon.get(enc)
	wantStatus(t, dl, http.StatusOK)
	checkPersonal(t, []byte(dl.body), id, e.user("seedbox").Passkey, e.members)

	// The newest feed, and a replaced token stops working.
	if r := anon.get(e.ts.URL + "/rss/" + tok + "/new"); !strings.Contains(r.body, "Zebrafish fin") {
		t.Fatal("new feed lacks the upload")
	}
	wantStatus(t, b.post("/me", "/me/rss", nil), http.StatusSeeOther)
	if r := anon.get(enc); r.status != http.StatusForbidden {
		t.Fatalf("old token: %d", r.status)
	}
}

// TestCatalogAPI covers search, dataset, download, multipart upload and
// edit through the JSON API.
func TestCatalogAPI(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, func(c *Config) { c.Swarm = fakeSwarm{} })
	u := e.mkUser("pipeline", model.RoleMember)
	other := e.mkUser("stranger", model.RoleMember)
	tok, otherTok := e.apiToken(u), e.apiToken(other)

	if status, _, _ := e.api("", http.MethodGet, "/api/v1/search", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}
	// Multipart upload.
	data := mktorrent(t, "proteome", map[string]string{"run1.mzML": strings.Repeat("<spectrum/>", 5000)})
	f := goodFields()
	f.Set("category", "proteomics")
	f.Set("formats", "mzML")
	f.Set("accessions", "PXD000001")
	ct, body := multipartBody(t, f, data)
	status, out, raw := e.api(tok, http.MethodPost, "/api/v1/torrents", ct, body.Bytes())
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, raw)
	}
	ds := out["dataset"].(map[string]any)
	id, err := model.ParseInfoHash(ds["id"].(string))
	must(t, err)
	if !strings.Contains(out["message"].(string), "seed that copy") {
		t.Fatalf("message %v", out["message"])
	}
	e.syncIndex()

	status, out, _ = e.api(tok, http.MethodGet, "/api/v1/search?q=PXD000001", "", nil)
	if status != 200 || out["total"].(float64) != 1 || out["identifier_matches"].([]any)[0] != id.String() {
		t.Fatalf("search: %d %v", status, out)
	}
	status, out, _ = e.api(tok, http.MethodGet, "/api/v1/search?category=proteomics&sort=size", "", nil)
	if status != 200 || out["total"].(float64) != 1 {
		t.Fatalf("filtered search: %d %v", status, out)
	}
	status, out, _ = e.api(tok, http.MethodGet, "/api/v1/torrents/"+id.String(), "", nil)
	if status != 200 || out["name"] != "proteome" || out["seeders"] != 3.0 || out["leechers"] != 1.0 || out["snatches"] != 7.0 || out["metadata"].(map[string]any)["category"] != "proteomics" {
		t.Fatalf("dataset: %d %v", status, out)
	}
	status, _, raw = e.api(tok, http.MethodGet, "/api/v1/torrents/"+id.String()+"/download", "", nil)
	if status != 200 {
		t.Fatalf("download %d", status)
	}
	checkPersonal(t, raw, id, u.Passkey, e.members)
	if _, err := metainfo.Parse(raw, metainfo.Limits{}); err != nil {
		t.Fatal(err)
	}
	// The page shows the live numbers.
	b := e.browser()
	b.login("pipeline", "password-pipeline")
	contains(t, b.get("/t/"+id.String()).body, `id="seeders">3<`, `id="leechers">1<`, `id="snatches">7<`)

	// Edit: the uploader may, a stranger may not; errors name the field.
	patch := []byte(`{"metadata": {"title": "Human plasma proteome", "year": "2025"}}`)
	if status, _, _ := e.api(otherTok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", patch); status != http.StatusForbidden {
		t.Fatalf("stranger edit: %d", status)
	}
	status, out, raw = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", patch)
	if status != 200 || out["metadata"].(map[string]any)["title"] != "Human plasma proteome" || out["metadata"].(map[string]any)["formats"] != "mzML" {
		t.Fatalf("edit: %d %s", status, raw)
	}
	status, out, _ = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", []byte(`{"metadata": {"doi": "nope"}}`))
	if status != http.StatusUnprocessableEntity || !strings.Contains(apiFields(out)["doi"], "A DOI looks like") {
		t.Fatalf("bad edit: %d %v", status, out)
	}
	status, out, _ = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", []byte(`{"metadata": {"colour": "blue"}}`))
	if status != http.StatusUnprocessableEntity || apiFields(out)["colour"] == "" {
		t.Fatalf("unknown field: %d %v", status, out)
	}
	if status, _, _ := e.api(tok, http.MethodGet, "/api/v1/torrents/"+strings.Repeat("ab", 20), "", nil); status != http.StatusNotFound {
		t.Fatalf("missing dataset: %d", status)
	}
}

// fakeSwarm is a tracker that knows every torrent: 3 seeders, 1 leecher, 7 snatches.
type fakeSwarm struct{}

func (fakeSwarm) SwarmStats(model.InfoHash) (int, int, int, bool) { return 3, 1, 7, true }

// FuzzMetadataForm feeds arbitrary form values through the upload
// handler's metadata path (form parsing, then validation) and checks that
// whatever it accepts fits the store's limits and reads back the same.
func FuzzMetadataForm(f *testing.F) {
	g := goodFields()
	f.Add(g.Get("title"), g.Get("description"), g.Get("accessions"), g.Get("authors"), g.Get("formats"), g.Get("tags"), g.Get("doi"), g.Get("year"))
	f.Add("t", "", "GCF_000001405.40 1abc", "A (0000-0002-1825-0097)", "pdb", "x", "doi:10.1000/x", "2000")
	f.Fuzz(func(t *testing.T, title, desc, accs, authors, formats, tags, doi, year string) {
		v := goodFields()
		v.Set("title", title)
		v.Set("description", desc)
		v.Set("accessions", accs)
		v.Set("authors", authors)
		v.Set("formats", formats)
		v.Set("tags", tags)
		v.Set("doi", doi)
		v.Set("year", year)
		req, _ := http.NewRequest(http.MethodPost, "/upload", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		fm := newForm(req, catalogFields...)
		md, errs := validateMetadata(fm.Values, 2030)
		if errs != nil {
			for k := range errs {
				if !isCatalogField(k) {
					t.Fatalf("error on unknown field %q", k)
				}
			}
			return
		}
		m := md.Map()
		if len(m) > 256 {
			t.Fatalf("%d fields", len(m))
		}
		for k, val := range m {
			if k == "" || len(k) > 64 || len(val) > 64<<10 {
				t.Fatalf("field %q: %d bytes", k, len(val))
			}
		}
		again, errs := validateMetadata(md.Form(), 2030)
		if errs != nil || fmt.Sprint(again.Map()) != fmt.Sprint(m) {
			t.Fatalf("stored metadata does not validate the same: %v", errs)
		}
	})
}
