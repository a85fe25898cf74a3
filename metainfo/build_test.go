package metainfo

import (
	"crypto/sha1"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zeebo/bencode"
)

// This file builds torrents in code for the tests: v1, v2 and hybrid, with
// real piece hashes and BEP 52 merkle trees, as maps that tests can break
// before encoding them with zeebo/bencode (which sorts keys).

type tfile struct {
	path string // joined by "/"
	data []byte
}

// randData returns n deterministic pseudo-random bytes.
func randData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// merkle returns a file's BEP 52 pieces root and piece layer (nil when the
// file fits in one piece), computed from its 16 KiB blocks.
func merkle(data []byte, pl int) (root [32]byte, layer []byte) {
	var leaves [][32]byte
	for off := 0; off < len(data); off += blockSize {
		leaves = append(leaves, sha256.Sum256(data[off:min(off+blockSize, len(data))]))
	}
	if len(data) <= pl {
		return reduce(leaves, [32]byte{}), nil
	}
	bpp := pl / blockSize
	var pieceRoots [][32]byte
	for i := 0; i < len(leaves); i += bpp {
		sub := append([][32]byte(nil), leaves[i:min(i+bpp, len(leaves))]...)
		for len(sub) < bpp {
			sub = append(sub, [32]byte{})
		}
		h := reduce(sub, [32]byte{})
		pieceRoots = append(pieceRoots, h)
		layer = append(layer, h[:]...)
	}
	var pad [32]byte // root of a piece of zero leaves
	for s := blockSize; s < pl; s *= 2 {
		pad = hashPair(pad, pad)
	}
	return reduce(pieceRoots, pad), layer
}

// reduce pads nodes to a power of two with pad and hashes them to a root.
func reduce(nodes [][32]byte, pad [32]byte) [32]byte {
	for len(nodes)&(len(nodes)-1) != 0 {
		nodes = append(nodes, pad)
	}
	for len(nodes) > 1 {
		next := make([][32]byte, len(nodes)/2)
		for i := range next {
			next[i] = hashPair(nodes[2*i], nodes[2*i+1])
		}
		nodes = next
	}
	return nodes[0]
}

type buildOpts struct {
	v1, v2 bool
	single bool // single-file torrent: one file, whose path is the name
	pl     int
}

// buildTorrent returns the top-level dictionary of a torrent of files.
func buildTorrent(name string, files []tfile, o buildOpts) map[string]any {
	if o.pl == 0 {
		o.pl = 32 << 10
	}
	if o.single {
		name = files[0].path
	}
	info := map[string]any{"name": name, "piece length": o.pl}
	top := map[string]any{
		"announce":      "http://tracker.example.org/announce",
		"announce-list": [][]string{{"http://tracker.example.org/announce"}, {"udp://other.example.org:80"}},
		"comment":       "built in code",
		"created by":    "seedbank tests",
		"creation date": 1700000000,
		"nodes":         []any{[]any{"router.example.org", 6881}},
		"x-unknown":     "dropped",
		"info":          info,
	}
	if o.v2 {
		info["meta version"] = 2
		tree := map[string]any{}
		layers := map[string]any{}
		for _, f := range files {
			node := tree
			parts := strings.Split(f.path, "/")
			for _, p := range parts[:len(parts)-1] {
				next, ok := node[p].(map[string]any)
				if !ok {
					next = map[string]any{}
					node[p] = next
				}
				node = next
			}
			props := map[string]any{"length": len(f.data)}
			if len(f.data) > 0 {
				root, layer := merkle(f.data, o.pl)
				props["pieces root"] = root[:]
				if layer != nil {
					layers[string(root[:])] = layer
				}
			}
			node[parts[len(parts)-1]] = map[string]any{"": props}
		}
		info["file tree"] = tree
		if len(layers) > 0 {
			top["piece layers"] = layers
		}
	}
	if o.v1 {
		var stream []byte
		var list []any
		for i, f := range files {
			stream = append(stream, f.data...)
			list = append(list, map[string]any{"length": len(f.data), "path": strings.Split(f.path, "/")})
			if o.v2 && len(stream)%o.pl != 0 && i < len(files)-1 {
				n := o.pl - len(stream)%o.pl
				stream = append(stream, make([]byte, n)...)
				list = append(list, map[string]any{"attr": "p", "length": n, "path": []string{".pad", strconv.Itoa(n)}})
			}
		}
		var pieces []byte
		for off := 0; off < len(stream); off += o.pl {
			h := sha1.Sum(stream[off:min(off+o.pl, len(stream))])
			pieces = append(pieces, h[:]...)
		}
		info["pieces"] = pieces
		if o.single {
			info["length"] = len(files[0].data)
		} else {
			info["files"] = list
		}
	}
	return top
}

func infoOf(top map[string]any) map[string]any { return top["info"].(map[string]any) }

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bencode.EncodeBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleFiles is a small multi-file dataset spanning several pieces, in
// path order (v2 file order), so v1 and v2 parts of a hybrid agree.
func sampleFiles() []tfile {
	return []tfile{
		{"README.txt", randData(1234, 1)},
		{"empty.txt", nil},
		{"reads/sample_1.fastq", randData(100_000, 2)},
		{"reads/sample_2.fastq", randData(70_001, 3)},
	}
}

// sortFiles sorts files by path, the v2 file order.
func sortFiles(files []tfile) []tfile {
	slices.SortFunc(files, func(a, b tfile) int { return strings.Compare(a.path, b.path) })
	return files
}

// singleFile is a one-file dataset larger than a piece.
func singleFile() []tfile { return []tfile{{"chr1.fa", randData(100_000, 6)}} }

// decodedFile is what an independent decoder (zeebo/bencode) sees in a .torrent.
type decodedFile struct {
	Announce     string             `bencode:"announce"`
	AnnounceList [][]string         `bencode:"announce-list"`
	Comment      string             `bencode:"comment"`
	Info         bencode.RawMessage `bencode:"info"`
	PieceLayers  bencode.RawMessage `bencode:"piece layers"`
	URLList      any                `bencode:"url-list"`
	Nodes        any                `bencode:"nodes"`
	HTTPSeeds    any                `bencode:"httpseeds"`
}

type decodedInfo struct {
	Name    string `bencode:"name"`
	Private int64  `bencode:"private"`
	Source  string `bencode:"source"`
	Pieces  string `bencode:"pieces"`
}

func decodeFile(t testing.TB, b []byte) (decodedFile, decodedInfo) {
	t.Helper()
	var f decodedFile
	if err := bencode.DecodeBytes(b, &f); err != nil {
		t.Fatalf("zeebo/bencode cannot decode the output: %v", err)
	}
	var i decodedInfo
	if err := bencode.DecodeBytes(f.Info, &i); err != nil {
		t.Fatalf("zeebo/bencode cannot decode the info dict: %v", err)
	}
	return f, i
}
