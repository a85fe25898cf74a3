// Package raftstore owns seedbank's replicated state: users, torrents,
// stats, client rules, settings, members and small records. It is the only
// package that imports hashicorp/raft. Writes from any node are proposed to
// the leader (forwarded over the authenticated cluster port when this node
// follows) and return once applied locally; reads are local.
package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrNoLeader means no leader is reachable: an election is under way or this
// node is cut off from a quorum. Writes fail with it; reads still work.
var ErrNoLeader = errors.New("no raft leader reachable: the cluster is electing a leader or this node cannot reach a quorum; writes are refused, reads still work")

// Config sets up one Store. Zero values get the defaults of withDefaults.
type Config struct {
	// NodeID is the stable raft server id of this node (not its address).
	NodeID string
	// Dir holds raft/ (log, stable store, snapshots) and state.db.
	Dir string
	// BindAddr is the cluster listener (raft + forwarding), e.g. 127.0.0.1:7000.
	BindAddr string
	// AdvertiseAddr is how other nodes reach BindAddr; defaults to the bound address.
	AdvertiseAddr string
	// ClusterKey authenticates every cluster connection; at least 16 bytes.
	ClusterKey []byte
	// AcceptKeys are further keys accepted from connecting nodes, while the
	// cluster key is rotated; this node still proves ClusterKey.
	AcceptKeys [][]byte
	// Join lists cluster addresses of existing members. With no raft state
	// on disk and an empty Join, the node bootstraps a new cluster.
	Join []string

	ApplyTimeout       time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// MaxVoters caps raft voters; later joiners become non-voters.
	MaxVoters int

	Logger *slog.Logger
	// Dial, when set, opens outgoing cluster connections instead of a
	// plain TCP dial; tests use it to inject partitions.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// OnWrite, when set, is told each write's latency from proposal to
	// local apply, and its error (for metrics; must not block).
	OnWrite func(time.Duration, error)
	// OnApply, when set, is called after each applied entry (must not block).
	OnApply func(Change)
}

