package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
)

// Hand-made torrents for the rejection cases.
const (
	tinyTorrent       = "d4:infod6:lengthi10e4:name5:a.txt12:piece lengthi16384e6:pieces20:01234567890123456789ee"
	badPieceLength    = "d4:infod6:lengthi10e4:name5:a.txt12:piece lengthi3e6:pieces20:01234567890123456789ee"
	badPieces         = "d4:infod6:lengthi10e4:name5:a.txt12:piece lengthi16384e6:pieces19:0123456789012345678ee"
	unsafeName        = "d4:infod6:lengthi10e4:name2:..12:piece lengthi16384e6:pieces20:01234567890123456789ee"
	unsafeNestedPath  = "d4:infod5:filesld6:lengthi10e4:pathl2:..5:b.txteee4:name3:dir12:piece lengthi16384e6:pieces20:01234567890123456789ee"
	noInfo            = "d8:announce20:http://example.org/ae"
	otherTinyTorrentA = "d4:infod6:lengthi11e4:name5:b.txt12:piece lengthi16384e6:pieces20:01234567890123456789ee"
)

// apiToken gives u an API token, as the profile page does.
func (e *catalogEnv) apiToken(u model.User) string {
	e.t.Helper()
	tok := tokenPrefix + "test" + u.Username
	raw, _ := json.Marshal(apiToken{UserID: u.ID, Name: "test", Created: 1})
	must(e.t, e.st.PutRecord(context.Background(), kindAPIToken, auth.HashCode(tok), raw, false))
	return tok
}

// api sends a request with a bearer token.
func (e *catalogEnv) api(tok, method, path, ctype string, body []byte) (int, map[string]any, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	var out map[string]any
	_ = json.Unmarshal(buf.Bytes(), &out)
	return res.StatusCode, out, buf.Bytes()
}

func jsonUpload(t *testing.T, data []byte, fields url.Values) []byte {
	t.Helper()
	md := map[string]string{}
	for k := range fields {
		md[k] = fields.Get(k)
	}
	b, err := json.Marshal(apiUploadRequest{Torrent: base64.StdEncoding.EncodeToString(data), Metadata: md})
	must(t, err)
	return b
}

func apiFields(out map[string]any) map[string]string {
	f := map[string]string{}
	if m, ok := out["fields"].(map[string]any); ok {
		for k, v := range m {
			f[k], _ = v.(string)
		}
	}
	return f
}

// TestUploadRejections checks every way an upload's .torrent is refused,
// through the form and through the API, with the message beside the field.
func TestUploadRejections(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, func(c *Config) { c.MaxTorrentBytes = 4096 })
	u := e.mkUser("uploader", model.RoleMember)
	b := e.browser()
	b.login("uploader", "password-uploader")
	tok := e.apiToken(u)

	// The dataset the duplicate cases collide with.
	first := uploaded(t, b.uploadForm(goodFields(), []byte(tinyTorrent)))

	cases := []struct {
		name   string
		data   []byte
		status int
		want   string
	}{
		{"missing file", nil, 422, "Choose the .torrent file"},
		{"not bencode", []byte("this is a FASTQ file, not a torrent"), 422, "not a .torrent file"},
		{"no info dict", []byte(noInfo), 422, "no info dictionary"},
		{"bad piece length", []byte(badPieceLength), 422, "piece length is invalid"},
		{"bad pieces", []byte(badPieces), 422, "piece hashes are invalid"},
		{"unsafe name", []byte(unsafeName), 422, "names a file unsafely"},
		{"unsafe nested path", []byte(unsafeNestedPath), 422, "names a file unsafely"},
		{"over size limit", append([]byte(tinyTorrent), bytes.Repeat([]byte("x"), 5000)...), 422, "too large"},
		{"duplicate", []byte(tinyTorrent), 409, "already in the catalog"},
	}
	for _, c := range cases {
		t.Run("form/"+c.name, func(t *testing.T) {
			r := b.uploadForm(goodFields(), c.data)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, errText(r.body))
			}
			if got := catFieldError(t, r.body, "torrent"); !strings.Contains(got, c.want) {
				t.Fatalf("torrent error %q lacks %q", got, c.want)
			}
			if v := catFieldError(t, r.body, "title"); v != "" {
				t.Fatalf("title error %q", v)
			}
			if !strings.Contains(r.body, `value="Arabidopsis root RNA-seq under drought"`) {
				t.Fatal("the form lost the user's input")
			}
			if c.name == "duplicate" && !strings.Contains(r.body, `href="/t/`+first.String()+`"`) {
				t.Fatal("no link to the existing dataset")
			}
		})
		t.Run("api/"+c.name, func(t *testing.T) {
			data := c.data
			if data == nil {
				data = []byte{}
			}
			status, out, raw := e.api(tok, http.MethodPost, "/api/v1/torrents", "application/json", jsonUpload(t, data, goodFields()))
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, raw)
			}
			if got := apiFields(out)["torrent"]; !strings.Contains(got, c.want) {
				t.Fatalf("torrent error %q lacks %q", got, c.want)
			}
			if c.name == "duplicate" && out["existing"] != e.ts.URL+"/t/"+first.String() {
				t.Fatalf("existing %v", out["existing"])
			}
		})
	}
	if n := e.st.TorrentCount(); n != 1 {
		t.Fatalf("%d torrents stored", n)
	}
}

