package node

import (
	"context"
	"testing"
	"time"
)

// A node that comes back on another cluster and gossip address (a new
// container IP, a moved VM) is found through gossip: the leader points raft
// at the new address and the node catches up and takes part again.
func TestNodeBackOnNewAddress(t *testing.T) {
	c := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	i := 2
	for c.nodes[i].Store().IsLeader() {
		i--
	}
	old := c.nodes[i]
	id, dir, oldAddr := old.ID(), old.cfg.DataDir, old.ClusterAddr()
	c.kill(i)

	// Written while it is away.
	var live *Node
	for _, n := range c.live() {
		live = n
	}
	if err := live.Store().PutSetting(ctx, "while_away", "yes"); err != nil {
		t.Fatal(err)
	}

	cfg := c.config(id)
	cfg.DataDir = dir // new ports from the kernel for everything
	n, err := Start(ctx, cfg, clusterLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c.nodes[i] = n
	c.net.Register(n.ID(), n.ClusterAddr(), n.GossipAddr())
	if n.ClusterAddr() == oldAddr {
		t.Fatal("the kernel gave the same port again; the test proves nothing")
	}
	waitUntil(t, 30*time.Second, "raft follows the new address and the node catches up", func() bool {
		v, ok := n.Store().Setting("while_away")
		if !ok || v != "yes" {
			return false
		}
		for _, other := range c.live() {
			srv, err := other.Store().Servers()
			if err != nil {
				return false
			}
			for _, s := range srv {
				if s.ID == id && s.Addr != n.ClusterAddr() {
					return false
				}
			}
		}
		return true
	})
	// It takes part again: a write through it lands everywhere.
	if err := n.Store().PutSetting(ctx, "after_move", "ok"); err != nil {
		t.Fatalf("write through the moved node: %v", err)
	}
	waitUntil(t, 20*time.Second, "the moved node's write everywhere", func() bool {
		for _, other := range c.live() {
			if v, ok := other.Store().Setting("after_move"); !ok || v != "ok" {
				return false
			}
		}
		return true
	})
}
