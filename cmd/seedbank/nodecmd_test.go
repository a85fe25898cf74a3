package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/node"
)

// An operator removes a dead node through a live member's cluster port: it
// leaves raft, the member records and gossip's address book, and the
// cluster keeps writing with two voters.
func TestNodeRemoveCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id string, join string, key string) *node.Node {
		t.Helper()
		cfg := node.Default()
		cfg.NodeID, cfg.DataDir = id, filepath.Join(t.TempDir(), "data")
		cfg.HTTPAddr, cfg.TrackerAddr, cfg.UDPAddr, cfg.ClusterAddr, cfg.Gossip = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.DeadNodeGrace = 0 // only the operator removes
		cfg.ClusterKey = key
		if join != "" {
			cfg.Join = []string{join}
		}
		n, err := node.Start(ctx, cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if err := n.Store().WaitForLeader(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n1 := start("lab-a", "", "")
	n2 := start("lab-b", n1.ClusterAddr(), n1.NewClusterKey)
	n3 := start("lab-c", n1.ClusterAddr(), n1.NewClusterKey)
	waitMembers := func(want int) {
		t.Helper()
		for {
			srv, err := n1.Store().Servers()
			if err == nil && len(srv) == want && len(n1.Store().Members()) == want {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("want %d servers and members, have %d servers (%v) and %d members", want, len(srv), err, len(n1.Store().Members()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMembers(3)
	n3.Close()

	sb := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(append([]string{"node"}, args...), &out, &out)
		return code, out.String()
	}
	key := []string{"--cluster", n2.ClusterAddr(), "--cluster-key", n1.NewClusterKey}
	if code, out := sb("remove"); code != 2 || !strings.Contains(out, "NODE-ID") {
		t.Fatalf("no id: %d %s", code, out)
	}
	if code, out := sb(append([]string{"remove", "../etc"}, key...)...); code != 1 || !strings.Contains(out, "node id") {
		t.Fatalf("bad id: %d %s", code, out)
	}
	if code, out := sb(append([]string{"remove", "lab-c"}, key...)...); code != 0 || !strings.Contains(out, "removed lab-c") {
		t.Fatalf("remove: %d %s", code, out)
	}
	waitMembers(2)
	if _, err := n1.Store().Record("gossip_addr", "lab-c"); err == nil {
		t.Fatal("lab-c's gossip address is still recorded")
	}
	if err := n2.Store().PutSetting(ctx, "after_removal", "ok"); err != nil {
		t.Fatalf("write with two voters left: %v", err)
	}
}
