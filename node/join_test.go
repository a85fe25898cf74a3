package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/gossip/gossiptest"
)

// A node joins with the join secret alone: it fetches the cluster key from
// a member. A wrong or rotated secret is refused with a clear error and the
// node writes nothing into its data dir.
func TestJoinWithJoinSecret(t *testing.T) {
	c := &testCluster{t: t, net: gossiptest.New()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := c.start(ctx, c.config("n1"))
	if first.NewJoinSecret == "" || first.NewClusterKey == "" {
		t.Fatalf("bootstrap made no join secret (%q) or key", first.NewJoinSecret)
	}
	secret := first.NewJoinSecret
	if got := first.Store().JoinSecret(); got != secret {
		t.Fatalf("stored join secret %q, printed %q", got, secret)
	}

	joinCfg := func(id, secret string) Config {
		cfg := c.config(id)
		cfg.ClusterKey = ""
		cfg.JoinSecret = secret
		cfg.Join = []string{first.ClusterAddr()}
		return cfg
	}
	// Wrong secret: refused, nothing saved.
	bad := joinCfg("n2", secret+"x")
	if _, err := Start(ctx, bad, clusterLog(t)); err == nil || !strings.Contains(err.Error(), "join secret refused") {
		t.Fatalf("wrong join secret: err = %v, want a refusal naming the join secret", err)
	}
	if _, err := os.Stat(filepath.Join(bad.DataDir, "cluster.key")); err == nil {
		t.Fatal("a refused node saved a cluster key")
	}

	n2 := c.start(ctx, joinCfg("n2", secret))
	if err := n2.Store().WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if n2.NewJoinSecret != "" {
		t.Fatal("a joining node made a join secret")
	}
	// n2 holds the cluster's key: it reads what the cluster wrote.
	waitUntil(t, 20*time.Second, "n2 sees the join secret record", func() bool { return n2.Store().JoinSecret() == secret })

	// Rotation: the old secret stops working, the new one works.
	fresh, err := first.Store().RotateJoinSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == secret || !strings.HasPrefix(fresh, "sbj_") {
		t.Fatalf("rotated secret %q", fresh)
	}
	if _, err := Start(ctx, joinCfg("n3", secret), clusterLog(t)); err == nil || !strings.Contains(err.Error(), "join secret refused") {
		t.Fatalf("rotated-out secret: err = %v", err)
	}
	n3 := c.start(ctx, joinCfg("n3b", fresh))
	if err := n3.Store().WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "three voters", func() bool {
		return len(first.Store().Members()) == 3
	})
}

// The admin Cluster page's view: every node, the leader marked, each
// node's applied index and version as it reported them over gossip.
func TestClusterViewShowsEveryNode(t *testing.T) {
	c := startCluster(t, 3, 0)
	leaderID, _ := c.nodes[0].Store().Leader()
	for _, n := range c.nodes {
		view := clusterView{n}
		waitUntil(t, 20*time.Second, n.ID()+" sees every node's status", func() bool {
			nodes := view.Nodes()
			if len(nodes) != 3 {
				return false
			}
			for _, cn := range nodes {
				if cn.Applied == 0 || cn.Version != Version || cn.Gossip != "alive" || cn.LastContact < 0 || cn.LastContact > 5*time.Second {
					return false
				}
			}
			return true
		})
		leaders := 0
		for _, cn := range view.Nodes() {
			if cn.Leader {
				leaders++
				if cn.ID != leaderID || cn.RaftRole != "leader" {
					t.Fatalf("%s marks %s leader (%s), raft says %s", n.ID(), cn.ID, cn.RaftRole, leaderID)
				}
			} else if cn.RaftRole != "follower" {
				t.Fatalf("%s: %s has role %q", n.ID(), cn.ID, cn.RaftRole)
			}
			if cn.SiteURL == "" || cn.ClusterAddr == "" || cn.GossipAddr == "" {
				t.Fatalf("%s: %s lacks addresses: %+v", n.ID(), cn.ID, cn)
			}
			if cn.Self != (cn.ID == n.ID()) {
				t.Fatalf("%s: self flag wrong on %s", n.ID(), cn.ID)
			}
		}
		if leaders != 1 {
			t.Fatalf("%s shows %d leaders", n.ID(), leaders)
		}
	}
}
