package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seedbank/seedbank/clusterkey"
)

// The cluster key is rotated one node at a time, as docs/OPERATIONS.md
// says: every node accepts the new key, then uses it, then drops the old
// one, with a restart after each step. The cluster takes writes and keeps
// gossip whole between every two restarts, and at the end the old key is
// refused.
func TestClusterKeyRotationOneNodeAtATime(t *testing.T) {
	c := startCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	oldKey, err := clusterkey.Parse(c.key)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := clusterkey.New()
	if err != nil {
		t.Fatal(err)
	}

	writes := 0
	checkWrite := func(step string) {
		t.Helper()
		writes++
		key, val := fmt.Sprintf("rotation_%d", writes), step
		var via *Node
		for _, n := range c.live() {
			if !n.Store().IsLeader() {
				via = n
				break
			}
		}
		if err := via.Store().PutSetting(ctx, key, val); err != nil {
			t.Fatalf("%s: write through %s: %v", step, via.ID(), err)
		}
		waitUntil(t, 20*time.Second, step+": the write on every node and gossip whole", func() bool {
			for _, n := range c.live() {
				if v, ok := n.Store().Setting(key); !ok || v != val || n.Gossip().NumAlive() != 3 {
					return false
				}
			}
			return true
		})
	}
	restart := func(i int, edit func(r *clusterkey.Ring)) {
		t.Helper()
		old := c.nodes[i]
		cfg := c.config(old.ID())
		cfg.DataDir, cfg.ClusterAddr, cfg.Gossip = old.cfg.DataDir, old.ClusterAddr(), old.GossipAddr()
		cfg.ClusterKey = "" // the key file is what counts
		c.kill(i)
		ring, err := clusterkey.Read(cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		edit(&ring)
		if err := clusterkey.Write(cfg.DataDir, ring); err != nil {
			t.Fatal(err)
		}
		n, err := Start(ctx, cfg, clusterLog(t))
		if err != nil {
			t.Fatalf("restart %s: %v", cfg.NodeID, err)
		}
		t.Cleanup(func() { n.Close() })
		c.nodes[i] = n
		c.net.Register(n.ID(), n.ClusterAddr(), n.GossipAddr())
		if err := n.Store().WaitForLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		edit func(r *clusterkey.Ring)
	}{
		{"accept the new key", func(r *clusterkey.Ring) { r.Keys = append(r.Keys, newKey) }},
		{"use the new key", func(r *clusterkey.Ring) { r.Keys = [][]byte{newKey, oldKey} }},
		{"drop the old key", func(r *clusterkey.Ring) { r.Keys = [][]byte{newKey} }},
	}
	for _, st := range steps {
		for i := range c.nodes {
			restart(i, st.edit)
			checkWrite(fmt.Sprintf("%s, n%d restarted", st.name, i+1))
		}
	}

	// A node that holds only the old key is refused now.
	cfg := c.config("stale")
	cfg.ClusterKey = clusterkey.Encode(oldKey)
	cfg.Join = []string{c.nodes[0].ClusterAddr()}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if n, err := Start(sctx, cfg, clusterLog(t)); err == nil {
		n.Close()
		t.Fatal("a node with the rotated-out key joined")
	}
	for _, n := range c.live() {
		if len(n.Store().Members()) != 3 {
			t.Fatalf("%s lists %d members after the refused join", n.ID(), len(n.Store().Members()))
		}
	}
}