func (c *Config) withDefaults() {
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 1000 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 1000 * time.Millisecond
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = 500 * time.Millisecond
	}
	if c.MaxVoters == 0 {
		c.MaxVoters = 5
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Store is one node's handle on the replicated state. Its methods are safe
// for concurrent use.
type Store struct {
	cfg  Config
	log  *slog.Logger
	raft *raft.Raft
	fsm  *fsm
	logs *raftboltdb.BoltStore
	mux  *clusterMux
	rpc  *rpcClient
	addr string

	leaderCh chan bool
	done     chan struct{}
}

// Open starts the node's raft server on cfg.Dir. A data dir with raft state
// resumes it; an empty one bootstraps a new cluster, or joins one when
// cfg.Join is set. A directory that is corrupt or belongs to something else
// is refused with an error that says what is wrong.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.withDefaults()
	if !nodeIDRe.MatchString(cfg.NodeID) {
		return nil, fmt.Errorf("node id %q: must be 1-64 letters, digits, '_', '.', '-'", cfg.NodeID)
	}
	if len(cfg.ClusterKey) < 16 {
		return nil, errors.New("cluster key must be at least 16 bytes")
	}
	raftDir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", raftDir, err)
	}
	log := cfg.Logger.With("component", "raftstore")
	s := &Store{cfg: cfg, log: log, leaderCh: make(chan bool, 16), done: make(chan struct{})}

	var err error
	s.logs, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(raftDir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true},
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("raft log %s is locked by another process (is another seedbank running on this data dir?)", filepath.Join(raftDir, "raft.db"))
		}
		return nil, fmt.Errorf("open raft log %s (corrupt or not a raft log): %w", filepath.Join(raftDir, "raft.db"), err)
	}
	cleanup := []func(){func() { s.logs.Close() }}
	fail := func(err error) (*Store, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}

	hlog := newHCLogger(cfg.Logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		return fail(fmt.Errorf("open snapshot store: %w", err))
	}
	s.fsm, err = newFSM(filepath.Join(cfg.Dir, "state.db"), log)
	if err != nil {
		return fail(err)
	}
	s.fsm.onApply = cfg.OnApply
	cleanup = append(cleanup, func() { s.fsm.close() })

	hasState, err := raft.HasExistingState(s.logs, s.logs, snaps)
	if err != nil {
		return fail(fmt.Errorf("read raft state: %w", err))
	}
	if !hasState && s.fsm.applied.Load() > 0 {
		return fail(fmt.Errorf("data dir %s: state.db has applied index %d but the raft log is empty; the raft/ folder was lost or replaced, refusing to start (restore the folder, or move the data dir away to join the cluster afresh)", cfg.Dir, s.fsm.applied.Load()))
	}
	var snapIndex uint64
	if list, err := snaps.List(); err == nil && len(list) > 0 {
		snapIndex = list[0].Index
	}
	lastLog, err := s.logs.LastIndex()
	if err != nil {
		return fail(fmt.Errorf("read raft log: %w", err))
	}
	if applied := s.fsm.applied.Load(); applied > lastLog && applied > snapIndex {
		return fail(fmt.Errorf("data dir %s: state.db is ahead of the raft log (applied %d, log ends at %d); files from different nodes were mixed, refusing to start", cfg.Dir, applied, lastLog))
	}

	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return fail(fmt.Errorf("cluster listener on %s: %w", cfg.BindAddr, err))
	}
	advertise := cfg.AdvertiseAddr
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		ln.Close()
		return fail(fmt.Errorf("advertise address %q: %w", advertise, err))
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		ln.Close()
		return fail(fmt.Errorf("advertise address %q must name a reachable IP, not an unspecified one", advertise))
	}
	s.addr = adv.String()
	s.mux, err = newClusterMux(ln, adv, cfg.ClusterKey, log)
	if err == nil {
		s.mux.accept = cfg.AcceptKeys
	}
	if err == nil && cfg.Dial != nil {
		s.mux.dialTCP = cfg.Dial
	}
	if err != nil {
		ln.Close()
		return fail(err)
	}
	s.mux.forward = s.serveForward
	s.mux.backup = s.serveBackup
	s.mux.joinSecret = s.JoinSecret
	s.rpc = &rpcClient{mux: s.mux, timeout: cfg.ApplyTimeout + 5*time.Second}
	go s.mux.serve()
	cleanup = append(cleanup, func() { s.mux.close() })

	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{s.mux},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.NotifyCh = s.leaderCh
	// Our state file survives restarts and records its applied index, so
	// raft need not restore a snapshot on start unless the file is behind.
	rc.NoSnapshotRestoreOnStart = s.fsm.applied.Load() >= snapIndex
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("raft config: %w", err))
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, wideLogs{s.logs}, s.logs, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	go s.watchLeadership()

	if !hasState {
		if len(cfg.Join) == 0 {
			log.Info("bootstrapping a new cluster", "addr", s.addr)
			f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
				ID: rc.LocalID, Address: raft.ServerAddress(s.addr), Suffrage: raft.Voter,
			}}})
			if err := f.Error(); err != nil {
				s.Close()
				return nil, fmt.Errorf("bootstrap: %w", err)
			}
		} else if err := s.join(ctx, cfg.Join); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// join asks the members in addrs, in turn, to add this node, until one
// accepts or ctx ends.
func (s *Store) join(ctx context.Context, addrs []string) error {
	req := &forwardRequest{Op: "join", NodeID: s.cfg.NodeID, Addr: s.addr}
	var last error
	for attempt := 0; ; attempt++ {
		for _, a := range addrs {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
			resp, err := s.rpc.call(cctx, a, req)
			cancel()
			if err == nil {
				err = responseError(resp)
			}
			if err == nil {
				s.log.Info("joined cluster", "via", a)
				return nil
			}
			last = err
			if errors.Is(err, ErrClusterAuth) {
				return fmt.Errorf("join via %s: %w", a, err)
			}
			level := slog.LevelWarn
			if errors.Is(err, ErrNoLeader) {
				level = slog.LevelInfo // expected while the cluster elects
			}
			s.log.Log(ctx, level, "join attempt failed", "via", a, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w (last error: %v)", strings.Join(addrs, ","), ctx.Err(), last)
		case <-time.After(backoff(attempt)):
		}
	}
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 5)
	return min(d, time.Second)
}

