package announce

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// BenchmarkQueueAppend: one flush slice's worth of counters (4,700, a
// 64th of 300,000) written to a shard's counter log, with fsync off, so
// the figure is CPU and allocation. Reported per counter.
func BenchmarkQueueAppend(b *testing.B) {
	q, err := openStatsQueue(filepath.Join(b.TempDir(), "q.db"), "n1", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer q.close()
	q.db.NoSync = true
	q.compactMin = 1 << 30 // no compaction: the log only grows
	const n = 4700
	var p logPart
	for i := range n {
		p.addPut(counterKey{user: uint64(i % 100), torrent: model.InfoHash{5, byte(i), byte(i >> 8)}, peer: peerID(i)},
			counterRec{up: uint64(i) << 20, down: uint64(i), updated: 1_700_000_000, recon: true})
	}
	b.ReportAllocs()
	for b.Loop() {
		f := flushSet{parts: []logPart{p}}
		if _, err := q.append(&f, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/counter")
}
