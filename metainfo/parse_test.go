package metainfo

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/model"
)

func TestParseRejects(t *testing.T) {
	v1multi := func() map[string]any { return buildTorrent("rnaseq", sampleFiles(), buildOpts{v1: true}) }
	v1single := func() map[string]any {
		return buildTorrent("genome.fa", []tfile{{"genome.fa", randData(100_000, 7)}}, buildOpts{v1: true, single: true})
	}
	v2multi := func() map[string]any { return buildTorrent("rnaseq", sampleFiles(), buildOpts{v2: true}) }
	hybrid := func() map[string]any { return buildTorrent("rnaseq", sampleFiles(), buildOpts{v1: true, v2: true}) }

	files := func(m map[string]any) []any { return infoOf(m)["files"].([]any) }
	file := func(m map[string]any, i int) map[string]any { return files(m)[i].(map[string]any) }
	tree := func(m map[string]any) map[string]any { return infoOf(m)["file tree"].(map[string]any) }
	leaf := func(m map[string]any, dir, name string) map[string]any {
		n := tree(m)
		if dir != "" {
			n = n[dir].(map[string]any)
		}
		return n[name].(map[string]any)[""].(map[string]any)
	}
	layers := func(m map[string]any) map[string]any { return m["piece layers"].(map[string]any) }
	anyLayer := func(m map[string]any) string {
		for k := range layers(m) {
			return k
		}
		return ""
	}
	deep := func(n int) any {
		var v any = "x"
		for range n {
			v = []any{v}
		}
		return v
	}

	type tc struct {
		name string
		raw  string                // used when set
		base func() map[string]any // else base, broken by edit
		edit func(m map[string]any)
		// suffix is appended to the encoded torrent.
		suffix string
		lim    Limits
		want   error
	}
	cases := []tc{
		// Not bencode.
		{name: "empty", raw: "", want: ErrNotBencode},
		{name: "list at top", raw: "le", want: ErrNotBencode},
		{name: "text", raw: "hello world", want: ErrNotBencode},
		{name: "unterminated dict", raw: "d4:infod", want: ErrNotBencode},
		{name: "string past end", raw: "d1:a5:abce", want: ErrNotBencode},
		{name: "huge string length", raw: "d1:a99999999999999999999:xe", want: ErrNotBencode},
		{name: "int leading zero", raw: "d1:ai01ee", want: ErrNotBencode},
		{name: "int minus zero", raw: "d1:ai-0ee", want: ErrNotBencode},
		{name: "int empty", raw: "d1:aiee", want: ErrNotBencode},
		{name: "int junk", raw: "d1:ai1x2ee", want: ErrNotBencode},
		{name: "int overflow", raw: "d1:ai9223372036854775808ee", want: ErrNotBencode},
		{name: "string length leading zero", raw: "d01:ai1ee", want: ErrNotBencode},
		{name: "non-string key", raw: "di1ei2ee", want: ErrNotBencode},
		{name: "duplicate key", raw: "d1:ai1e1:ai2ee", want: ErrNotBencode},
		{name: "duplicate key unsorted", raw: "d1:bi1e1:ai1e1:bi2ee", want: ErrNotBencode},
		{name: "bad byte", raw: "d1:axe", want: ErrNotBencode},
		{name: "trailing data", base: v1single, suffix: "\n", want: ErrNotBencode},

		// Size limits.
		{name: "file too large", base: v1multi, lim: Limits{MaxTorrentBytes: 100}, want: ErrTooLarge},
		{name: "nesting too deep", base: v1multi, edit: func(m map[string]any) { infoOf(m)["x"] = deep(300) }, want: ErrTooLarge},
		{name: "too many v1 files", base: v1multi, lim: Limits{MaxFiles: 3}, want: ErrTooLarge},
		{name: "too many v2 files", base: v2multi, lim: Limits{MaxFiles: 3}, want: ErrTooLarge},

		// Info dictionary.
		{name: "no info", base: v1multi, edit: func(m map[string]any) { delete(m, "info") }, want: ErrNoInfo},
		{name: "info not dict", base: v1multi, edit: func(m map[string]any) { m["info"] = "x" }, want: ErrNoInfo},

		// Piece length.
		{name: "no piece length", base: v1multi, edit: func(m map[string]any) { delete(infoOf(m), "piece length") }, want: ErrBadPieceLength},
		{name: "piece length string", base: v1multi, edit: func(m map[string]any) { infoOf(m)["piece length"] = "32768" }, want: ErrBadPieceLength},
		{name: "piece length small", base: v1multi, edit: func(m map[string]any) { infoOf(m)["piece length"] = 1024 }, want: ErrBadPieceLength},
		{name: "piece length zero", base: v1multi, edit: func(m map[string]any) { infoOf(m)["piece length"] = 0 }, want: ErrBadPieceLength},
		{name: "piece length negative", base: v1multi, edit: func(m map[string]any) { infoOf(m)["piece length"] = -32768 }, want: ErrBadPieceLength},
		{name: "piece length huge", base: v1multi, edit: func(m map[string]any) { infoOf(m)["piece length"] = 1 << 30 }, want: ErrBadPieceLength},
		{name: "v2 piece length not power of two", base: v2multi, edit: func(m map[string]any) { infoOf(m)["piece length"] = 48 << 10 }, want: ErrBadPieceLength},
		{name: "v2 piece length below 16 KiB", base: v2multi, lim: Limits{MinPieceLength: 1024}, edit: func(m map[string]any) { infoOf(m)["piece length"] = 8192 }, want: ErrBadPieceLength},

		// v1 pieces.
		{name: "no pieces", base: v1multi, edit: func(m map[string]any) { delete(infoOf(m), "pieces") }, want: ErrBadPieces},
		{name: "pieces not string", base: v1multi, edit: func(m map[string]any) { infoOf(m)["pieces"] = 5 }, want: ErrBadPieces},
		{name: "pieces not multiple of 20", base: v1multi, edit: func(m map[string]any) {
			p := infoOf(m)["pieces"].([]byte)
			infoOf(m)["pieces"] = p[:len(p)-1]
		}, want: ErrBadPieces},
		{name: "one piece hash missing", base: v1multi, edit: func(m map[string]any) {
			p := infoOf(m)["pieces"].([]byte)
			infoOf(m)["pieces"] = p[:len(p)-20]
		}, want: ErrBadPieces},
		{name: "one piece hash too many", base: v1single, edit: func(m map[string]any) {
			infoOf(m)["pieces"] = append(infoOf(m)["pieces"].([]byte), make([]byte, 20)...)
		}, want: ErrBadPieces},

		// v2 pieces roots and layers.
		{name: "v2 no pieces root", base: v2multi, edit: func(m map[string]any) { delete(leaf(m, "", "README.txt"), "pieces root") }, want: ErrBadPieces},
		{name: "v2 short pieces root", base: v2multi, edit: func(m map[string]any) { leaf(m, "", "README.txt")["pieces root"] = make([]byte, 31) }, want: ErrBadPieces},
		{name: "v2 no piece layers", base: v2multi, edit: func(m map[string]any) { delete(m, "piece layers") }, want: ErrBadPieces},
		{name: "v2 piece layers not dict", base: v2multi, edit: func(m map[string]any) { m["piece layers"] = "x" }, want: ErrBadPieces},
		{name: "v2 layer missing", base: v2multi, edit: func(m map[string]any) { delete(layers(m), anyLayer(m)) }, want: ErrBadPieces},
		{name: "v2 layer wrong size", base: v2multi, edit: func(m map[string]any) {
			k := anyLayer(m)
			layers(m)[k] = layers(m)[k].([]byte)[:32]
		}, want: ErrBadPieces},
		{name: "v2 layer does not match root", base: v2multi, edit: func(m map[string]any) {
			k := anyLayer(m)
			l := bytes.Clone(layers(m)[k].([]byte))
			l[0] ^= 1
			layers(m)[k] = l
		}, want: ErrBadPieces},

		// Names and paths.
		{name: "no name", base: v1multi, edit: func(m map[string]any) { delete(infoOf(m), "name") }, want: ErrBadPath},
		{name: "name not string", base: v1multi, edit: func(m map[string]any) { infoOf(m)["name"] = 1 }, want: ErrBadPath},
		{name: "name empty", base: v1multi, edit: func(m map[string]any) { infoOf(m)["name"] = "" }, want: ErrBadPath},
		{name: "name dotdot", base: v1single, edit: func(m map[string]any) { infoOf(m)["name"] = ".." }, want: ErrBadPath},
		{name: "name dot", base: v1multi, edit: func(m map[string]any) { infoOf(m)["name"] = "." }, want: ErrBadPath},
		{name: "name absolute", base: v1single, edit: func(m map[string]any) { infoOf(m)["name"] = "/etc/passwd" }, want: ErrBadPath},
		{name: "name with slash", base: v1multi, edit: func(m map[string]any) { infoOf(m)["name"] = "a/b" }, want: ErrBadPath},
		{name: "name with backslash", base: v1multi, edit: func(m map[string]any) { infoOf(m)["name"] = `..\..\x` }, want: ErrBadPath},
		{name: "name with NUL", base: v1single, edit: func(m map[string]any) { infoOf(m)["name"] = "a\x00.fa" }, want: ErrBadPath},
		{name: "name with newline", base: v1single, edit: func(m map[string]any) { infoOf(m)["name"] = "a\n.fa" }, want: ErrBadPath},
		{name: "name not UTF-8", base: v1single, edit: func(m map[string]any) { infoOf(m)["name"] = "a\xff.fa" }, want: ErrBadPath},
		{name: "name too long", base: v1single, edit: func(m map[string]any) { infoOf(m)["name"] = strings.Repeat("a", 256) }, want: ErrBadPath},
		{name: "path dotdot", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"..", "..", "etc", "passwd"} }, want: ErrBadPath},
		{name: "path dotdot inside", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"a", "..", "..", "b"} }, want: ErrBadPath},
		{name: "path dot", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"a", "."} }, want: ErrBadPath},
		{name: "path absolute element", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"/etc/passwd"} }, want: ErrBadPath},
		{name: "path empty first element", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"", "etc", "passwd"} }, want: ErrBadPath},
		{name: "path empty last element", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"a", ""} }, want: ErrBadPath},
		{name: "path slash inside element", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"a/../../b"} }, want: ErrBadPath},
		{name: "path NUL", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"a\x00b"} }, want: ErrBadPath},
		{name: "path windows drive", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{`C:\Windows`} }, want: ErrBadPath},
		{name: "path empty list", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{} }, want: ErrBadPath},
		{name: "path missing", base: v1multi, edit: func(m map[string]any) { delete(file(m, 0), "path") }, want: ErrBadPath},
		{name: "path not list", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = "a/b" }, want: ErrBadPath},
		{name: "path element not string", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []any{"a", 1} }, want: ErrBadPath},
		{name: "path too long", base: v1multi, lim: Limits{MaxPathBytes: 10}, want: ErrBadPath},
		{name: "file not dict", base: v1multi, edit: func(m map[string]any) { files(m)[0] = "README.txt" }, want: ErrBadPath},
		{name: "duplicate path", base: v1multi, edit: func(m map[string]any) { file(m, 3)["path"] = []string{"reads", "sample_1.fastq"} }, want: ErrBadPath},
		{name: "file is also a folder", base: v1multi, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"reads"} }, want: ErrBadPath},
		{name: "symlink", base: v1multi, edit: func(m map[string]any) {
			file(m, 0)["attr"] = "l"
			file(m, 0)["symlink path"] = []string{"..", "..", "etc"}
		}, want: ErrBadPath},
		{name: "v2 key dotdot", base: v2multi, edit: func(m map[string]any) { tree(m)[".."] = tree(m)["reads"]; delete(tree(m), "reads") }, want: ErrBadPath},
		{name: "v2 key with slash", base: v2multi, edit: func(m map[string]any) { tree(m)["a/b"] = tree(m)["reads"]; delete(tree(m), "reads") }, want: ErrBadPath},
		{name: "v2 key absolute", base: v2multi, edit: func(m map[string]any) { tree(m)["/etc"] = tree(m)["reads"]; delete(tree(m), "reads") }, want: ErrBadPath},
		{name: "v2 empty key at root", base: v2multi, edit: func(m map[string]any) { tree(m)[""] = map[string]any{"length": 5} }, want: ErrBadPath},
		{name: "v2 key with NUL", base: v2multi, edit: func(m map[string]any) {
			r := tree(m)["reads"].(map[string]any)
			r["x\x00"] = r["sample_1.fastq"]
			delete(r, "sample_1.fastq")
		}, want: ErrBadPath},
		{name: "v2 file and directory", base: v2multi, edit: func(m map[string]any) {
			tree(m)["README.txt"].(map[string]any)["sub"] = map[string]any{"": map[string]any{"length": 0}}
		}, want: ErrBadPath},
		{name: "v2 node not dict", base: v2multi, edit: func(m map[string]any) { tree(m)["README.txt"] = 5 }, want: ErrBadPath},

		// Lengths.
		{name: "negative length", base: v1single, edit: func(m map[string]any) { infoOf(m)["length"] = -1 }, want: ErrBadLength},
		{name: "length not int", base: v1single, edit: func(m map[string]any) { infoOf(m)["length"] = "100000" }, want: ErrBadLength},
		{name: "length and files", base: v1multi, edit: func(m map[string]any) { infoOf(m)["length"] = 5 }, want: ErrBadLength},
		{name: "file length missing", base: v1multi, edit: func(m map[string]any) { delete(file(m, 1), "length") }, want: ErrBadLength},
		{name: "file length negative", base: v1multi, edit: func(m map[string]any) { file(m, 1)["length"] = -100000 }, want: ErrBadLength},
		{name: "total overflows", base: v1multi, edit: func(m map[string]any) {
			file(m, 1)["length"] = int64(1) << 62
			file(m, 2)["length"] = int64(1) << 62
		}, want: ErrBadLength},
		{name: "v2 total overflows", base: v2multi, edit: func(m map[string]any) {
			leaf(m, "reads", "sample_1.fastq")["length"] = int64(1) << 62
			leaf(m, "reads", "sample_2.fastq")["length"] = int64(1) << 62
		}, want: ErrBadLength},
		{name: "v2 negative length", base: v2multi, edit: func(m map[string]any) { leaf(m, "", "README.txt")["length"] = -1 }, want: ErrBadLength},
		{name: "v2 leaf not dict", base: v2multi, edit: func(m map[string]any) { tree(m)["README.txt"] = map[string]any{"": 5} }, want: ErrBadLength},

		// No files.
		{name: "no files at all", base: v1multi, edit: func(m map[string]any) {
			delete(infoOf(m), "files")
			delete(infoOf(m), "pieces")
		}, want: ErrNoFiles},
		{name: "pieces but no files", base: v1multi, edit: func(m map[string]any) { delete(infoOf(m), "files") }, want: ErrNoFiles},
		{name: "files empty", base: v1multi, edit: func(m map[string]any) { infoOf(m)["files"] = []any{} }, want: ErrNoFiles},
		{name: "files not list", base: v1multi, edit: func(m map[string]any) { infoOf(m)["files"] = "x" }, want: ErrNoFiles},
		{name: "all files empty", base: v1multi, edit: func(m map[string]any) {
			infoOf(m)["files"] = []any{map[string]any{"length": 0, "path": []string{"a"}}}
			infoOf(m)["pieces"] = ""
		}, want: ErrNoFiles},
		{name: "v2 no file tree", base: v2multi, edit: func(m map[string]any) { delete(infoOf(m), "file tree") }, want: ErrNoFiles},
		{name: "v2 file tree empty", base: v2multi, edit: func(m map[string]any) { infoOf(m)["file tree"] = map[string]any{} }, want: ErrNoFiles},
		{name: "v2 file tree not dict", base: v2multi, edit: func(m map[string]any) { infoOf(m)["file tree"] = []any{} }, want: ErrNoFiles},
		{name: "v2 empty directory", base: v2multi, edit: func(m map[string]any) { tree(m)["empty-dir"] = map[string]any{} }, want: ErrNoFiles},

		// Versions.
		{name: "meta version 3", base: v2multi, edit: func(m map[string]any) { infoOf(m)["meta version"] = 3 }, want: ErrBadVersion},
		{name: "meta version string", base: v2multi, edit: func(m map[string]any) { infoOf(m)["meta version"] = "2" }, want: ErrBadVersion},
		{name: "file tree without meta version", base: v2multi, edit: func(m map[string]any) { delete(infoOf(m), "meta version") }, want: ErrBadVersion},

		// Hybrid.
		{name: "hybrid renamed v1 file", base: hybrid, edit: func(m map[string]any) { file(m, 0)["path"] = []string{"README.md"} }, want: ErrHybridMismatch},
		{name: "hybrid extra v2 file", base: hybrid, edit: func(m map[string]any) {
			tree(m)["zzz"] = map[string]any{"": map[string]any{"length": 0}}
		}, want: ErrHybridMismatch},
		{name: "hybrid without padding", base: hybrid, edit: func(m map[string]any) {
			var kept []any
			for _, f := range files(m) {
				if f.(map[string]any)["attr"] == nil {
					kept = append(kept, f)
				}
			}
			infoOf(m)["files"] = kept
			// Keep the piece count consistent so only the alignment is wrong.
			var total int
			for _, f := range kept {
				total += f.(map[string]any)["length"].(int)
			}
			infoOf(m)["pieces"] = make([]byte, 20*((total+32<<10-1)/(32<<10)))
		}, want: ErrHybridMismatch},
		{name: "hybrid missing v2 file", base: hybrid, edit: func(m map[string]any) { delete(tree(m), "empty.txt") }, want: ErrHybridMismatch},

		// Web seeds.
		{name: "web seed javascript", base: v1multi, edit: func(m map[string]any) { m["url-list"] = "javascript:alert(1)" }, want: ErrBadWebSeed},
		{name: "web seed file", base: v1multi, edit: func(m map[string]any) { m["url-list"] = []string{"file:///etc/passwd"} }, want: ErrBadWebSeed},
		{name: "web seed no host", base: v1multi, edit: func(m map[string]any) { m["url-list"] = "http:///x" }, want: ErrBadWebSeed},
		{name: "web seed credentials", base: v1multi, edit: func(m map[string]any) { m["url-list"] = "https://user:pw@example.org/x" }, want: ErrBadWebSeed},
		{name: "web seed space", base: v1multi, edit: func(m map[string]any) { m["url-list"] = "https://example.org/a b" }, want: ErrBadWebSeed},
		{name: "web seed int", base: v1multi, edit: func(m map[string]any) { m["url-list"] = 5 }, want: ErrBadWebSeed},
		{name: "web seed list with int", base: v1multi, edit: func(m map[string]any) { m["url-list"] = []any{"https://example.org/", 5} }, want: ErrBadWebSeed},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.raw)
			if c.base != nil {
				m := c.base()
				if c.edit != nil {
					c.edit(m)
				}
				data = append(encode(t, m), c.suffix...)
			}
			tor, err := Parse(data, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse: got error %v, want %v", err, c.want)
			}
			if tor != nil {
				t.Errorf("Parse returned a torrent with an error")
			}
			// Every message starts with its sentinel's and adds detail.
			if !strings.HasPrefix(err.Error(), c.want.Error()+": ") {
				t.Errorf("message %q does not start with %q", err, c.want)
			}
			if err.Error() == c.want.Error() {
				t.Errorf("message %q has no detail", err)
			}
		})
	}
}