// metadataCases are one bad value per metadata field and the message.
var metadataCases = []struct{ field, value, want string }{
	{"title", "", "Give the dataset a title"},
	{"description", strings.Repeat("d", biometa.MaxDescription+1), "the limit is 60000"},
	{"category", "genomes", "Unknown category"},
	{"organism", strings.Repeat("o", 201), "longer than 200"},
	{"taxid", "human", "digits only"},
	{"accessions", "SRR9999001 NOTANID", "Not a recognised accession: NOTANID"},
	{"platform", "Illumina\x01", "not allowed"},
	{"formats", "FASTQ, docx", "Unknown format: docx"},
	{"license", "", "Choose a license"},
	{"license", "proprietary", "Unknown license"},
	{"doi", "doi:10.12/x", "A DOI looks like"},
	{"authors", "Rosalind Franklin | 0000-0002-1825-0096", "wrong check digit"},
	{"institution", strings.Repeat("i", 201), "longer than 200"},
	{"year", "1850", "four digits from 1900"},
	{"version", strings.Repeat("v", 65), "at most 64"},
	{"tags", "fine, <bad>", "may hold only"},
}

// TestMetadataErrors checks each metadata field's error, by form and API.
func TestMetadataErrors(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	u := e.mkUser("curator", model.RoleMember)
	b := e.browser()
	b.login("curator", "password-curator")
	tok := e.apiToken(u)
	for _, c := range metadataCases {
		fields := goodFields()
		fields.Set(c.field, c.value)
		t.Run("form/"+c.field+"/"+clipName(c.value), func(t *testing.T) {
			r := b.uploadForm(fields, []byte(tinyTorrent))
			wantStatus(t, r, http.StatusUnprocessableEntity)
			if got := catFieldError(t, r.body, c.field); !strings.Contains(got, c.want) {
				t.Fatalf("%s error %q lacks %q (all: %s)", c.field, got, c.want, errText(r.body))
			}
		})
		t.Run("api/"+c.field+"/"+clipName(c.value), func(t *testing.T) {
			status, out, raw := e.api(tok, http.MethodPost, "/api/v1/torrents", "application/json", jsonUpload(t, []byte(tinyTorrent), fields))
			if status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", status, raw)
			}
			f := apiFields(out)
			if !strings.Contains(f[c.field], c.want) || len(f) != 1 {
				t.Fatalf("fields %q, want %s: %q", f, c.field, c.want)
			}
		})
	}
	if n := e.st.TorrentCount(); n != 0 {
		t.Fatalf("%d torrents stored", n)
	}
}

func clipName(s string) string {
	if len(s) > 12 {
		s = s[:12]
	}
	return url.PathEscape(s)
}

