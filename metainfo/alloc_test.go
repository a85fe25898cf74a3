package metainfo

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestParseAllocationIsBounded feeds hostile inputs and checks that Parse
// (and Sanitize, when Parse accepts) allocate at most a small multiple of
// the input size.
func TestParseAllocationIsBounded(t *testing.T) {
	valid := string(encode(t, buildTorrent("x", []tfile{{"a", randData(20_000, 1)}}, buildOpts{v1: true})))
	junkKeys := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%d:k%07di0e", 8, i)
		}
		return b.String()
	}
	// A v2 tree 150 levels deep holding many files at the bottom: each
	// file's joined path is long though the input names each directory once.
	deepTree := func(files int) string {
		var b strings.Builder
		b.WriteString("d4:infod9:file tree")
		for range 150 {
			b.WriteString("d20:dddddddddddddddddddd")
		}
		b.WriteString("d")
		for i := range files {
			fmt.Fprintf(&b, "8:f%07dd0:d6:lengthi0eee", i)
		}
		b.WriteString(strings.Repeat("e", 151))
		b.WriteString("12:meta versioni2e4:name1:x12:piece lengthi16384eee")
		return b.String()
	}
	cases := map[string]string{
		"huge string length":  "d4:info2147483647:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"junk top-level keys": "d" + junkKeys(100_000) + valid[1:],
		"junk info keys":      strings.Replace(valid, "4:infod", "4:infod"+junkKeys(100_000), 1),
		"deep v2 tree":        deepTree(20_000),
		"many nested lists":   "d1:x" + strings.Repeat("l", 190) + strings.Repeat("e", 190) + valid[1:],
		"many empty strings":  "d1:xl" + strings.Repeat("0:", 500_000) + "e" + valid[1:],
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			data := []byte(in)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			tor, err := Parse(data, Limits{})
			if err == nil {
				_, err = Sanitize(tor, "seedbank")
			}
			runtime.ReadMemStats(&after)
			used := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d input bytes, %d allocated, err %v", len(data), used, err)
			if limit := uint64(12*len(data) + 1<<20); used > limit {
				t.Errorf("allocated %d bytes for %d input bytes (limit %d)", used, len(data), limit)
			}
		})
	}
}