func TestParseBuiltTorrents(t *testing.T) {
	cases := []struct {
		name string
		opts buildOpts
	}{
		{"v1 multi", buildOpts{v1: true}},
		{"v2 multi", buildOpts{v2: true}},
		{"hybrid multi", buildOpts{v1: true, v2: true}},
		{"v2 multi 16 KiB pieces", buildOpts{v2: true, pl: 16 << 10}},
		{"hybrid multi 64 KiB pieces", buildOpts{v1: true, v2: true, pl: 64 << 10}},
	}
	want := []model.File{
		{Path: "README.txt", Length: 1234},
		{Path: "empty.txt", Length: 0},
		{Path: "reads/sample_1.fastq", Length: 100_000},
		{Path: "reads/sample_2.fastq", Length: 70_001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := sampleFiles()
			tor, err := Parse(encode(t, buildTorrent("rnaseq", files, c.opts)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if tor.IsV1 != c.opts.v1 || tor.IsV2 != c.opts.v2 {
				t.Errorf("IsV1, IsV2 = %v, %v", tor.IsV1, tor.IsV2)
			}
			if tor.Name != "rnaseq" || tor.TotalSize != 1234+100_000+70_001 {
				t.Errorf("name %q, total %d", tor.Name, tor.TotalSize)
			}
			if !equalFiles(tor.Files, want) {
				t.Errorf("files %v, want %v", tor.Files, want)
			}
			if (tor.OriginalInfoHashV1Hex() != "") != c.opts.v1 || (tor.OriginalInfoHashV2Hex() != "") != c.opts.v2 {
				t.Errorf("hashes v1 %q v2 %q", tor.OriginalInfoHashV1Hex(), tor.OriginalInfoHashV2Hex())
			}
			if tor.Comment != "built in code" || tor.CreatedBy != "seedbank tests" || tor.CreationDate != 1700000000 {
				t.Errorf("comment %q, created by %q, date %d", tor.Comment, tor.CreatedBy, tor.CreationDate)
			}
		})
	}

	t.Run("v2 single file", func(t *testing.T) {
		data := randData(300_000, 9)
		tor, err := Parse(encode(t, buildTorrent("chr1.fa", []tfile{{"chr1.fa", data}}, buildOpts{v1: true, v2: true, single: true})), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !equalFiles(tor.Files, []model.File{{Path: "chr1.fa", Length: 300_000}}) {
			t.Errorf("files %v", tor.Files)
		}
	})
}

func TestParseAccepts(t *testing.T) {
	base := func() map[string]any { return buildTorrent("rnaseq", sampleFiles(), buildOpts{v1: true}) }
	t.Run("url-list string, empty string skipped", func(t *testing.T) {
		m := base()
		m["url-list"] = "https://mirror.example.org/rnaseq/"
		tor := mustParse(t, encode(t, m))
		if len(tor.WebSeeds) != 1 || tor.WebSeeds[0] != "https://mirror.example.org/rnaseq/" {
			t.Errorf("web seeds %q", tor.WebSeeds)
		}
		m["url-list"] = ""
		if tor := mustParse(t, encode(t, m)); len(tor.WebSeeds) != 0 {
			t.Errorf("web seeds %q", tor.WebSeeds)
		}
		m["url-list"] = []string{"ftp://ftp.example.org/pub/", "", "http://a.example.org/", "ftp://ftp.example.org/pub/"}
		if tor := mustParse(t, encode(t, m)); len(tor.WebSeeds) != 2 {
			t.Errorf("web seeds %q", tor.WebSeeds)
		}
	})
	t.Run("unsorted keys", func(t *testing.T) {
		m := base()
		info := encode(t, infoOf(m))
		// Move "name" before "files" by hand: keys out of order.
		data := []byte("d4:infod4:name6:rnaseq" + string(info[1:bytes.Index(info, []byte("4:name"))]) +
			string(info[bytes.Index(info, []byte("12:piece length")):]) + "e")
		tor := mustParse(t, data)
		if tor.Name != "rnaseq" || len(tor.Files) != 4 {
			t.Errorf("got %q %v", tor.Name, tor.Files)
		}
	})
	t.Run("private and source", func(t *testing.T) {
		m := base()
		infoOf(m)["private"] = 1
		infoOf(m)["source"] = "LAB-B"
		tor := mustParse(t, encode(t, m))
		if !tor.Private || tor.Source != "LAB-B" {
			t.Errorf("private %v source %q", tor.Private, tor.Source)
		}
	})
	t.Run("names that look odd but are safe", func(t *testing.T) {
		m := base()
		infoOf(m)["files"].([]any)[0].(map[string]any)["path"] = []string{"..data", "...", ".hidden", "12:00 run", "naïve ✓.txt"}
		tor := mustParse(t, encode(t, m))
		if tor.Files[0].Path != "..data/.../.hidden/12:00 run/naïve ✓.txt" {
			t.Errorf("path %q", tor.Files[0].Path)
		}
	})
	t.Run("does not keep input", func(t *testing.T) {
		data := encode(t, base())
		tor := mustParse(t, data)
		for i := range data {
			data[i] = 'x'
		}
		if _, err := Sanitize(tor, "seedbank"); err != nil {
			t.Fatal(err)
		}
	})
}

func mustParse(t testing.TB, data []byte) *Torrent {
	t.Helper()
	tor, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tor
}

func equalFiles(a, b []model.File) bool {
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
