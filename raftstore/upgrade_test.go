package raftstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/raftstore"
)

// Rolling upgrade rule: a node meeting a log entry written by a newer
// version stops applying right before it (no node skips it and diverges),
// says why in /readyz and in errors, takes no snapshot over it; once
// upgraded and restarted it applies the entry and everything after it, and
// no acknowledged write is lost.
func TestNewerCommandHaltsUntilUpgrade(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitConverged(ctx)
	_, leader := c.leader()
	if err := leader.CreateUser(ctx, randomUser("before")); err != nil {
		t.Fatal(err)
	}

	idx, err := raftstore.ProposeFutureCommand(ctx, leader, "future", "yes")
	if !errors.Is(err, raftstore.ErrNewerCommand) {
		t.Fatalf("leader applying a newer command: err = %v, want ErrNewerCommand", err)
	}
	for i, s := range c.nodes {
		deadline := time.Now().Add(10 * time.Second)
		for raftstore.HaltedAt(s) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := raftstore.HaltedAt(s); got != idx {
			t.Fatalf("n%d halted at %d, want %d", i+1, got, idx)
		}
		if s.AppliedIndex() >= idx {
			t.Fatalf("n%d applied %d, past the entry it cannot read (%d)", i+1, s.AppliedIndex(), idx)
		}
		if ok, why := s.Ready(); ok || !strings.Contains(why, "upgrade this node") {
			t.Fatalf("n%d ready=%v %q", i+1, ok, why)
		}
		if _, ok := s.Setting("future"); ok {
			t.Fatalf("n%d applied the newer command", i+1)
		}
	}
	// A write after it is committed but not applied anywhere yet: the
	// writer is told why.
	err = c.follower().CreateUser(ctx, randomUser("during"))
	if !errors.Is(err, raftstore.ErrNewerCommand) {
		t.Fatalf("write while halted: err = %v", err)
	}

	// Upgrade one node at a time: restart each with a build that knows
	// the entry.
	undo := raftstore.Upgrade()
	defer undo()
	for i := range c.nodes {
		c.stop(i)
		if err := c.restart(i, false); err != nil {
			t.Fatalf("restart n%d: %v", i+1, err)
		}
	}
	c.waitConverged(ctx)
	for i, s := range c.nodes {
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, ok := s.Setting("future")
			_, uerr := s.UserByName("during")
			if ok && v == "yes" && uerr == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("n%d after the upgrade: setting %q %v, user during: %v", i+1, v, ok, uerr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := s.UserByName("before"); err != nil {
			t.Fatalf("n%d lost a write: %v", i+1, err)
		}
		if raftstore.HaltedAt(s) != 0 {
			t.Fatalf("n%d still halted after the upgrade", i+1)
		}
	}
}
