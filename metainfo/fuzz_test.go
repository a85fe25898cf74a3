package metainfo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seedbank/seedbank/model"
	"github.com/zeebo/bencode"
)

var sentinels = []error{ErrTooLarge, ErrNotBencode, ErrNoInfo, ErrBadPieceLength, ErrBadPieces,
	ErrBadPath, ErrBadLength, ErrNoFiles, ErrBadVersion, ErrHybridMismatch, ErrBadWebSeed, ErrBadSource, ErrBadAnnounce}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// addSeeds adds the fixtures and built torrents to the fuzz corpus.
func addSeeds(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.torrent")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	small := []tfile{{"a", randData(40_000, 1)}, {"d/b", randData(20_000, 2)}, {"d/c", nil}}
	for _, o := range []buildOpts{{v1: true}, {v2: true}, {v1: true, v2: true}, {v1: true, single: true}, {v2: true, single: true}} {
		files := small
		if o.single {
			files = small[:1]
		}
		f.Add(encode(f, buildTorrent("x", files, o)))
	}
	for _, s := range []string{"", "de", "d4:infodee", "d4:infod4:name1:x12:piece lengthi16384e6:lengthi1e6:pieces20:01234567890123456789ee",
		"d1:ai-0ee", "d1:bi1e1:ai1e1:bi2ee", "llllllllllllllllllllee"} {
		f.Add([]byte(s))
	}
}

// FuzzParse checks that Parse never panics, that every error wraps a
// sentinel, and that whatever Parse accepts sanitizes and personalizes into
// files that parse again with the promised hashes.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(checkAny)
}

var fuzzURLs = []string{"https://n1.example.org/pk/announce", "udp://n2.example.org:6969/pk/announce"}

// checkAny runs data through Parse, Sanitize and Personalize and checks
// their promises.
func checkAny(t *testing.T, data []byte) {
	// Personalize must cope with any input too.
	if dl, err := Personalize(data, fuzzURLs, nil); err == nil {
		if _, err := Personalize(dl, fuzzURLs, nil); err != nil {
			t.Fatalf("Personalize output does not personalize again: %v", err)
		}
	} else if !isSentinel(err) {
		t.Fatalf("Personalize error %v wraps no sentinel", err)
	}

	tor, err := Parse(data, Limits{})
	if err != nil {
		if tor != nil {
			t.Fatal("torrent and error")
		}
		if !isSentinel(err) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		return
	}
	// Independent safety check of every accepted path.
	for _, f := range append([]model.File{{Path: tor.Name}}, tor.Files...) {
		for _, part := range strings.Split(f.Path, "/") {
			if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00\n") || !utf8.ValidString(part) {
				t.Fatalf("unsafe path %q accepted", f.Path)
			}
		}
		if f.Length < 0 {
			t.Fatalf("negative length accepted")
		}
	}

	s, err := Sanitize(tor, "seedbank")
	if err != nil {
		t.Fatalf("Sanitize of a parsed torrent: %v", err)
	}
	again, err := Parse(s.Metainfo, Limits{MaxTorrentBytes: 1 << 30})
	if err != nil {
		t.Fatalf("sanitized torrent does not parse: %v", err)
	}
	if !again.Private || again.Source != "seedbank" || again.TotalSize != tor.TotalSize ||
		!equalFiles(again.Files, tor.Files) || again.IsV1 != tor.IsV1 || again.IsV2 != tor.IsV2 {
		t.Fatalf("sanitized torrent differs")
	}
	if again.OriginalInfoHashV1 != s.InfoHashV1 || again.OriginalInfoHashV2 != s.InfoHashV2 {
		t.Fatalf("sanitized hashes differ")
	}
	s2, err := Sanitize(again, "seedbank")
	if err != nil || !bytes.Equal(s2.Metainfo, s.Metainfo) {
		t.Fatalf("sanitize is not idempotent: %v", err)
	}
	dl, err := Personalize(s.Metainfo, fuzzURLs, nil)
	if err != nil {
		t.Fatalf("Personalize: %v", err)
	}
	p, err := Parse(dl, Limits{MaxTorrentBytes: 1 << 30})
	if err != nil {
		t.Fatalf("personalised torrent does not parse: %v", err)
	}
	if p.OriginalInfoHashV1 != s.InfoHashV1 || p.OriginalInfoHashV2 != s.InfoHashV2 {
		t.Fatalf("Personalize changed the info hash")
	}
}

