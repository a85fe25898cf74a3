package raftstore_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedbank/seedbank/raftstore"
)

// benchWrites measures CreateUser through store s: latency percentiles of
// writes issued by `writers` concurrent callers, and throughput.
func benchWrites(b *testing.B, stores []*raftstore.Store, writers int) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := stores[w%len(stores)]
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				u := randomUser(fmt.Sprintf("b%d", i))
				t0 := time.Now()
				if err := s.CreateUser(ctx, u); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}

func BenchmarkWrite(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, writers := range []int{1, 32} {
			b.Run(fmt.Sprintf("nodes=%d/writers=%d", nodes, writers), func(b *testing.B) {
				c := newBenchCluster(b, nodes)
				benchWrites(b, c, writers)
			})
		}
	}
}

// newBenchCluster starts n nodes (writes spread over all of them, so on 3
// nodes two thirds are forwarded by a follower).
func newBenchCluster(b *testing.B, n int) []*raftstore.Store {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stores []*raftstore.Store
	for i := 0; i < n; i++ {
		cfg := clusterConfig(fmt.Sprintf("n%d", i+1), b.TempDir())
		cfg.SnapshotThreshold = 8192
		cfg.SnapshotInterval = 30 * time.Second
		cfg.TrailingLogs = 10240
		if i > 0 {
			cfg.Join = []string{stores[0].Addr()}
		}
		s, err := raftstore.Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		stores = append(stores, s)
		if i == 0 {
			for !s.IsLeader() {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	for _, s := range stores {
		if err := s.WaitForLeader(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return stores
}
