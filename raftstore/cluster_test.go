package raftstore_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

// cluster is a set of real raftstore nodes on 127.0.0.1.
type cluster struct {
	t     *testing.T
	dirs  []string
	addrs []string
	nodes []*raftstore.Store // nil when stopped
}

func clusterConfig(id, dir string) raftstore.Config {
	c := raftstoretest.Config(id, dir)
	// Snapshot often and keep few trailing logs, so catching up really
	// goes through snapshots.
	c.SnapshotThreshold = 64
	c.SnapshotInterval = 100 * time.Millisecond
	c.TrailingLogs = 16
	return c
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i+1))
		cfg := clusterConfig(fmt.Sprintf("n%d", i+1), dir)
		if i > 0 {
			cfg.Join = []string{c.addrs[0]}
		}
		s, err := raftstore.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("start n%d: %v", i+1, err)
		}
		if i == 0 {
			if err := raftstoretest.WaitLeader(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		c.dirs = append(c.dirs, dir)
		c.addrs = append(c.addrs, s.Addr())
		c.nodes = append(c.nodes, s)
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			if s != nil {
				s.Close()
			}
		}
	})
	c.waitConverged(ctx)
	return c
}

// restart starts node i again on its data dir and address.
func (c *cluster) restart(i int, join bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := clusterConfig(fmt.Sprintf("n%d", i+1), c.dirs[i])
	cfg.BindAddr = c.addrs[i]
	if join {
		for j, a := range c.addrs {
			if j != i {
				cfg.Join = append(cfg.Join, a)
			}
		}
	}
	s, err := raftstore.Open(ctx, cfg)
	if err != nil {
		return err
	}
	c.nodes[i] = s
	return nil
}

func (c *cluster) stop(i int) {
	c.nodes[i].Close()
	c.nodes[i] = nil
}

func (c *cluster) leader() (int, *raftstore.Store) {
	for i, s := range c.nodes {
		if s != nil && s.IsLeader() {
			return i, s
		}
	}
	return -1, nil
}

func (c *cluster) follower() *raftstore.Store {
	for _, s := range c.nodes {
		if s != nil && !s.IsLeader() {
			return s
		}
	}
	return nil
}

