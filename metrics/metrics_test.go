package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeRaft struct{}

func (fakeRaft) State() string          { return "Follower" }
func (fakeRaft) AppliedIndex() uint64   { return 40 }
func (fakeRaft) CommitIndex() uint64    { return 42 }
func (fakeRaft) LastContact() time.Time { return time.Now().Add(-2 * time.Second) }
func (fakeRaft) IsLeader() bool         { return false }

func TestMetricsExposeEachSource(t *testing.T) {
	m := New("n1", Sources{
		Raft: fakeRaft{},
		Tracker: func() TrackerCounts {
			return TrackerCounts{Announces: map[string]uint64{"ok": 7, "unregistered": 2}, Scrapes: 3, Swarms: 1, LocalPeers: 4, RemotePeers: 5, PendingStats: 1, StatsFlushLag: 3 * time.Second}
		},
		Gossip: func() (int, uint64) { return 3, 100 },
	})
	m.ObserveWrite(2*time.Millisecond, nil)
	h := m.Instrument("site", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`seedbank_raft_state{node="n1",state="Follower"} 1`,
		`seedbank_raft_state{node="n1",state="Leader"} 0`,
		`seedbank_raft_apply_lag{node="n1"} 2`,
		`seedbank_announces_total{node="n1",result="ok"} 7`,
		`seedbank_announces_total{node="n1",result="unregistered"} 2`,
		`seedbank_peers_gossiped{node="n1"} 5`,
		`seedbank_stats_flush_lag_seconds{node="n1"} 3`,
		`seedbank_gossip_peer_bytes_sent_total{node="n1"} 100`,
		`seedbank_gossip_members{node="n1"} 3`,
		`seedbank_raft_write_duration_seconds_count{node="n1",outcome="ok"} 1`,
		`seedbank_http_request_duration_seconds_count{code="4xx",listener="site",node="n1"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("%s", body)
	}
}