// TestUploadDownloadGolden uploads a real mktorrent torrent through the
// form, downloads it and checks the personalised file.
func TestUploadDownloadGolden(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	e.mkUser("franklin", model.RoleMember)
	b := e.browser()
	b.login("franklin", "password-franklin")
	data := mktorrent(t, "photo51", map[string]string{
		"reads/sample1.fastq": strings.Repeat("@r1\nACGT\n+\nIIII\n", 3000),
		"reads/sample2.fastq": strings.Repeat("@r2\nTTGA\n+\nIIII\n", 2000),
		"README.md":           "# Photo 51\n",
	})
	id := uploaded(t, b.uploadForm(goodFields(), data))

	stored, err := e.st.Torrent(id)
	must(t, err)
	if stored.OriginalInfoHash == id.String() || stored.OriginalInfoHash == "" {
		t.Fatal("original info hash not kept apart from the sanitized one")
	}
	if len(stored.Files) != 3 || stored.Metadata["title"] != "Arabidopsis root RNA-seq under drought" || stored.Metadata["license"] != "CC-BY-4.0" {
		t.Fatalf("stored %+v", stored.Metadata)
	}

	page := b.get("/t/" + id.String() + "?ok=uploaded")
	wantStatus(t, page, http.StatusOK)
	contains(t, page.body, "seed that copy", "reads/", "sample1.fastq", "README.md",
		`href="https://www.ncbi.nlm.nih.gov/sra/SRR9999001"`, `href="https://doi.org/10.5281/zenodo.555001"`,
		`href="https://orcid.org/0000-0002-1825-0097"`, "<h1>Roots</h1>", "<em>Arabidopsis</em>", `id="seeders">-<`)
	if strings.Contains(page.body, "<script>alert") {
		t.Fatal("raw HTML in the description survived")
	}

	dl := b.get("/t/" + id.String() + "/download")
	wantStatus(t, dl, http.StatusOK)
	if cd := dl.header.Get("Content-Disposition"); !strings.Contains(cd, `filename="photo51.torrent"`) {
		t.Fatalf("Content-Disposition %q", cd)
	}
	if dl.header.Get("Content-Type") != "application/x-bittorrent" {
		t.Fatalf("type %q", dl.header.Get("Content-Type"))
	}
	checkPersonal(t, []byte(dl.body), id, e.user("franklin").Passkey, e.members)

	// Logged out: no download.
	anon := e.browser()
	if r := anon.get("/t/" + id.String() + "/download"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Fatalf("anonymous download: %d %s", r.status, r.location())
	}
}

// TestDownloadRatioRule: a member below the ratio after the grace period
// gets the ratio message instead of a torrent.
func TestDownloadRatioRule(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	u := e.mkUser("leech", model.RoleMember)
	b := e.browser()
	b.login("leech", "password-leech")
	id := uploaded(t, b.uploadForm(goodFields(), []byte(tinyTorrent)))
	ctx := context.Background()
	must(t, e.st.PutSetting(ctx, SettingRatioRequired, "1"))
	must(t, e.st.PutSetting(ctx, SettingRatioGracePeriod, "0s"))
	must(t, e.st.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{UserID: u.ID, Torrent: id, Downloaded: 10 << 30}}}))
	r := b.get("/t/" + id.String() + "/download")
	wantStatus(t, r, http.StatusForbidden)
	contains(t, r.body, "Your ratio is 0.00")
	tok := e.apiToken(u)
	status, out, _ := e.api(tok, http.MethodGet, "/api/v1/torrents/"+id.String()+"/download", "", nil)
	if status != http.StatusForbidden || !strings.Contains(out["error"].(string), "ratio") {
		t.Fatalf("api: %d %v", status, out)
	}
}