// waitConverged waits until every running node has applied the leader's
// last index.
func (c *cluster) waitConverged(ctx context.Context) {
	c.t.Helper()
	for {
		_, l := c.leader()
		if l != nil {
			want := l.AppliedIndex()
			ok := true
			for _, s := range c.nodes {
				if s != nil && s.AppliedIndex() < want {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("cluster did not converge: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func randomUser(name string) model.User {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := binary.BigEndian.Uint64(b[:]) | 1
	var pk [16]byte
	_, _ = rand.Read(pk[:])
	return model.User{ID: id, Username: name, Email: fmt.Sprintf("%s-%x@example.org", name, b[:3]), PasswordHash: "h",
		Passkey: hex.EncodeToString(pk[:]), Role: model.RoleMember, Enabled: true, Created: time.Now().UnixMilli()}
}

func TestClusterFollowerWriteReadableEverywhere(t *testing.T) {
	c := newCluster(t, 3)
	f := c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := randomUser("alice")
	if err := f.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// Read-your-writes on the node that was called, without waiting.
	if got, err := f.UserByName("alice"); err != nil || got.ID != u.ID {
		t.Fatalf("follower read after write: %+v %v", got, err)
	}
	c.waitConverged(ctx)
	for i, s := range c.nodes {
		if ref, ok := s.UserByPasskey(u.Passkey); !ok || ref.ID != u.ID {
			t.Fatalf("node %d: passkey index %+v %v", i+1, ref, ok)
		}
	}
	// Apply errors cross the forwarding channel as the same sentinel.
	if err := f.CreateUser(ctx, randomUser("ALICE")); !errors.Is(err, raftstore.ErrUsernameTaken) {
		t.Fatalf("duplicate via follower: %v", err)
	}
}

func TestClusterLeaderDeathAndCatchUp(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		if err := c.nodes[i%3].PutSetting(ctx, fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	li, _ := c.leader()
	killed := time.Now()
	c.stop(li)

	// A surviving node takes writes again once a new leader is elected.
	var writer *raftstore.Store
	for _, s := range c.nodes {
		if s != nil {
			writer = s
			break
		}
	}
	if err := writer.PutSetting(ctx, "after-failover", "yes"); err != nil {
		t.Fatalf("write after leader death: %v", err)
	}
	took := time.Since(killed)
	t.Logf("writes resumed %v after the leader died (election timeout 200ms)", took)
	if took > 5*time.Second {
		t.Fatalf("failover took %v", took)
	}

	// Many writes while the old leader is down, so the survivors snapshot
	// and compact past what the old leader has.
	for i := 0; i < 300; i++ {
		u := randomUser(fmt.Sprintf("u%d", i))
		if err := writer.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := c.restart(li, false); err != nil {
		t.Fatalf("restart old leader: %v", err)
	}
	c.waitConverged(ctx)
	old := c.nodes[li]
	if v, ok := old.Setting("after-failover"); !ok || v != "yes" {
		t.Fatal("restarted node missed a write")
	}
	if n := old.UserCount(); n != 300 {
		t.Fatalf("restarted node has %d users, want 300", n)
	}
	if u, err := old.UserByName("u299"); err != nil {
		t.Fatal(err)
	} else if _, ok := old.UserByPasskey(u.Passkey); !ok {
		t.Fatal("restarted node's passkey index not rebuilt")
	}
}

func TestClusterEmptyDataDirRejoinsCleanly(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 100; i++ {
		if err := c.nodes[0].PutSetting(ctx, fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// Lose a follower's disk.
	f := 1
	if c.nodes[1].IsLeader() {
		f = 2
	}
	c.stop(f)
	c.dirs[f] = filepath.Join(t.TempDir(), "fresh")
	if err := c.restart(f, true); err != nil {
		t.Fatalf("rejoin with empty dir: %v", err)
	}
	c.waitConverged(ctx)
	if v, ok := c.nodes[f].Setting("k99"); !ok || v != "v" {
		t.Fatal("rejoined node lacks state")
	}
	// The rejoined node learns the configuration with the log or the
	// snapshot; under load that may trail the state by a moment.
	var servers []raftstore.Server
	for {
		var err error
		if servers, err = c.nodes[f].Servers(); err == nil && len(servers) == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("configuration has %d servers after rejoin: %+v (%v)", len(servers), servers, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Writes still commit through the rejoined node: one cluster, no fork.
	if err := c.nodes[f].PutSetting(ctx, "post", "1"); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(ctx)
	for i, s := range c.nodes {
		if _, ok := s.Setting("post"); !ok {
			t.Fatalf("node %d missed write", i+1)
		}
	}
}

func TestClusterConcurrentRegistrationsOneWinner(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const attempts, names = 1000, 50
	var mu sync.Mutex
	wins := map[string]int{}
	var other []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("racer%d", i%names)
			err := c.nodes[i%3].CreateUser(ctx, randomUser(name))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins[name]++
			case errors.Is(err, raftstore.ErrUsernameTaken):
			default:
				other = append(other, err)
			}
		}(i)
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
	}
	if len(wins) != names {
		t.Fatalf("%d names won, want %d", len(wins), names)
	}
	for name, n := range wins {
		if n != 1 {
			t.Fatalf("%s won %d times", name, n)
		}
	}
	c.waitConverged(ctx)
	for i, s := range c.nodes {
		if n := s.UserCount(); n != names {
			t.Fatalf("node %d has %d users", i+1, n)
		}
	}
}

func TestClusterWrongKeyCannotJoinOrRead(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[0].PutSetting(ctx, "secret", "x"); err != nil {
		t.Fatal(err)
	}
	cfg := clusterConfig("intruder", t.TempDir())
	cfg.ClusterKey = []byte("some-other-cluster-key-32-bytes!")
	cfg.Join = []string{c.addrs[0]}
	s, err := raftstore.Open(ctx, cfg)
	if err == nil {
		s.Close()
		t.Fatal("node with the wrong key joined")
	}
	if !errors.Is(err, raftstore.ErrClusterAuth) {
		t.Fatalf("want ErrClusterAuth, got %v", err)
	}
	servers, _ := c.nodes[0].Servers()
	if len(servers) != 3 {
		t.Fatalf("configuration changed: %+v", servers)
	}
}

func TestInvalidWriteLeavesLogClean(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := c.follower()
	c.waitConverged(ctx)
	before := f.AppliedIndex()
	bad := randomUser("x y")
	err := f.CreateUser(ctx, bad)
	var v *raftstore.ValidationError
	if !errors.As(err, &v) || v.Field != "user.username" {
		t.Fatalf("want validation error on user.username, got %v", err)
	}
	huge := model.Torrent{ID: model.InfoHash{1}, InfoHashV1: model.InfoHash{1}.String(), Name: "x",
		Metainfo: make([]byte, raftstore.MaxCommandBytes), Files: []model.File{{Path: "a", Length: 1}}, TotalSize: 1, Uploader: 1, Created: 1}
	if err := f.PutTorrent(ctx, huge); !raftstore.IsValidationError(err) {
		t.Fatalf("oversized: %v", err)
	}
	for i, s := range c.nodes {
		if s.AppliedIndex() > before {
			t.Fatalf("node %d: log grew from %d to %d after refused writes", i+1, before, s.AppliedIndex())
		}
	}
}
