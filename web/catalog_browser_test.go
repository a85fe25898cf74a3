package web

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/model"
)

// TestBrowserCatalogFlow drives Chromium through the catalog: log in,
// upload a real mktorrent torrent with the form (a bad field first), find
// the dataset by typing its accession into the search box, download the
// personalised .torrent, add a web seed on the edit form and find it in the
// next download.
func TestBrowserCatalogFlow(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	shots := screenshotDir(t)
	e := newCatalogEnv(t, nil)
	e.mkUser("mendel", model.RoleMember)
	data := mktorrent(t, "pea-crosses", map[string]string{
		"F1/round_yellow.fastq": strings.Repeat("@p\nACGTACGT\n+\nIIIIIIII\n", 4000),
		"F2/wrinkled.vcf":       "##fileformat=VCFv4.2\n",
	})
	torrentPath := filepath.Join(t.TempDir(), "pea-crosses.torrent")
	must(t, os.WriteFile(torrentPath, data, 0o644))

	c := newChrome(t, chromium, e.ts.URL, shots)
	ctx, base := c.ctx, c.base
	do, text, location, shot := c.do, c.text, c.location, c.shot
	submit := func(what, sel string, want int) {
		t.Helper()
		res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Status != int64(want) {
			t.Fatalf("%s: status %d at %s", what, res.Status, res.URL)
		}
	}
	fill := func(id, v string) chromedp.Action[chromedp.Void] { return chromedp.SendKeys(chromedp.ID(id), v) }

	do("login page", chromedp.Navigate(base+"/login"))
	do("fill login", fill("f-username", "mendel"), fill("f-password", "password-mendel"))
	submit("login", `main form[action="/login"] button[type=submit]`, http.StatusOK)

	// Upload with a bad ORCID iD first: the error shows beside the field and
	// the input is kept; then fix it.
	do("upload page", chromedp.Navigate(base+"/upload"))
	do("fill upload",
		chromedp.SetUploadFiles(chromedp.ID("f-torrent"), []string{torrentPath}),
		fill("f-title", "Pea crosses: seed shape and colour"),
		chromedp.SetValue(chromedp.ID("f-category"), "variants"),
		fill("f-organism", "Pisum sativum"), fill("f-taxid", "3888"),
		fill("f-accessions", "ERR4242424\nPRJEB4242"),
		fill("f-formats", "FASTQ, VCF"),
		chromedp.SetValue(chromedp.ID("f-license"), "CC0-1.0"),
		fill("f-authors", "Gregor Mendel | 0000-0002-1825-0096"),
		fill("f-description", "Crosses of **round** and *wrinkled* peas."),
	)
	shot("upload")
	submit("upload with a bad ORCID", `main form[action="/upload"] button[type=submit]`, http.StatusUnprocessableEntity)
	if got := text("#f-authors-err"); !strings.Contains(got, "wrong check digit") {
		t.Fatalf("authors error %q", got)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("f-title"))); v != "Pea crosses: seed shape and colour" {
		t.Fatalf("title not kept: %q", v)
	}
	shot("upload-error")
	do("fix upload",
		chromedp.SetValue(chromedp.ID("f-authors"), "Gregor Mendel | 0000-0002-1825-0097"),
		chromedp.SetUploadFiles(chromedp.ID("f-torrent"), []string{torrentPath}),
	)
	submit("upload", `main form[action="/upload"] button[type=submit]`, http.StatusOK)
	m := datasetPathRe.FindStringSubmatch(location())
	if m == nil {
		t.Fatalf("after upload at %s", location())
	}
	id, err := model.ParseInfoHash(m[1])
	must(t, err)
	if n := text("main .notice"); !strings.Contains(n, "seed that copy") {
		t.Fatalf("notice %q", n)
	}
	if acc := text("#accessions"); !strings.Contains(acc, "ERR4242424") {
		t.Fatalf("accessions %q", acc)
	}
	shot("dataset")

	// Find it by accession from the search box.
	e.syncIndex()
	do("browse", chromedp.Navigate(base+"/browse"))
	do("type accession", fill("f-q", "err4242424"))
	submit("search", `form[action="/browse"] button[type=submit]`, http.StatusOK)
	if location() != "/t/"+id.String() {
		t.Fatalf("accession search landed at %s", location())
	}

	// Download it with the browser's session.
	download := func() []byte {
		t.Helper()
		b64, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.getElementById("download").href).then(r => {
		if (!r.ok) throw new Error("status " + r.status);
		return r.arrayBuffer();
	}).then(b => { let s = ""; for (const c of new Uint8Array(b)) s += String.fromCharCode(c); return btoa(s); })`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		must(t, err)
		checkPersonal(t, raw, id, e.user("mendel").Passkey, e.members)
		return raw
	}
	download()

	// Add a web seed on the edit form (a bad one first), then download again.
	do("edit page", chromedp.Navigate(base+"/t/"+id.String()+"/edit"))
	do("bad web seed", fill("f-web_seeds", "ftp://mirror.example.org/pea-crosses/"))
	submit("save a bad web seed", `main form[action$="/edit"] button[type=submit]`, http.StatusUnprocessableEntity)
	if got := text("#f-web_seeds-err"); !strings.Contains(got, "not an http:// or https:// URL") {
		t.Fatalf("web seed error %q", got)
	}
	shot("edit-web-seed-error")
	do("good web seed", chromedp.SetValue(chromedp.ID("f-web_seeds"), "https://mirror.example.org/pea-crosses/"))
	submit("save the web seed", `main form[action$="/edit"] button[type=submit]`, http.StatusOK)
	var top struct {
		URLList []string `bencode:"url-list"`
	}
	must(t, bencode.DecodeBytes(download(), &top))
	if len(top.URLList) != 1 || top.URLList[0] != "https://mirror.example.org/pea-crosses/" {
		t.Fatalf("url-list after the edit: %q", top.URLList)
	}

	do("browse list", chromedp.Navigate(base+"/browse?category=variants"))
	if got := text("#results"); !strings.Contains(got, "Pea crosses") {
		t.Fatalf("results %q", got)
	}
	shot("browse")
	do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/t/"+id.String()))
	shot("dataset-phone")
}
