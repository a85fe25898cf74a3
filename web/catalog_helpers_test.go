package web

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/metainfo"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
	"github.com/seedbank/seedbank/search"
)

// catalogEnv is a site over a real one-node store whose applied changes
// feed a real search index, as the node wires them, with two cluster
// members recorded.
type catalogEnv struct {
	*env
	ix      *search.Index
	members []model.Member
}

func newCatalogEnv(t *testing.T, mod func(*Config)) *catalogEnv {
	t.Helper()
	// Wired as the node does: the index opens first, follows every applied
	// change, and gets its source once the store is open.
	ix, err := search.Open(filepath.Join(t.TempDir(), "search"), nil, search.Options{NotFound: raftstore.ErrNotFound, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	cfg := raftstoretest.Config("n1", t.TempDir())
	cfg.OnApply = func(c raftstore.Change) { ix.Follow(c.Index, c.Type, c.Torrents) }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := raftstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	must(t, raftstoretest.WaitLeader(ctx, st))
	ix.SetSource(st)
	members := []model.Member{
		{NodeID: "n1", SiteURL: "http://127.0.0.1:8080", AnnounceURL: "http://127.0.0.1:6969", UDPAnnounceURL: "udp://127.0.0.1:6969", ClusterAddr: "127.0.0.1:7000"},
		{NodeID: "n2", SiteURL: "http://127.0.0.2:8080", AnnounceURL: "https://tracker2.example.org", ClusterAddr: "127.0.0.2:7000"},
	}
	for _, m := range members {
		must(t, st.PutMember(ctx, m))
	}
	e := newEnvOn(t, st, func(c *Config) {
		c.Search = ix
		if mod != nil {
			mod(c)
		}
	})
	return &catalogEnv{env: e, ix: ix, members: members}
}

// syncIndex waits until the index holds every change applied so far.
func (e *catalogEnv) syncIndex() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(e.t, e.ix.Sync(ctx))
}

// mktorrent makes a real .torrent with mktorrent over a folder of files
// (name -> content). The test fails when mktorrent is missing.
func mktorrent(t *testing.T, name string, files map[string]string) []byte {
	t.Helper()
	bin, err := exec.LookPath("mktorrent")
	if err != nil {
		t.Fatal("mktorrent is not installed (apt-get install mktorrent): this test needs a real .torrent")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, name)
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(content), 0o644))
	}
	out := filepath.Join(dir, name+".torrent")
	cmd := exec.Command(bin, "-a", "http://uploader.example.org/announce", "-l", "15", "-c", "made by the test", "-o", out, root)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	must(t, err)
	return data
}

// multipartBody builds a multipart form with fields and, when data is not
// nil, the torrent file.
func multipartBody(t *testing.T, fields url.Values, data []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			must(t, mw.WriteField(k, v))
		}
	}
	if data != nil {
		fw, err := mw.CreateFormFile("torrent", "upload.torrent")
		must(t, err)
		_, _ = fw.Write(data)
	}
	must(t, mw.Close())
	return mw.FormDataContentType(), &buf
}

// uploadForm posts the upload form with the page's CSRF token.
func (b *browser) uploadForm(fields url.Values, data []byte) resp {
	b.t.Helper()
	f := url.Values{}
	for k, v := range fields {
		f[k] = v
	}
	f.Set("csrf", b.token("/upload"))
	ct, body := multipartBody(b.t, f, data)
	req, _ := http.NewRequest(http.MethodPost, b.base+"/upload", body)
	req.Header.Set("Content-Type", ct)
	return b.do(req)
}

// goodFields are valid metadata form values.
func goodFields() url.Values {
	return url.Values{
		"title": {"Arabidopsis root RNA-seq under drought"}, "description": {"# Roots\n\nReads from *Arabidopsis* roots. <script>alert(1)</script>"},
		"category": {"expression"}, "organism": {"Arabidopsis thaliana"}, "taxid": {"3702"},
		"accessions": {"SRR9999001\nPRJNA555001"}, "platform": {"Illumina NovaSeq 6000"}, "formats": {"FASTQ"},
		"license": {"CC-BY-4.0"}, "doi": {"10.5281/zenodo.555001"}, "authors": {"Rosalind Franklin | 0000-0002-1825-0097\nJames Watson"},
		"institution": {"John Innes Centre"}, "year": {"2024"}, "version": {"1"}, "tags": {"drought, roots"},
	}
}

var datasetPathRe = regexp.MustCompile(`^/t/([0-9a-f]{40})`)

// uploaded returns the dataset hash an upload redirected to.
func uploaded(t *testing.T, r resp) model.InfoHash {
	t.Helper()
	wantStatus(t, r, http.StatusSeeOther)
	m := datasetPathRe.FindStringSubmatch(r.location())
	if m == nil {
		t.Fatalf("upload redirected to %q", r.location())
	}
	h, err := model.ParseInfoHash(m[1])
	must(t, err)
	return h
}

// catFieldError returns the message beside a form field (input, select or
// textarea), checking the control references it.
func catFieldError(t *testing.T, body, field string) string {
	t.Helper()
	re := regexp.MustCompile(`<p class="error" id="f-` + regexp.QuoteMeta(field) + `-err">([^<]*)</p>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	ctl := regexp.MustCompile(`<(input|select|textarea) id="f-` + regexp.QuoteMeta(field) + `"[^>]*aria-describedby="[^"]*f-` + regexp.QuoteMeta(field) + `-err"`)
	if !ctl.MatchString(body) {
		t.Errorf("field %s has an error but its control does not reference it", field)
	}
	return html.UnescapeString(m[1])
}

// checkPersonal parses a downloaded .torrent and checks it is the stored
// dataset personalised for passkey: same info hash, announce-list naming
// every member with the passkey.
func checkPersonal(t *testing.T, data []byte, id model.InfoHash, passkey string, members []model.Member) {
	t.Helper()
	tor, err := metainfo.Parse(data, metainfo.Limits{})
	if err != nil {
		t.Fatalf("downloaded torrent does not parse: %v", err)
	}
	if model.InfoHash(tor.OriginalInfoHashV1) != id {
		t.Fatalf("downloaded info hash %x, want %s", tor.OriginalInfoHashV1, id)
	}
	if !tor.Private || tor.Source != "seedbank" {
		t.Fatalf("private %v source %q", tor.Private, tor.Source)
	}
	var top struct {
		Announce     string     `bencode:"announce"`
		AnnounceList [][]string `bencode:"announce-list"`
	}
	must(t, bencode.DecodeBytes(data, &top))
	if len(top.AnnounceList) != 1 {
		t.Fatalf("announce-list has %d tiers, want one: %q", len(top.AnnounceList), top.AnnounceList)
	}
	tier := top.AnnounceList[0]
	var want []string
	for _, m := range members {
		want = append(want, m.AnnounceURL+"/"+passkey+"/announce")
	}
	for _, m := range members {
		if m.UDPAnnounceURL != "" {
			want = append(want, m.UDPAnnounceURL+"/"+passkey+"/announce")
		}
	}
	if strings.Join(tier, " ") != strings.Join(want, " ") || top.Announce != want[0] {
		t.Fatalf("announce %q, announce-list %q, want %q", top.Announce, tier, want)
	}
	if strings.Contains(string(data), "uploader.example.org") {
		t.Error("the uploader's announce URL survived")
	}
}
