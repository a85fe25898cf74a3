package node

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkClusterGossip drives announces over real HTTP into 3- and 5-node
// clusters on loopback, clients arriving at random (0-60ms apart, round-robin
// over the nodes), and reports:
//
//   - p50-ms, p99-ms: for announces of new peers, the time until every other
//     node lists the peer (HTTP announce included);
//   - batch-B/announce: replication payload (delta batches, counted once
//     per receiving node) per announce;
//   - wire-B/announce: every byte memberlist sent (batches, probes,
//     push-pull, encryption overhead) per announce, and idle-wire-B/s, the
//     same traffic of the idle cluster, which is not announce-driven.
//
// Modes: new-peers (every announce a new peer: churn), reannounce (periodic
// re-announces of known peers: no churn), mixed (1 in 10 new).
// Run with: go test ./node -run XXX -bench ClusterGossip -benchtime 5s
func BenchmarkClusterGossip(b *testing.B) {
	for _, size := range []int{3, 5} {
		for _, mode := range []struct {
			name  string
			every int // one announce in every is a new peer; 0: none
		}{{"new-peers", 1}, {"reannounce", 0}, {"mixed", 10}} {
			b.Run(fmt.Sprintf("nodes=%d/%s", size, mode.name), func(b *testing.B) {
				benchGossip(b, size, mode.every)
			})
		}
	}
}

func benchGossip(b *testing.B, size, newEvery int) {
	c := startCluster(b, size, time.Hour)
	f := makeFixture(b, c.nodes[0], 10)
	c.waitApplied(f)
	// Known peers, each local to one node.
	known := make([]*client, 100)
	for j := range known {
		known[j] = newClient(j)
		announceHTTP(b, c.nodes[j%size], f.user.Passkey, f.torrents[j%len(f.torrents)], known[j], "started")
	}
	waitUntil(b, 10*time.Second, "known peers everywhere", func() bool {
		for _, n := range c.nodes {
			sum := 0
			for _, h := range f.torrents {
				sum += leechers(n, h)
			}
			if sum != len(known) {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // let the tail digests and syncs settle
	c.net.ResetCounters()
	idleStart := time.Now()
	time.Sleep(2 * time.Second)
	idleRate := float64(c.net.GossipBytes()) / time.Since(idleStart).Seconds()

	batchBytes := func() uint64 {
		var s uint64
		for _, n := range c.nodes {
			s += n.Gossip().Stats().BatchBytes
		}
		return s
	}
	c.net.ResetCounters()
	batch0 := batchBytes()
	var lat []time.Duration
	ops, fresh := 0, 1000
	for b.Loop() {
		src := c.nodes[ops%size]
		if newEvery > 0 && ops%newEvery == 0 {
			cl := newClient(fresh)
			fresh++
			lat = append(lat, measureConvergence(b, c, src, fixture{user: f.user, torrents: f.torrents[fresh%len(f.torrents):][:1]}, []*client{cl})...)
		} else {
			time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
			// A known peer of src re-announces with the same address and role.
			j := (ops/size*size + ops%size) % (len(known) / size * size)
			announceHTTP(b, src, f.user.Passkey, f.torrents[j%len(f.torrents)], known[j], "")
		}
		ops++
	}
	b.StopTimer()
	b.ReportMetric(float64(batchBytes()-batch0)/float64(ops), "batch-B/announce")
	b.ReportMetric(float64(c.net.GossipBytes())/float64(ops), "wire-B/announce")
	b.ReportMetric(idleRate, "idle-wire-B/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	}
}
