// Package raftstoretest starts real raftstore nodes for tests: real bbolt
// files in t.TempDir(), real TCP listeners on 127.0.0.1 with kernel-chosen
// ports, fast raft timeouts.
package raftstoretest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/seedbank/seedbank/raftstore"
)

// Key is the cluster key the helpers use.
var Key = []byte("seedbank-test-cluster-key-32byte")

// Config returns a fast-timeout config for node id in dir.
func Config(id, dir string) raftstore.Config {
	return raftstore.Config{
		NodeID:             id,
		Dir:                dir,
		BindAddr:           "127.0.0.1:0",
		ClusterKey:         Key,
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		Logger:             Logger(),
	}
}

// Logger is quiet unless SEEDBANK_TEST_DEBUG is set, then logs everything to stderr.
func Logger() *slog.Logger {
	// Raft logs every refused dial at error level while nodes are killed
	// on purpose; show them only when asked.
	level := slog.LevelError + 4
	if os.Getenv("SEEDBANK_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Single starts a one-node cluster, waits until it leads, and closes it when
// the test ends.
func Single(t testing.TB) *raftstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := raftstore.Open(ctx, Config("n1", t.TempDir()))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := WaitLeader(ctx, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitLeader waits until s is the leader.
func WaitLeader(ctx context.Context, s *raftstore.Store) error {
	for !s.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s did not become leader: %w", s.NodeID(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