// addServer is run on the leader for a join request. A node that rejoins
// with the same id (for example after losing its data dir) is removed first
// and re-added, so it is sent a snapshot rather than forking the cluster.
func (s *Store) addServer(id, addr string) (uint64, error) {
	if !nodeIDRe.MatchString(id) || addr == "" {
		return 0, invalid("node_id", "join needs a valid node id and address")
	}
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return 0, fmt.Errorf("read configuration: %w", err)
	}
	voters := 0
	for _, srv := range cf.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
		if srv.ID == raft.ServerID(id) || srv.Address == raft.ServerAddress(addr) {
			same := srv.ID == raft.ServerID(id) && srv.Address == raft.ServerAddress(addr)
			if srv.ID == raft.ServerID(s.cfg.NodeID) {
				if same {
					// The joiner is this leader: an earlier attempt added
					// it, the answer did not reach it, and it has been
					// elected since. Its join is done.
					return cf.Index(), nil
				}
				return 0, fmt.Errorf("node id %q or address %s is the leader's own", id, addr)
			}
			if same {
				s.log.Info("node rejoined with its id and address; resyncing", "id", id, "addr", addr)
			}
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				return 0, fmt.Errorf("remove stale server %s: %w", srv.ID, err)
			}
			if srv.Suffrage == raft.Voter {
				voters--
			}
		}
	}
	var f raft.IndexFuture
	if voters < s.cfg.MaxVoters {
		f = s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
	} else {
		f = s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
	}
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("add server %s: %w", id, leaderErr(err))
	}
	s.log.Info("added server", "id", id, "addr", addr, "voter", voters < s.cfg.MaxVoters)
	return f.Index(), nil
}

// UpdateServerAddress points the raft configuration at a member's new
// cluster address, keeping its vote (a node restarted on another address
// or host). Only the leader can; unchanged or unknown ids are a no-op.
func (s *Store) UpdateServerAddress(id, addr string) (bool, error) {
	if !nodeIDRe.MatchString(id) || addr == "" {
		return false, invalid("node_id", "an address update needs a valid node id and address")
	}
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return false, fmt.Errorf("read configuration: %w", err)
	}
	for _, srv := range cf.Configuration().Servers {
		if srv.ID != raft.ServerID(id) {
			continue
		}
		if srv.Address == raft.ServerAddress(addr) {
			return false, nil
		}
		var f raft.IndexFuture
		if srv.Suffrage == raft.Voter {
			f = s.raft.AddVoter(srv.ID, raft.ServerAddress(addr), 0, 0)
		} else {
			f = s.raft.AddNonvoter(srv.ID, raft.ServerAddress(addr), 0, 0)
		}
		if err := f.Error(); err != nil {
			return false, fmt.Errorf("update address of %s: %w", id, leaderErr(err))
		}
		s.log.Info("member moved to a new cluster address", "id", id, "from", string(srv.Address), "to", addr)
		return true, nil
	}
	return false, nil
}

func (s *Store) removeServer(id string) (uint64, error) {
	f := s.raft.RemoveServer(raft.ServerID(id), 0, 0)
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("remove server %s: %w", id, leaderErr(err))
	}
	return f.Index(), nil
}

func leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown) {
		return fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return err
}

func (s *Store) watchLeadership() {
	for {
		select {
		case leader := <-s.leaderCh:
			s.log.Info("leadership changed", "leader", leader)
		case <-s.done:
			return
		}
	}
}

// propose validates c, gets it applied by the leader and waits until this
// node has applied it. It retries while no leader is known, until ctx ends.
func (s *Store) propose(ctx context.Context, c command) error {
	if s.cfg.OnWrite == nil {
		return s.proposeOnce(ctx, c)
	}
	start := time.Now()
	err := s.proposeOnce(ctx, c)
	s.cfg.OnWrite(time.Since(start), err)
	return err
}

func (s *Store) proposeOnce(ctx context.Context, c command) error {
	data, err := encodeCommand(c)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.ApplyTimeout)
		defer cancel()
	}
	// Creates are idempotent in apply and other commands are safe to
	// repeat, so an attempt that failed ambiguously (leadership lost after
	// the entry was appended) may be retried.
	for attempt := 0; ; attempt++ {
		var idx uint64
		actx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
		if s.IsLeader() {
			idx, err = s.applyAsLeader(actx, data)
		} else {
			resp := s.forwardToLeader(actx, &forwardRequest{Op: "apply", Cmd: data})
			idx, err = resp.Index, responseError(resp)
		}
		cancel()
		if err == nil {
			return s.WaitApplied(ctx, idx)
		}
		if !errors.Is(err, ErrNoLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", ErrNoLeader, ctx.Err())
		case <-time.After(backoff(attempt)):
		}
	}
}

func (s *Store) applyAsLeader(ctx context.Context, data []byte) (uint64, error) {
	timeout := s.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return 0, ctx.Err()
		}
	}
	f := s.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return 0, leaderErr(err)
	}
	res, _ := f.Response().(*applyResult)
	if res != nil && res.Err != nil {
		return f.Index(), res.Err
	}
	return f.Index(), nil
}

// WaitApplied blocks until this node's FSM has applied index, or ctx ends.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	for {
		applied, ch := s.fsm.appliedWait()
		if applied >= index {
			return nil
		}
		if h := s.fsm.halted.Load(); h != nil && index >= h.index {
			return h.err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, applied, ctx.Err())
		case <-s.done:
			return errors.New("store closed")
		}
	}
}

