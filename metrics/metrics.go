// Package metrics exposes a node's Prometheus metrics. Values are read from
// the node's parts when /metrics is scraped (gauge and counter functions),
// so the hot paths keep only their own atomic counters.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Raft is what the metrics need of the replicated store.
type Raft interface {
	State() string
	AppliedIndex() uint64
	CommitIndex() uint64
	LastContact() time.Time
	IsLeader() bool
}

// TrackerCounts are cumulative announce outcomes and current swarm sizes.
type TrackerCounts struct {
	Announces     map[string]uint64 // by result
	Scrapes       uint64
	Swarms        int
	LocalPeers    int
	RemotePeers   int
	PendingStats  int
	StatsFlushLag time.Duration
}

// Sources are read at scrape time; nil ones are left out.
type Sources struct {
	Raft    Raft
	Tracker func() TrackerCounts
	// Gossip returns the number of live members and the peer-replication
	// bytes sent so far (summed over receivers).
	Gossip func() (members int, sent uint64)
}

// Metrics owns a registry and the HTTP latency histograms.
type Metrics struct {
	reg     *prometheus.Registry
	httpDur *prometheus.HistogramVec
	writes  *prometheus.HistogramVec
}

// New registers every metric of a node.
func New(nodeID string, src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	labels := prometheus.Labels{"node": nodeID}
	m := &Metrics{reg: reg}
	m.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "seedbank_http_request_duration_seconds", Help: "HTTP request latency by listener and status class.",
		ConstLabels: labels, Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"listener", "code"})
	m.writes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "seedbank_raft_write_duration_seconds", Help: "Latency of replicated writes from proposal to local apply, by outcome.",
		ConstLabels: labels, Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 10},
	}, []string{"outcome"})
	reg.MustRegister(m.httpDur, m.writes)

	gauge := func(name, help string, fn func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, fn))
	}
	counter := func(name, help string, extra prometheus.Labels, fn func() float64) {
		l := prometheus.Labels{}
		for k, v := range labels {
			l[k] = v
		}
		for k, v := range extra {
			l[k] = v
		}
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l}, fn))
	}
	if r := src.Raft; r != nil {
		for _, st := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
			st := st
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "seedbank_raft_state", Help: "1 for this node's current raft state.",
				ConstLabels: prometheus.Labels{"node": nodeID, "state": st},
			}, func() float64 { return b2f(r.State() == st) }))
		}
		gauge("seedbank_raft_applied_index", "Last log index applied to this node's state.", func() float64 { return float64(r.AppliedIndex()) })
		gauge("seedbank_raft_commit_index", "Last log index this node knows to be committed.", func() float64 { return float64(r.CommitIndex()) })
		gauge("seedbank_raft_apply_lag", "Committed entries not yet applied on this node.", func() float64 {
			c, a := r.CommitIndex(), r.AppliedIndex()
			if c < a {
				return 0
			}
			return float64(c - a)
		})
		gauge("seedbank_raft_last_contact_seconds", "Seconds since this follower heard from the leader (0 on the leader).", func() float64 {
			if r.IsLeader() {
				return 0
			}
			lc := r.LastContact()
			if lc.IsZero() {
				return -1
			}
			return time.Since(lc).Seconds()
		})
	}
	if tr := src.Tracker; tr != nil {
		for _, result := range []string{"ok", "unknown_passkey", "malformed_passkey", "disabled", "unregistered", "client_refused", "other"} {
			result := result
			counter("seedbank_announces_total", "Announces answered, by result.", prometheus.Labels{"result": result},
				func() float64 { return float64(tr().Announces[result]) })
		}
		counter("seedbank_scrapes_total", "Info hashes scraped.", nil, func() float64 { return float64(tr().Scrapes) })
		gauge("seedbank_swarms", "Swarms with at least one peer on this node.", func() float64 { return float64(tr().Swarms) })
		gauge("seedbank_peers_local", "Peers that announced to this node.", func() float64 { return float64(tr().LocalPeers) })
		gauge("seedbank_peers_gossiped", "Peers learned from other nodes by gossip.", func() float64 { return float64(tr().RemotePeers) })
		gauge("seedbank_stats_pending_batches", "Stats batches waiting to be committed.", func() float64 { return float64(tr().PendingStats) })
		gauge("seedbank_stats_flush_lag_seconds", "Age of the oldest stats batch not yet committed.", func() float64 { return tr().StatsFlushLag.Seconds() })
	}
	if g := src.Gossip; g != nil {
		gauge("seedbank_gossip_members", "Live gossip members, this node included.", func() float64 { n, _ := g(); return float64(n) })
		counter("seedbank_gossip_peer_bytes_sent_total", "Bytes of peer-swarm replication sent, summed over receivers.", nil, func() float64 { _, s := g(); return float64(s) })
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveWrite records one replicated write's latency and outcome.
func (m *Metrics) ObserveWrite(d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.writes.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveHTTP records one request's latency under listener, for servers
// that are not an http.Handler (the tracker's own HTTP server).
func (m *Metrics) ObserveHTTP(listener string, code int, d time.Duration) {
	class := "5xx"
	if c := code / 100; c >= 1 && c <= 5 {
		class = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[c-1]
	}
	m.httpDur.WithLabelValues(listener, class).Observe(d.Seconds())
}

// Instrument wraps h to record request latencies under listener.
func (m *Metrics) Instrument(listener string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(sw, r)
		m.httpDur.WithLabelValues(listener, strconv.Itoa(sw.code/100)+"xx").Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
