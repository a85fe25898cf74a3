package raftstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
)

// Stats batches use the binary encoding only when every member's build
// applies it; until then they go as JSON, and the totals are the same.
func TestBinaryStatsOnlyWhenEveryMemberHasIt(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.waitConverged(ctx)
	s := c.nodes[0]
	member := func(id, features string) {
		t.Helper()
		if err := s.PutMember(ctx, model.Member{NodeID: id, SiteURL: "http://" + id, AnnounceURL: "http://" + id + "/a", ClusterAddr: "127.0.0.1:1", Features: features}); err != nil {
			t.Fatal(err)
		}
	}
	u := randomUser("stats")
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	h := model.InfoHash{9}
	seq := uint64(0)
	commit := func(up uint64) {
		t.Helper()
		seq++
		b := model.StatsBatch{NodeID: "n1", Seq: seq, Deltas: []model.StatsDelta{{UserID: u.ID, Torrent: h, Uploaded: up}}}
		if err := s.CommitStats(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	if raftstore.UsesBinaryStats(s) {
		t.Fatal("binary stats with no member records")
	}
	member("n1", raftstore.Features)
	member("n2", raftstore.Features)
	member("n3", "") // an older build
	if raftstore.UsesBinaryStats(s) {
		t.Fatal("binary stats while n3 lacks the feature")
	}
	commit(100)
	member("n3", "some-other "+raftstore.FeatureBinaryStats)
	if !raftstore.UsesBinaryStats(s) {
		t.Fatal("no binary stats though every member has the feature")
	}
	commit(20)
	c.waitConverged(ctx)
	for _, n := range c.nodes {
		if got := n.UserStats(u.ID).Uploaded; got != 120 {
			t.Fatalf("%s: uploaded %d, want 120 (JSON then binary batch)", n.NodeID(), got)
		}
	}
}
