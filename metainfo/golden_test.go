package metainfo

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/model"
	"github.com/zeebo/bencode"
)

// golden is what libtorrent 2.0.8 reports for a fixture (see testdata/gen.py).
type golden struct {
	V1          string  `json:"v1"`
	V2          string  `json:"v2"`
	Name        string  `json:"name"`
	PieceLength int64   `json:"piece_length"`
	TotalSize   int64   `json:"total_size"`
	Files       [][]any `json:"files"`
	Private     bool    `json:"private"`
}

func loadGolden(t *testing.T) map[string]golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g) < 9 {
		t.Fatalf("golden.json lists %d fixtures", len(g))
	}
	return g
}

// TestGoldenFixtures parses real torrents made by mktorrent,
// transmission-create and libtorrent and compares with what libtorrent
// itself reads from them.
func TestGoldenFixtures(t *testing.T) {
	for name, g := range loadGolden(t) {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			tor, err := Parse(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var want []model.File
			for _, f := range g.Files {
				p := f[0].(string)
				if !(len(g.Files) == 1 && p == g.Name) {
					p = strings.TrimPrefix(p, g.Name+"/")
				}
				want = append(want, model.File{Path: p, Length: int64(f[1].(float64))})
			}
			if tor.Name != g.Name || tor.PieceLength != g.PieceLength || tor.TotalSize != g.TotalSize || tor.Private != g.Private {
				t.Errorf("got name %q piece length %d total %d private %v; want %q %d %d %v",
					tor.Name, tor.PieceLength, tor.TotalSize, tor.Private, g.Name, g.PieceLength, g.TotalSize, g.Private)
			}
			if !equalFiles(tor.Files, want) {
				t.Errorf("files\n got %v\nwant %v", tor.Files, want)
			}
			wantOrig := g.V2
			if g.V1 != "" {
				wantOrig = g.V1
			}
			if tor.OriginalInfoHash() != wantOrig {
				t.Errorf("OriginalInfoHash %q, want %q", tor.OriginalInfoHash(), wantOrig)
			}
			if tor.OriginalInfoHashV1Hex() != g.V1 || tor.OriginalInfoHashV2Hex() != g.V2 {
				t.Errorf("hashes v1 %q v2 %q; libtorrent says %q %q",
					tor.OriginalInfoHashV1Hex(), tor.OriginalInfoHashV2Hex(), g.V1, g.V2)
			}
			checkSanitizeRoundTrip(t, tor, data)
		})
	}
}

