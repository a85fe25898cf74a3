package metainfo

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/bencode"
)

func TestSanitizeBuiltTorrents(t *testing.T) {
	for _, o := range []buildOpts{{v1: true}, {v2: true}, {v1: true, v2: true}, {v1: true, single: true}, {v2: true, single: true}, {v1: true, v2: true, single: true}} {
		files := sampleFiles()
		if o.single {
			files = singleFile()
		}
		data := encode(t, buildTorrent("rnaseq", files, o))
		tor := mustParse(t, data)
		checkSanitizeRoundTrip(t, tor, data)
	}
}

func TestSanitizeKeepsInfoKeys(t *testing.T) {
	m := buildTorrent("rnaseq", sampleFiles(), buildOpts{v1: true, v2: true})
	info := infoOf(m)
	info["private"] = 0
	info["source"] = "somewhere-else"
	info["x_cross_seed"] = "abc"
	info["name.utf-8"] = "rnaseq"
	info["nested"] = map[string]any{"b": 1, "a": []any{map[string]any{"z": 1, "y": 2}}}
	// Put the info keys out of order by hand.
	enc := encode(t, m)
	infoRaw := encode(t, info)
	unsorted := []byte("d6:zzzzzzi1e" + string(infoRaw[1:]))
	enc = bytes.Replace(enc, infoRaw, unsorted, 1)
	tor := mustParse(t, enc)
	if tor.Private || tor.Source != "somewhere-else" {
		t.Errorf("private %v source %q", tor.Private, tor.Source)
	}
	s, err := Sanitize(tor, "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := decodeFile(t, s.Metainfo)
	checkCanonical(t, f.Info)
	var got map[string]any
	if err := bencode.DecodeBytes(f.Info, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"private": int64(1), "source": "seedbank", "x_cross_seed": "abc", "name.utf-8": "rnaseq", "zzzzzz": int64(1)} {
		if got[k] != want {
			t.Errorf("info[%q] = %v, want %v", k, got[k], want)
		}
	}
	if _, ok := got["nested"].(map[string]any)["a"]; !ok {
		t.Errorf("nested value lost: %v", got["nested"])
	}
	var top map[string]any
	if err := bencode.DecodeBytes(s.Metainfo, &top); err != nil {
		t.Fatal(err)
	}
	for k := range top {
		switch k {
		case "info", "comment", "created by", "creation date", "piece layers":
		default:
			t.Errorf("sanitized torrent keeps top-level key %q", k)
		}
	}
}

func TestSanitizeDropsUnneededPieceLayers(t *testing.T) {
	m := buildTorrent("rnaseq", sampleFiles(), buildOpts{v2: true})
	m["piece layers"].(map[string]any)[strings.Repeat("x", 32)] = make([]byte, 64)
	s, err := Sanitize(mustParse(t, encode(t, m)), "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	var layers map[string]any
	f, _ := decodeFile(t, s.Metainfo)
	if err := bencode.DecodeBytes(f.PieceLayers, &layers); err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 { // sample_1 and sample_2 are larger than a piece
		t.Errorf("piece layers has %d entries, want 2", len(layers))
	}

	// Small files need no piece layers at all.
	small := buildTorrent("small", []tfile{{"a.txt", randData(1000, 1)}}, buildOpts{v2: true})
	s, err = Sanitize(mustParse(t, encode(t, small)), "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := decodeFile(t, s.Metainfo); f.PieceLayers != nil {
		t.Errorf("piece layers written for a torrent that needs none")
	}
}

func TestSanitizeErrors(t *testing.T) {
	tor := mustParse(t, encode(t, buildTorrent("rnaseq", sampleFiles(), buildOpts{v1: true})))
	for _, c := range []struct {
		name   string
		tor    *Torrent
		source string
		seeds  []string
		want   error
	}{
		{"nil torrent", nil, "seedbank", nil, ErrNoInfo},
		{"torrent not from Parse", &Torrent{Name: "x", IsV1: true}, "seedbank", nil, ErrNoInfo},
		{"empty source", tor, "", nil, ErrBadSource},
		{"source with newline", tor, "seed\nbank", nil, ErrBadSource},
		{"source not UTF-8", tor, "seed\xffbank", nil, ErrBadSource},
		{"source too long", tor, strings.Repeat("s", 129), nil, ErrBadSource},
		{"edited web seed", tor, "seedbank", []string{"gopher://example.org/"}, ErrBadWebSeed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.seeds != nil {
				cp := *c.tor
				cp.WebSeeds = c.seeds
				c.tor = &cp
			}
			_, err := Sanitize(c.tor, c.source)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	// Edited fields are written; edited web seeds are checked and deduplicated.
	cp := *tor
	cp.Comment = "edited by a moderator"
	cp.WebSeeds = []string{"https://a.example.org/", "https://a.example.org/", "ftp://b.example.org/x"}
	s, err := Sanitize(&cp, "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, s.Metainfo)
	if again.Comment != cp.Comment || !equalStrings(again.WebSeeds, cp.WebSeeds[1:]) {
		t.Errorf("comment %q web seeds %q", again.Comment, again.WebSeeds)
	}
}

func TestPersonalize(t *testing.T) {
	tor := mustParse(t, encode(t, buildTorrent("rnaseq", sampleFiles(), buildOpts{v1: true, v2: true})))
	tor.WebSeeds = []string{"https://a.example.org/"}
	s, err := Sanitize(tor, "seedbank")
	if err != nil {
		t.Fatal(err)
	}
	const u1, u2 = "https://n1.example.org/pk/announce", "udp://n2.example.org:6969/pk/announce"
	dl, err := Personalize(s.Metainfo, []string{u1, u2, u1}, []string{"https://a.example.org/", "http://b.example.org/"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := decodeFile(t, dl)
	if d.Announce != u1 || len(d.AnnounceList) != 1 || !equalStrings(d.AnnounceList[0], []string{u1, u2}) {
		t.Errorf("announce %q list %q", d.Announce, d.AnnounceList)
	}
	p := mustParse(t, dl)
	if !equalStrings(p.WebSeeds, []string{"https://a.example.org/", "http://b.example.org/"}) {
		t.Errorf("web seeds %q", p.WebSeeds)
	}
	if p.OriginalInfoHashV1 != s.InfoHashV1 || p.OriginalInfoHashV2 != s.InfoHashV2 {
		t.Errorf("info hash changed")
	}
	// A personalised file personalised again for another user keeps the
	// info hash and replaces the announce URLs.
	dl2, err := Personalize(dl, []string{u2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := decodeFile(t, dl2); d2.Announce != u2 || len(d2.AnnounceList[0]) != 1 || !bytes.Equal(d2.Info, d.Info) {
		t.Errorf("re-personalised: announce %q list %q", d2.Announce, d2.AnnounceList)
	}

	for _, c := range []struct {
		name  string
		data  []byte
		urls  []string
		seeds []string
		want  error
	}{
		{"no URLs", s.Metainfo, nil, nil, ErrBadAnnounce},
		{"empty URL", s.Metainfo, []string{""}, nil, ErrBadAnnounce},
		{"ftp announce", s.Metainfo, []string{"ftp://x.example.org/"}, nil, ErrBadAnnounce},
		{"relative announce", s.Metainfo, []string{"/pk/announce"}, nil, ErrBadAnnounce},
		{"announce with space", s.Metainfo, []string{"http://x.example.org/a b"}, nil, ErrBadAnnounce},
		{"bad web seed", s.Metainfo, []string{u1}, []string{"udp://x.example.org/"}, ErrBadWebSeed},
		{"not bencode", []byte("hello"), []string{u1}, nil, ErrNotBencode},
		{"truncated", s.Metainfo[:len(s.Metainfo)-1], []string{u1}, nil, ErrNotBencode},
		{"no info", []byte("d7:comment1:xe"), []string{u1}, nil, ErrNoInfo},
		{"info not dict", []byte("d4:info1:xe"), []string{u1}, nil, ErrNoInfo},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Personalize(c.data, c.urls, c.seeds); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestMktorrentNow makes torrents with the installed mktorrent at test time
// (the test fails when it is missing) and checks them end to end.
func TestMktorrentNow(t *testing.T) {
	if _, err := exec.LookPath("mktorrent"); err != nil {
		t.Fatal("mktorrent is not installed (apt-get install mktorrent; .ci/run does)")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "assembly")
	for name, n := range map[string]int{"contigs.fa": 300_000, "scaffolds/s1.fa": 70_000, "scaffolds/s2.fa": 16_384, "empty.gff": 0} {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, randData(n, uint64(n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		args   []string
		target string
		files  int
	}{
		{"multi", []string{"-l", "16"}, data, 4},
		{"single", []string{"-l", "15"}, filepath.Join(data, "contigs.fa"), 1},
		{"private source", []string{"-l", "17", "-p", "-s", "ELSEWHERE"}, data, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".torrent")
			args := append(append([]string{}, c.args...), "-a", "http://t.example.org/announce", "-o", out, c.target)
			if b, err := exec.Command("mktorrent", args...).CombinedOutput(); err != nil {
				t.Fatalf("mktorrent: %v\n%s", err, b)
			}
			upload, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			tor := mustParse(t, upload)
			if len(tor.Files) != c.files || tor.TotalSize != 300_000+70_000+16_384 && c.files == 4 {
				t.Errorf("files %v total %d", tor.Files, tor.TotalSize)
			}
			checkSanitizeRoundTrip(t, tor, upload)
		})
	}
}

// TestLibtorrentLoadsOutput checks with libtorrent (python3-libtorrent,
// the test fails when it is missing) that sanitized and personalised torrents load, with
// the info hashes Sanitize reports, private, and with the announce URLs.
func TestLibtorrentLoadsOutput(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import libtorrent").Run(); err != nil {
		t.Fatal("python3-libtorrent is not installed (apt-get install python3-libtorrent; .ci/run does)")
	}
	dir := t.TempDir()
	var lines []string
	for i, o := range []buildOpts{{v1: true}, {v2: true}, {v1: true, v2: true}, {v1: true, v2: true, single: true}} {
		files := sampleFiles()
		if o.single {
			files = singleFile()
		}
		s, err := Sanitize(mustParse(t, encode(t, buildTorrent("rnaseq", files, o))), "seedbank")
		if err != nil {
			t.Fatal(err)
		}
		dl, err := Personalize(s.Metainfo, []string{"http://a.example.org/pk/announce", "udp://b.example.org:6969/pk/announce"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j, b := range [][]byte{s.Metainfo, dl} {
			p := filepath.Join(dir, string(rune('a'+i))+string(rune('0'+j))+".torrent")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, p+" "+s.InfoHashV1Hex()+" "+s.InfoHashV2Hex())
		}
	}
	script := `
import sys, libtorrent as lt
for line in sys.stdin.read().split("\n"):
    p, *h = line.split(" ")
    v1 = h[0] if len(h) > 0 else ""
    v2 = h[1] if len(h) > 1 else ""
    ti = lt.torrent_info(p)
    ih = ti.info_hashes()
    got1 = str(ih.v1) if ih.has_v1() else ""
    got2 = ih.v2.to_bytes().hex() if ih.has_v2() else ""
    trackers = [t.url for t in ti.trackers()]
    print(p, got1 == v1, got2 == v2, ti.priv(), len(trackers), ti.num_files())
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("libtorrent: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 6 || f[1] != "True" || f[2] != "True" || f[3] != "True" {
			t.Errorf("libtorrent: %s", l)
		}
		personalised := strings.HasSuffix(f[0], "1.torrent")
		if (personalised && f[4] != "2") || (!personalised && f[4] != "0") {
			t.Errorf("libtorrent sees %s trackers in %s", f[4], f[0])
		}
	}
	t.Logf("libtorrent:\n%s", out)
}