// FuzzFields builds structurally valid v1 and v2 torrents from fuzzed names,
// lengths and extra keys, so the fuzzer reaches path, length and sanitize
// checks that random bytes rarely get past.
func FuzzFields(f *testing.F) {
	f.Add("rnaseq", "reads", "a.fastq", "b.fastq", int64(1000), int64(70000), uint8(15), "x_cross_seed", []byte("3:abc"), "https://m.example.org/", false)
	f.Add("..", "", ".", "a/b", int64(0), int64(0), uint8(14), "private", []byte("i0e"), "", true)
	f.Add("n", "d", "a", "a", int64(1), int64(1<<40), uint8(28), "source", []byte("le"), "ftp://x/", true)
	f.Fuzz(func(t *testing.T, name, dir, a, b string, la, lb int64, plExp uint8, key string, val []byte, seed string, v2 bool) {
		if plExp > 30 || la > 1<<40 || lb > 1<<40 || la < -1 || lb < -1 {
			return
		}
		pl := int64(1) << plExp
		info := map[string]any{"name": name, "piece length": pl}
		top := map[string]any{"info": info, "url-list": seed, "announce": "http://x/"}
		if v2 {
			info["meta version"] = 2
			leaf := func(l int64) map[string]any {
				m := map[string]any{"length": l}
				if l > 0 {
					m["pieces root"] = make([]byte, 32)
				}
				return map[string]any{"": m}
			}
			info["file tree"] = map[string]any{dir: map[string]any{a: leaf(la), b: leaf(lb)}}
		} else {
			total := max(la, 0) + max(lb, 0)
			n := (total + pl - 1) / pl
			if n > 1000 {
				return
			}
			info["pieces"] = make([]byte, 20*n)
			info["files"] = []any{
				map[string]any{"length": la, "path": []string{dir, a}},
				map[string]any{"length": lb, "path": []string{b}},
			}
		}
		if key != "" {
			var v any
			if bencode.DecodeBytes(val, &v) == nil {
				info[key] = v
			}
		}
		data, err := bencode.EncodeBytes(top)
		if err != nil {
			return
		}
		checkAny(t, data)
	})
}

// BenchmarkParse measures Parse on real fixtures and on a built torrent with
// many files.
func BenchmarkParse(b *testing.B) {
	var many []tfile
	for i := range 2000 {
		many = append(many, tfile{path: "sample/" + string(rune('a'+i%26)) + "/" + strconv.Itoa(i) + ".fastq", data: randData(1000+i, uint64(i))})
	}
	inputs := map[string][]byte{
		"mktorrent_multi":         mustRead(b, "testdata/mktorrent_multi.torrent"),
		"libtorrent_hybrid_multi": mustRead(b, "testdata/libtorrent_hybrid_multi.torrent"),
		"v1_2000_files":           encode(b, buildTorrent("many", sortFiles(many), buildOpts{v1: true})),
		"hybrid_2000_files":       encode(b, buildTorrent("many", sortFiles(many), buildOpts{v1: true, v2: true})),
	}
	for name, data := range inputs {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustRead(tb testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkPersonalize measures building one download, which the web
// server does per request.
func BenchmarkPersonalize(b *testing.B) {
	tor, err := Parse(mustRead(b, "testdata/libtorrent_hybrid_multi.torrent"), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := Sanitize(tor, "seedbank")
	if err != nil {
		b.Fatal(err)
	}
	urls := []string{"https://n1.example.org/0123456789abcdef0123456789abcdef/announce",
		"https://n2.example.org/0123456789abcdef0123456789abcdef/announce",
		"udp://n3.example.org:6969/0123456789abcdef0123456789abcdef/announce"}
	b.SetBytes(int64(len(s.Metainfo)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Personalize(s.Metainfo, urls, nil); err != nil {
			b.Fatal(err)
		}
	}
}