// checkSanitizeRoundTrip sanitizes and personalizes tor and checks the
// results with Parse and with an independent decoder.
func checkSanitizeRoundTrip(t *testing.T, tor *Torrent, upload []byte) {
	t.Helper()
	const source = "seedbank.example"
	s, err := Sanitize(tor, source)
	if err != nil {
		t.Fatal(err)
	}
	// The stored file has no tracker, DHT or unknown keys.
	f, info := decodeFile(t, s.Metainfo)
	if f.Announce != "" || f.AnnounceList != nil || f.Nodes != nil || f.HTTPSeeds != nil {
		t.Errorf("sanitized torrent keeps announce %q / announce-list %v / nodes / httpseeds", f.Announce, f.AnnounceList)
	}
	if info.Private != 1 || info.Source != source || info.Name != tor.Name {
		t.Errorf("sanitized info: private %d source %q name %q", info.Private, info.Source, info.Name)
	}
	checkCanonical(t, s.Metainfo)
	checkCanonical(t, f.Info)
	// The hashes are those of the stored info dict.
	if tor.IsV1 && s.InfoHashV1 != sha1.Sum(f.Info) {
		t.Errorf("v1 hash is not the SHA-1 of the stored info")
	}
	if tor.IsV2 && s.InfoHashV2 != sha256.Sum256(f.Info) {
		t.Errorf("v2 hash is not the SHA-256 of the stored info")
	}
	wantID := model.InfoHash(s.InfoHashV2[:20])
	if tor.IsV1 {
		wantID = s.InfoHashV1
	}
	if s.ID != wantID || s.ID.IsZero() {
		t.Errorf("ID %s, want %s", s.ID, wantID)
	}
	// Piece data is unchanged.
	var origInfo decodedInfo
	var orig decodedFile
	if err := bencode.DecodeBytes(upload, &orig); err != nil {
		t.Fatal(err)
	}
	if err := bencode.DecodeBytes(orig.Info, &origInfo); err != nil {
		t.Fatal(err)
	}
	if info.Pieces != origInfo.Pieces {
		t.Errorf("pieces changed")
	}
	if tor.IsV2 && len(f.PieceLayers) == 0 && len(orig.PieceLayers) > 2 {
		t.Errorf("piece layers dropped")
	}

	// Re-parsing the stored file gives the same torrent, private, with the
	// new hashes; sanitizing again changes nothing.
	again, err := Parse(s.Metainfo, Limits{})
	if err != nil {
		t.Fatalf("sanitized torrent does not parse: %v", err)
	}
	if !again.Private || again.Source != source || !equalFiles(again.Files, tor.Files) ||
		again.OriginalInfoHashV1Hex() != s.InfoHashV1Hex() || again.OriginalInfoHashV2Hex() != s.InfoHashV2Hex() {
		t.Errorf("re-parsed: private %v source %q hashes %q %q; want %q %q",
			again.Private, again.Source, again.OriginalInfoHashV1Hex(), again.OriginalInfoHashV2Hex(), s.InfoHashV1Hex(), s.InfoHashV2Hex())
	}
	if !equalStrings(again.WebSeeds, tor.WebSeeds) || again.Comment != tor.Comment || again.CreationDate != tor.CreationDate {
		t.Errorf("re-parsed: web seeds %q comment %q date %d", again.WebSeeds, again.Comment, again.CreationDate)
	}
	s2, err := Sanitize(again, source)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.Metainfo, s.Metainfo) {
		t.Errorf("sanitizing twice changes the bytes")
	}

	// The download: announce URLs added, info untouched.
	urls := []string{"https://node1.example.org/0123456789abcdef0123456789abcdef/announce",
		"http://node2.example.net:8080/0123456789abcdef0123456789abcdef/announce",
		"udp://node3.example.com:6969/0123456789abcdef0123456789abcdef/announce"}
	dl, err := Personalize(s.Metainfo, urls, []string{"https://mirror.example.org/data/"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := decodeFile(t, dl)
	if d.Announce != urls[0] || len(d.AnnounceList) != 1 || !equalStrings(d.AnnounceList[0], urls) {
		t.Errorf("announce %q announce-list %q", d.Announce, d.AnnounceList)
	}
	if !bytes.Equal(d.Info, f.Info) {
		t.Errorf("Personalize changed the info dict")
	}
	checkCanonical(t, dl)
	p, err := Parse(dl, Limits{})
	if err != nil {
		t.Fatalf("personalised torrent does not parse: %v", err)
	}
	if p.OriginalInfoHashV1 != s.InfoHashV1 || p.OriginalInfoHashV2 != s.InfoHashV2 {
		t.Errorf("personalised torrent has another info hash")
	}
	if want := append(append([]string{}, tor.WebSeeds...), "https://mirror.example.org/data/"); !equalStrings(p.WebSeeds, want) {
		t.Errorf("web seeds %q, want %q", p.WebSeeds, want)
	}
}

// checkCanonical checks that b is canonical bencode by decoding it with
// zeebo/bencode and encoding it again (which sorts keys).
func checkCanonical(t *testing.T, b []byte) {
	t.Helper()
	var v any
	if err := bencode.DecodeBytes(b, &v); err != nil {
		t.Fatal(err)
	}
	again, err := bencode.EncodeBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Errorf("not canonical bencode")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGoldenFixtureDetails checks fields libtorrent does not report.
func TestGoldenFixtureDetails(t *testing.T) {
	read := func(name string) *Torrent {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return mustParse(t, data)
	}
	ps := read("mktorrent_private_source.torrent")
	if !ps.Private || ps.Source != "LAB-A" || ps.CreationDate != 0 {
		t.Errorf("mktorrent -p -s LAB-A -d: private %v source %q date %d", ps.Private, ps.Source, ps.CreationDate)
	}
	// A torrent that already is private with our source keeps its info
	// dict byte for byte, so its info hash does not change.
	s, err := Sanitize(ps, "LAB-A")
	if err != nil {
		t.Fatal(err)
	}
	if s.InfoHashV1 != ps.OriginalInfoHashV1 {
		t.Errorf("sanitizing with the same source changed the hash: %s -> %s",
			hex.EncodeToString(ps.OriginalInfoHashV1[:]), s.InfoHashV1Hex())
	}

	m := read("mktorrent_multi.torrent")
	if !equalStrings(m.WebSeeds, []string{"https://mirror.example.org/data/rnaseq"}) || m.CreatedBy != "mktorrent 1.1" {
		t.Errorf("mktorrent -w: web seeds %q created by %q", m.WebSeeds, m.CreatedBy)
	}
	if ms := read("mktorrent_single.torrent"); ms.Comment != "single file by mktorrent" || ms.CreationDate == 0 || ms.Private {
		t.Errorf("mktorrent -c: comment %q date %d private %v", ms.Comment, ms.CreationDate, ms.Private)
	}
	if tr := read("transmission_multi.torrent"); tr.Comment != "multi by transmission" || !strings.HasPrefix(tr.CreatedBy, "Transmission/") {
		t.Errorf("transmission-create -c: comment %q created by %q", tr.Comment, tr.CreatedBy)
	}
	h := read("libtorrent_hybrid_multi.torrent")
	if !h.IsV1 || !h.IsV2 || len(h.Files) != 4 {
		t.Errorf("hybrid: v1 %v v2 %v files %v (padding files must be left out)", h.IsV1, h.IsV2, h.Files)
	}
	hs, err := Sanitize(h, "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	if got := hs.SwarmHashes(); len(got) != 2 || got[0] != hs.InfoHashV1 || got[1] != model.InfoHash(hs.InfoHashV2[:20]) {
		t.Errorf("hybrid swarm hashes %v", got)
	}
	v2 := read("libtorrent_v2_multi.torrent")
	vs, err := Sanitize(v2, "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	if vs.IsV1 || vs.InfoHashV1Hex() != "" || vs.ID != model.InfoHash(vs.InfoHashV2[:20]) || len(vs.SwarmHashes()) != 1 {
		t.Errorf("v2-only: v1 %q ID %s swarm hashes %v", vs.InfoHashV1Hex(), vs.ID, vs.SwarmHashes())
	}
}

// TestSanitizedHashesAreStable pins the sanitized info hashes of the
// fixtures for source "seedbank". Every node and every future version must
// produce these same hashes, since they are cited as permanent identifiers:
// a change here breaks the federation and published citations.
func TestSanitizedHashesAreStable(t *testing.T) {
	want := map[string][2]string{
		"libtorrent_hybrid_multi.torrent":     {"1a4978b60a9a6aa5b1cf42e37779495f6e670e24", "a95f402e2468e7b2895a4aac37fb4f3d42574b7a70ebdf1b55c4c4c4d479a7cd"},
		"libtorrent_hybrid_single.torrent":    {"eae9cdf6366a1e5d19e653eb482f83c901394e46", "3ec6c37f8ea50d94d22779b4a572ff95b3c8a3f8a647f946a597678a68960c15"},
		"libtorrent_v2_multi.torrent":         {"", "63d0be3794ff7e564c8cf5c5ce34c3caebfaecf30b3dff1cdfed010a3f7c8e9c"},
		"libtorrent_v2_single.torrent":        {"", "e31b53a0e1ba6b6229b369c2f1bd434d6f69eae57d6f719593e0fc3d55b1f7ac"},
		"mktorrent_multi.torrent":             {"97ce49967d319ab89de21f3a6428243899ba2322", ""},
		"mktorrent_private_source.torrent":    {"97ce49967d319ab89de21f3a6428243899ba2322", ""},
		"mktorrent_single.torrent":            {"d870ec175097e12f2b9ba9e8cdbb7a038b28d572", ""},
		"transmission_multi.torrent":          {"c42ff72dad7f1c60d7b6efaff4d65b1be67428ee", ""},
		"transmission_single_private.torrent": {"d870ec175097e12f2b9ba9e8cdbb7a038b28d572", ""},
	}
	for name, w := range want {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Sanitize(mustParse(t, data), "seedbank")
		if err != nil {
			t.Fatal(err)
		}
		if got := [2]string{s.InfoHashV1Hex(), s.InfoHashV2Hex()}; got != w {
			t.Errorf("%s: sanitized hashes %q, want %q", name, got, w)
		}
	}
	// The same data uploaded with different tools and flags (public or
	// private, with or without another source, mktorrent or transmission)
	// gets one hash once sanitized.
	if want["mktorrent_multi.torrent"] != want["mktorrent_private_source.torrent"] ||
		want["mktorrent_single.torrent"] != want["transmission_single_private.torrent"] {
		t.Error("same data, different hashes")
	}
}
