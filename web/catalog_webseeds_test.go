package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/model"
)

// withURLList returns torrent with a url-list of seeds.
func withURLList(t *testing.T, torrent string, seeds ...string) []byte {
	t.Helper()
	var top map[string]bencode.RawMessage
	must(t, bencode.DecodeBytes([]byte(torrent), &top))
	raw, err := bencode.EncodeBytes(seeds)
	must(t, err)
	top["url-list"] = raw
	out, err := bencode.EncodeBytes(top)
	must(t, err)
	return out
}

// downloadedSeeds downloads id's .torrent as b and returns its url-list,
// checking that the info hash and announce-list are as for any download.
func (e *catalogEnv) downloadedSeeds(b *browser, user string, id model.InfoHash) []string {
	e.t.Helper()
	dl := b.get("/t/" + id.String() + "/download")
	wantStatus(e.t, dl, http.StatusOK)
	checkPersonal(e.t, []byte(dl.body), id, e.user(user).Passkey, e.members)
	var top struct {
		URLList []string `bencode:"url-list"`
	}
	must(e.t, bencode.DecodeBytes([]byte(dl.body), &top))
	return top.URLList
}

// TestEditWebSeeds: the web seeds of an upload show in the edit form; an
// edit replaces them (form and API), bad lists get a message beside the
// field and change nothing, each change is in the history, and every
// downloaded .torrent (page, API, same info hash) carries the current list.
func TestEditWebSeeds(t *testing.T) {
	t.Parallel()
	e := newCatalogEnv(t, nil)
	u := e.mkUser("rosalind", model.RoleMember)
	b := e.browser()
	b.login("rosalind", "password-rosalind")
	upSeeds := []string{"https://mirror.example.org/photo51/", "ftp://ftp.example.org/photo51/"}
	id := uploaded(t, b.uploadForm(goodFields(), withURLList(t, tinyTorrent, upSeeds...)))
	tp := "/t/" + id.String()
	if got := e.downloadedSeeds(b, "rosalind", id); !slices.Equal(got, upSeeds) {
		t.Fatalf("upload's url-list %q, want %q", got, upSeeds)
	}

	// The edit form shows the upload's list.
	page := b.get(tp + "/edit")
	wantStatus(t, page, http.StatusOK)
	contains(t, page.body, `name="web_seeds"`, "https://mirror.example.org/photo51/\nftp://ftp.example.org/photo51/</textarea>")

	// An edit of another field keeps the web seeds and records no change of them.
	f := goodFields()
	f.Set("web_seeds", strings.Join(upSeeds, "\n"))
	f.Set("title", "Photo 51, re-annotated")
	wantStatus(t, b.post(tp+"/edit", tp+"/edit", f), http.StatusSeeOther)
	stored, err := e.st.Torrent(id)
	must(t, err)
	if _, ok := stored.Metadata[metaWebSeeds]; ok {
		t.Fatalf("an unchanged list was stored: %q", stored.Metadata)
	}

	// Bad lists: one message beside the field, nothing saved.
	long := "https://example.org/" + strings.Repeat("a", maxWebSeedBytes)
	many := make([]string, maxWebSeeds+1)
	for i := range many {
		many[i] = "https://m" + string(rune('a'+i)) + ".example.org/"
	}
	for _, c := range []struct{ list, want string }{
		{"https://ok.example.org/\nftp://ftp.example.org/x", "Web seed 2 (ftp://ftp.example.org/x) is not an http:// or https:// URL."},
		{"https://mirror.example.org/photo51/#part", "must not have a #fragment"},
		{"javascript:alert(1)", "is not an http:// or https:// URL"},
		{"https:///nohost", "has no host"},
		{"https://user:secret@example.org/", "must not contain a user name or password"},
		{long, "is longer than 1024 bytes"},
		{strings.Join(many, "\n"), "At most 20 web seeds; there are 21."},
	} {
		f.Set("web_seeds", c.list)
		f.Set("title", "should not be saved")
		r := b.post(tp+"/edit", tp+"/edit", f)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if got := catFieldError(t, r.body, "web_seeds"); !strings.Contains(got, c.want) {
			t.Fatalf("%.40q: error %q, want %q", c.list, got, c.want)
		}
		if !strings.Contains(r.body, "aria-invalid") {
			t.Fatal("the field is not marked invalid")
		}
	}
	if s, _ := e.st.Torrent(id); s.Metadata["title"] == "should not be saved" {
		t.Fatal("a rejected edit was saved")
	}

	// The form replaces the list (duplicates and blank lines dropped).
	f.Set("title", "Photo 51, re-annotated")
	f.Set("web_seeds", "https://new.example.org/photo51/\n\n  http://old.example.org/p51/ \nhttps://new.example.org/photo51/")
	wantStatus(t, b.post(tp+"/edit", tp+"/edit", f), http.StatusSeeOther)
	want := []string{"https://new.example.org/photo51/", "http://old.example.org/p51/"}
	if got := e.downloadedSeeds(b, "rosalind", id); !slices.Equal(got, want) {
		t.Fatalf("after the form edit: url-list %q, want %q", got, want)
	}
	page = b.get(tp)
	contains(t, page.body, `id="web-seeds"><li><code>https://new.example.org/photo51/</code></li><li><code>http://old.example.org/p51/</code></li></ul>`)

	// The API shows and replaces the list; [] clears it.
	tok := e.apiToken(u)
	status, out, raw := e.api(tok, http.MethodGet, "/api/v1/torrents/"+id.String(), "", nil)
	if md, _ := out["metadata"].(map[string]any); status != http.StatusOK || md == nil || md[metaWebSeeds] != nil {
		t.Fatalf("api get: %d %s", status, raw)
	}
	var d apiDataset
	must(t, json.Unmarshal(raw, &d))
	if !slices.Equal(d.WebSeeds, want) {
		t.Fatalf("api web_seeds %q", d.WebSeeds)
	}
	status, out, _ = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json",
		[]byte(`{"web_seeds": ["https://api.example.org/a/", "gopher://x.example.org/"]}`))
	if status != http.StatusUnprocessableEntity || !strings.Contains(apiFields(out)["web_seeds"], "Web seed 2 (gopher://x.example.org/)") {
		t.Fatalf("api bad seed: %d %v", status, out)
	}
	status, out, _ = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json",
		[]byte(`{"metadata": {"web_seeds": "https://api.example.org/a/"}}`))
	if status != http.StatusUnprocessableEntity || !strings.Contains(apiFields(out)["web_seeds"], "top-level array") {
		t.Fatalf("api seeds in metadata: %d %v", status, out)
	}
	status, _, raw = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json",
		[]byte(`{"web_seeds": ["https://api.example.org/a/"]}`))
	must(t, json.Unmarshal(raw, &d))
	if status != http.StatusOK || !slices.Equal(d.WebSeeds, []string{"https://api.example.org/a/"}) || d.Metadata["title"] != "Photo 51, re-annotated" {
		t.Fatalf("api edit: %d %s", status, raw)
	}
	if got := e.downloadedSeeds(b, "rosalind", id); !slices.Equal(got, d.WebSeeds) {
		t.Fatalf("after the API edit: url-list %q", got)
	}
	// A metadata-only PATCH leaves the web seeds alone.
	status, _, raw = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json",
		[]byte(`{"metadata": {"version": "2"}}`))
	must(t, json.Unmarshal(raw, &d))
	if status != http.StatusOK || !slices.Equal(d.WebSeeds, []string{"https://api.example.org/a/"}) {
		t.Fatalf("metadata-only edit: %d %s", status, raw)
	}
	status, _, raw = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", []byte(`{"web_seeds": []}`))
	must(t, json.Unmarshal(raw, &d))
	if status != http.StatusOK || len(d.WebSeeds) != 0 {
		t.Fatalf("clear: %d %s", status, raw)
	}
	if got := e.downloadedSeeds(b, "rosalind", id); len(got) != 0 {
		t.Fatalf("cleared list still in the .torrent: %q", got)
	}
	// The API download carries the current list too.
	wantSeeds := []string{"https://last.example.org/"}
	status, _, _ = e.api(tok, http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", []byte(`{"web_seeds": ["https://last.example.org/"]}`))
	wantStatus(t, resp{status: status}, http.StatusOK)
	status, _, body := e.api(tok, http.MethodGet, "/api/v1/torrents/"+id.String()+"/download", "", nil)
	var top struct {
		URLList []string `bencode:"url-list"`
	}
	must(t, bencode.DecodeBytes(body, &top))
	if status != http.StatusOK || !slices.Equal(top.URLList, wantSeeds) {
		t.Fatalf("api download: %d url-list %q", status, top.URLList)
	}
	checkPersonal(t, body, id, u.Passkey, e.members)

	// History: every change of the list, with before and after.
	hist := b.get(tp + "/history")
	wantStatus(t, hist, http.StatusOK)
	contains(t, hist.body, "<td>web_seeds</td>",
		"https://mirror.example.org/photo51/\nftp://ftp.example.org/photo51/",
		"https://new.example.org/photo51/\nhttp://old.example.org/p51/",
		"https://api.example.org/a/", "https://last.example.org/")
	if n := strings.Count(hist.body, "<td>web_seeds</td>"); n != 4 {
		t.Fatalf("%d web seed changes in the history, want 4 (form, API, clear, API)", n)
	}

	// A stranger cannot change them.
	e.mkUser("stranger", model.RoleMember)
	status, _, _ = e.api(e.apiToken(e.user("stranger")), http.MethodPatch, "/api/v1/torrents/"+id.String(), "application/json", []byte(`{"web_seeds": []}`))
	if status != http.StatusForbidden {
		t.Fatalf("stranger: %d", status)
	}
}
