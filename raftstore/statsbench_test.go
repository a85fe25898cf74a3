package raftstore

import (
	"bytes"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/seedbank/seedbank/model"
)

// statsFixture registers torrents torrents and returns a batch of n deltas
// over users users, sorted by (user, torrent) as announce flushes them.
func statsFixture(tb testing.TB, f *fsm, torrents, users, n int) model.StatsBatch {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]model.InfoHash, torrents)
	logs := make([]*raft.Log, 0, 1000)
	next := f.applied.Load() + 1
	flush := func() {
		f.ApplyBatch(logs)
		logs = logs[:0]
	}
	for i := range ids {
		t := goodTorrent(0)
		for j := range t.ID {
			t.ID[j] = byte(r.Uint32())
		}
		t.InfoHashV1 = t.ID.String()
		ids[i] = t.ID
		data, err := encodeCommand(&putTorrentCmd{Torrent: t})
		if err != nil {
			tb.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: next, Type: raft.LogCommand, Data: data})
		next++
		if len(logs) == cap(logs) {
			flush()
		}
	}
	flush()
	seen := map[[2]uint64]bool{}
	b := model.StatsBatch{NodeID: "node-1", Seq: 1}
	for len(b.Deltas) < n {
		u, t := uint64(r.IntN(users)+1), r.IntN(torrents)
		if seen[[2]uint64{u, uint64(t)}] {
			continue
		}
		seen[[2]uint64{u, uint64(t)}] = true
		b.Deltas = append(b.Deltas, model.StatsDelta{UserID: u, Torrent: ids[t],
			Uploaded: r.Uint64N(1 << 30), Downloaded: r.Uint64N(1 << 28), Snatches: r.Uint64N(2)})
	}
	slices.SortFunc(b.Deltas, func(x, y model.StatsDelta) int {
		if x.UserID != y.UserID {
			if x.UserID < y.UserID {
				return -1
			}
			return 1
		}
		return bytes.Compare(x.Torrent[:], y.Torrent[:])
	})
	return b
}

// BenchmarkApplyStatsBatch measures what one flush of 20,000 (user, torrent)
// deltas costs the cluster: encoding the command (on the flushing node),
// decoding and applying it (on every node), over 100,000 registered torrents
// and 1,000 users, in the JSON encoding of older nodes and in the binary
// one. fsync is off, so the figure is CPU: wall time (ns/delta) and the
// process's CPU time on all cores (cpu-ns/delta), per delta.
func BenchmarkApplyStatsBatch(b *testing.B) {
	for _, enc := range []struct {
		name string
		mk   func(model.StatsBatch) (command, error)
	}{
		{"json", func(sb model.StatsBatch) (command, error) { return &commitStatsCmd{Batch: sb}, nil }},
		{"binary", func(sb model.StatsBatch) (command, error) { return newStatsBatchCmd(sb) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			f, err := newFSM(filepath.Join(b.TempDir(), "state.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer f.close()
			f.db.NoSync = true
			batch := statsFixture(b, f, 100_000, 1_000, 20_000)
			var size int
			runtime.GC() // the fixture's garbage is not the batches' cost
			cpu := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch.Seq++
				c, err := enc.mk(batch)
				if err != nil {
					b.Fatal(err)
				}
				data, err := encodeCommand(c)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
				idx := f.applied.Load() + 1
				res := f.ApplyBatch([]*raft.Log{{Index: idx, Type: raft.LogCommand, Data: data}})
				if err := res[0].(*applyResult).Err; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Deltas)), "ns/delta")
			if cpu > 0 {
				// Wall time includes apply's pauses (pace) and leaves
				// out the garbage collector's work on other cores.
				b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*len(batch.Deltas)), "cpu-ns/delta")
			}
			b.ReportMetric(float64(size)/float64(len(batch.Deltas)), "bytes/delta")
		})
	}
}