// TestEditHistoryComments: the uploader edits, a stranger may not, a
// moderator may; each edit is in the history; comments post and delete.
func TestEditHistoryComments(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	e.mkUser("owner", model.RoleMember)
	e.mkUser("other", model.RoleMember)
	e.mkUser("mod", model.RoleModerator)
	owner, other, mod := e.browser(), e.browser(), e.browser()
	owner.login("owner", "password-owner")
	other.login("other", "password-other")
	mod.login("mod", "password-mod")
	id := uploaded(t, owner.uploadForm(goodFields(), []byte(tinyTorrent)))
	tp := "/t/" + id.String()

	f := goodFields()
	f.Set("title", "Arabidopsis roots, second version")
	r := owner.post(tp+"/edit", tp+"/edit", f)
	wantStatus(t, r, http.StatusSeeOther)
	f.Set("year", "12")
	r = owner.post(tp+"/edit", tp+"/edit", f)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if got := catFieldError(t, r.body, "year"); !strings.Contains(got, "four digits") {
		t.Fatalf("year error %q", got)
	}
	if r := other.get(tp + "/edit"); r.status != http.StatusForbidden {
		t.Fatalf("stranger edit page: %d", r.status)
	}
	f.Set("year", "2023")
	f.Set("tags", "drought, roots, curated")
	wantStatus(t, mod.post(tp+"/edit", tp+"/edit", f), http.StatusSeeOther)

	hist := owner.get(tp + "/history")
	wantStatus(t, hist, http.StatusOK)
	contains(t, hist.body, "Arabidopsis roots, second version", "Arabidopsis root RNA-seq under drought", "curated", `"/user/mod">mod<`, `"/user/owner">owner<`)
	if strings.Index(hist.body, `"/user/mod">mod<`) > strings.Index(hist.body, `"/user/owner">owner<`) {
		t.Fatal("history not newest first")
	}

	wantStatus(t, other.post(tp, tp+"/comments", url.Values{"body": {"Which library prep kit?"}}), http.StatusSeeOther)
	page := owner.get(tp)
	contains(t, page.body, "Which library prep kit?")
	key := regexp1(`name="key" value="([^"]+)"`, page.body)
	if key != "" {
		t.Fatal("the owner sees a delete button on someone else's comment")
	}
	key = regexp1(`name="key" value="([^"]+)"`, mod.get(tp).body)
	if key == "" {
		t.Fatal("moderator has no delete button")
	}
	wantStatus(t, mod.post(tp, tp+"/comments/delete", url.Values{"key": {key}}), http.StatusSeeOther)
	if strings.Contains(owner.get(tp).body, "Which library prep kit?") {
		t.Fatal("comment not deleted")
	}

	// Only moderators delete datasets.
	if r := owner.post(tp, tp+"/delete", nil); r.status != http.StatusForbidden {
		t.Fatalf("owner delete: %d", r.status)
	}
	r = mod.post(tp, tp+"/delete", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r := owner.get(tp); r.status != http.StatusNotFound {
		t.Fatalf("deleted dataset: %d", r.status)
	}
}

// TestCitations checks the BibTeX, RIS and CSL-JSON exports.
func TestCitations(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	e.mkUser("cite", model.RoleMember)
	b := e.browser()
	b.login("cite", "password-cite")
	id := uploaded(t, b.uploadForm(goodFields(), []byte(tinyTorrent)))
	tp := "/t/" + id.String()
	bib := b.get(tp + "/cite.bib")
	wantStatus(t, bib, http.StatusOK)
	contains(t, bib.body, "@misc{franklin2024_"+id.String()[:8], "author = {Franklin, Rosalind and Watson, James}",
		"title = {{Arabidopsis root RNA-seq under drought}}", "publisher = {John Innes Centre}", "year = {2024}",
		"doi = {10.5281/zenodo.555001}", e.ts.URL+tp)
	ris := b.get(tp + "/cite.ris")
	contains(t, ris.body, "TY  - DATA\r\n", "AU  - Franklin, Rosalind\r\n", "PY  - 2024\r\n", "DO  - 10.5281/zenodo.555001\r\n", "ER  - \r\n")
	var csl []map[string]any
	must(t, json.Unmarshal([]byte(b.get(tp+"/cite.json").body), &csl))
	if len(csl) != 1 || csl[0]["type"] != "dataset" || csl[0]["DOI"] != "10.5281/zenodo.555001" || csl[0]["publisher"] != "John Innes Centre" {
		t.Fatalf("csl %v", csl)
	}
	page := b.get(tp)
	contains(t, page.body, "Resource type</dt><dd>Dataset", "10.5281/zenodo.555001</code> (DOI)")
}

func regexp1(pat, s string) string {
	m := regexpMust(pat).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func regexpMust(pat string) *regexp.Regexp { return regexp.MustCompile(pat) }