// IsLeader reports whether this node is the raft leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's node id and cluster address, empty if unknown.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// NodeID returns this node's id.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// Addr returns this node's advertised cluster address.
func (s *Store) Addr() string { return s.addr }

// State returns this node's raft role: Leader, Follower, Candidate or Shutdown.
func (s *Store) State() string { return s.raft.State().String() }

// AppliedIndex returns the last log index this node's FSM applied.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// CommitIndex returns the last log index this node knows to be committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// LastContact is when this follower last heard from the leader.
func (s *Store) LastContact() time.Time { return s.raft.LastContact() }

// Ready reports whether a leader is known and this node has applied every
// entry it knows to be committed.
func (s *Store) Ready() (bool, string) {
	if err := s.fsm.haltErr(); err != nil {
		return false, err.Error()
	}
	if _, id := s.raft.LeaderWithID(); id == "" {
		return false, "no leader"
	}
	if c, a := s.raft.CommitIndex(), s.fsm.applied.Load(); a < c {
		return false, fmt.Sprintf("applying log: %d of %d", a, c)
	}
	return true, "ok"
}

// WaitForLeader blocks until some leader is known or ctx ends.
func (s *Store) WaitForLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, id := s.raft.LeaderWithID(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Server is one member of the raft configuration.
type Server struct {
	ID     string
	Addr   string
	Voter  bool
	Leader bool
}

// Servers returns the raft configuration as this node knows it.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	_, leader := s.raft.LeaderWithID()
	var out []Server
	for _, srv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(srv.ID), Addr: string(srv.Address),
			Voter: srv.Suffrage == raft.Voter, Leader: srv.ID == leader})
	}
	return out, nil
}

// RemoveServer removes a node from the raft configuration (via the leader).
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	resp := s.forwardOrLocal(ctx, &forwardRequest{Op: "remove", NodeID: id})
	if err := responseError(resp); err != nil {
		return err
	}
	return s.WaitApplied(ctx, resp.Index)
}

func (s *Store) forwardOrLocal(ctx context.Context, req *forwardRequest) forwardResponse {
	if s.IsLeader() {
		return s.handleForward(ctx, req)
	}
	return s.forwardToLeader(ctx, req)
}

// Leave hands leadership over if this node leads, then removes it from the
// cluster. The store should be closed afterwards.
func (s *Store) Leave(ctx context.Context) error {
	if s.IsLeader() {
		if servers, err := s.Servers(); err == nil && len(servers) > 1 {
			if err := s.raft.LeadershipTransfer().Error(); err != nil {
				s.log.Warn("leadership transfer failed", "err", err)
			}
			if err := s.WaitForLeader(ctx); err != nil {
				return err
			}
		}
	}
	for attempt := 0; ; attempt++ {
		resp := s.forwardOrLocal(ctx, &forwardRequest{Op: "remove", NodeID: s.cfg.NodeID})
		err := responseError(resp)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNoLeader) {
			return fmt.Errorf("leave: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leave: %w", err)
		case <-time.After(backoff(attempt)):
		}
	}
}

// Snapshot asks raft to take a snapshot now.
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the state file to w.
func (s *Store) Backup(w io.Writer) error {
	return s.view(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
}

// Close stops raft and releases the files. It does not leave the cluster.
func (s *Store) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	var errs []error
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if s.rpc != nil {
		s.rpc.pool.closeAll()
	}
	if s.mux != nil {
		s.mux.close()
	}
	if err := s.fsm.close(); err != nil {
		errs = append(errs, fmt.Errorf("close state: %w", err))
	}
	if err := s.logs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log: %w", err))
	}
	return errors.Join(errs...)
}

// newHCLogger routes raft's hclog output into slog.
func newHCLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.Info,
		Output:      slogWriter{log.With("component", "raft")},
		DisableTime: true,
	})
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	defer func() {
		if i := strings.Index(msg, "]"); i >= 0 && strings.HasPrefix(msg, "[") {
			msg = strings.TrimSpace(msg[i+1:])
		}
		w.log.Log(context.Background(), level, msg)
	}()
	switch {
	case strings.HasPrefix(msg, "[ERROR]"):
		level = slog.LevelError
	case strings.HasPrefix(msg, "[WARN]"):
		level = slog.LevelWarn
	case strings.HasPrefix(msg, "[DEBUG]"), strings.HasPrefix(msg, "[TRACE]"):
		level = slog.LevelDebug
	}
	return len(p), nil
}
