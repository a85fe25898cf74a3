package node

import (
	"net/http"

	"github.com/seedbank/seedbank/metrics"
)

// newMetrics builds the node's metrics from its parts.
func (n *Node) newMetrics() *metrics.Metrics {
	return metrics.New(n.id, metrics.Sources{
		Raft: n.store,
		Tracker: func() metrics.TrackerCounts {
			c := n.tracker.AnnounceCounts()
			swarms, local, remote := n.tracker.Peers().Census()
			pending, _ := n.tracker.PendingBatches()
			return metrics.TrackerCounts{
				Announces: map[string]uint64{
					"ok": c.OK, "unknown_passkey": c.UnknownPasskey, "malformed_passkey": c.MalformedPasskey,
					"disabled": c.Disabled, "unregistered": c.Unregistered, "client_refused": c.ClientRefused, "other": c.Other,
				},
				Scrapes: c.Scrapes, Swarms: swarms, LocalPeers: local, RemotePeers: remote, PendingStats: pending,
				StatsFlushLag: n.tracker.StatsLag(),
			}
		},
		Gossip: func() (int, uint64) {
			return n.gossip.NumAlive(), n.gossip.Stats().BatchBytes
		},
	})
}

// metricsHandler serves /metrics.
func (n *Node) metricsHandler() http.Handler { return n.metrics.Handler() }
