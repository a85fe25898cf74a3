package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/seedbank/seedbank/clusterkey"
	"github.com/seedbank/seedbank/gossip"
	"github.com/seedbank/seedbank/raftstore"
)

// Cluster life cycle: gossip starts after raft and the tracker. A node
// records its gossip address in the replicated state (record kind
// gossipRecordKind, key = node id), so a node that joined raft with --join
// finds every member's gossip address without another flag, and every node
// keeps re-joining members that gossip does not see alive (first join,
// restarts, partitions that healed). The leader removes a server that
// gossip has seen dead or gone for DeadNodeGrace, never below quorum.

// gossipRecordKind is the replicated record namespace of gossip addresses.
const gossipRecordKind = "gossip_addr"

// gossipPortOffset makes the default gossip port (no --gossip, cluster port
// not kernel-chosen) the cluster port + 946: 7946 for the default 7000.
const gossipPortOffset = 946

// Hooks are seams for tests: fault injection and fast timing. Production
// configs leave them nil.
type Hooks struct {
	// ClusterDial replaces the dialer of raft and forwarding connections.
	ClusterDial func(ctx context.Context, addr string) (net.Conn, error)
	// Gossip adjusts the gossip configuration before gossip starts.
	Gossip func(*gossip.Config)
	// ClusterTick is the period of the cluster loop (re-joins, dead-node
	// checks). Default: a quarter of DeadNodeGrace, between 100ms and 1s.
	ClusterTick time.Duration
}

func (n *Node) hooks() Hooks {
	if n.cfg.Hooks != nil {
		return *n.cfg.Hooks
	}
	return Hooks{}
}

// gossipBind is the gossip listen address: --gossip, else the cluster host
// with the default port (or port 0 when the cluster port is 0).
func (n *Node) gossipBind() string {
	if n.cfg.Gossip != "" {
		return n.cfg.Gossip
	}
	host, port, _ := net.SplitHostPort(n.cfg.ClusterAddr) // validated
	if p, err := strconv.Atoi(port); err == nil && p != 0 {
		// 7000 -> 7946; a second node on one host (7001) gets 7947.
		if p+gossipPortOffset <= 65535 {
			port = strconv.Itoa(p + gossipPortOffset)
		}
	}
	return net.JoinHostPort(host, port)
}

// startGossip starts membership and peer replication on the tracker's peer
// table. Joining happens in the cluster loop.
func (n *Node) startGossip(keys clusterkey.Ring) error {
	advertise := n.cfg.GossipAdvertise
	if host, _, err := net.SplitHostPort(n.cfg.Advertise); advertise == "" && err == nil {
		// Other nodes reach this host at the cluster's advertised address;
		// gossip's bound port is filled in.
		advertise = net.JoinHostPort(host, "0")
	}
	cfg := gossip.Config{
		NodeID:        n.id,
		BindAddr:      n.gossipBind(),
		AdvertiseAddr: advertise,
		ClusterKey:    keys.Primary(),
		AcceptKeys:    keys.Accepted(),
		Meta: gossip.Meta{
			ClusterAddr: n.store.Addr(),
			SiteURL:     n.SiteURL(),
			AnnounceURL: n.AnnounceURL(),
			Institution: n.cfg.Institution,
			Version:     Version,
		},
		Peers:  gossip.TrackerPeers(n.tracker),
		Status: n.gossipStatus,
		Logger: n.log,
	}
	if h := n.hooks(); h.Gossip != nil {
		h.Gossip(&cfg)
	}
	g, err := gossip.New(cfg)
	if err != nil {
		return err
	}
	n.gossip = g
	return nil
}

// Gossip returns the node's gossip layer.
func (n *Node) Gossip() *gossip.Gossip { return n.gossip }

// GossipAddr is the advertised gossip address.
func (n *Node) GossipAddr() string { return n.gossip.Addr() }

// clusterLoop runs until ctx ends: it records this node's gossip address,
// re-joins members gossip does not see alive and, on the leader, removes
// servers that stayed dead past the grace period.
func (n *Node) clusterLoop(ctx context.Context) {
	tick := n.hooks().ClusterTick
	if tick <= 0 {
		tick = min(max(n.cfg.DeadNodeGrace/4, 100*time.Millisecond), time.Second)
	}
	var joining atomic.Bool
	failedSince := map[string]time.Time{}
	registered := false
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if !registered {
			registered = n.registerGossipAddr(ctx)
		}
		if targets := n.rejoinTargets(); len(targets) > 0 && joining.CompareAndSwap(false, true) {
			n.goRun("gossip join", func() error {
				defer joining.Store(false)
				if _, err := n.gossip.Join(targets); err != nil {
					n.log.Debug("gossip join", "targets", targets, "err", err)
				}
				return nil
			})
		}
		if n.store.IsLeader() {
			n.followAddressChanges()
		}
		if n.store.IsLeader() && n.cfg.DeadNodeGrace > 0 {
			n.removeDeadServers(ctx, failedSince)
		} else {
			clear(failedSince)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registerGossipAddr writes this node's gossip address into the replicated
// state unless it is there already, and reports whether it is.
func (n *Node) registerGossipAddr(ctx context.Context) bool {
	addr := n.gossip.Addr()
	if v, err := n.store.Record(gossipRecordKind, n.id); err == nil && string(v) == addr {
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.store.PutRecord(wctx, gossipRecordKind, n.id, []byte(addr), false); err != nil {
		if ctx.Err() == nil {
			n.log.Warn("record gossip address", "err", err)
		}
		return false
	}
	return true
}

// followAddressChanges updates, on the leader, the raft address of a
// member that gossip (encrypted with the cluster key, so only members can
// speak there) reports at another cluster address: a node restarted on a
// new address or host rejoins by itself instead of being cut off.
func (n *Node) followAddressChanges() {
	servers, err := n.store.Servers()
	if err != nil {
		return
	}
	for _, s := range servers {
		if s.ID == n.id {
			continue
		}
		m, ok := n.gossip.Member(s.ID)
		if !ok || m.State != gossip.StateAlive || m.ClusterAddr == "" || m.ClusterAddr == s.Addr {
			continue
		}
		if _, err := n.store.UpdateServerAddress(s.ID, m.ClusterAddr); err != nil {
			n.log.Warn("update a member's cluster address", "member", s.ID, "addr", m.ClusterAddr, "err", err)
		}
	}
}

// rejoinTargets returns the gossip addresses worth joining now: --gossip-join
// while this node sees no other member, and the recorded addresses of raft
// servers that gossip does not see alive.
func (n *Node) rejoinTargets() []string {
	var out []string
	if n.gossip.NumAlive() <= 1 {
		out = append(out, n.cfg.GossipJoin...)
	}
	servers, err := n.store.Servers()
	if err != nil {
		return out
	}
	for _, s := range servers {
		if s.ID == n.id {
			continue
		}
		if m, ok := n.gossip.Member(s.ID); ok && m.State == gossip.StateAlive {
			continue
		}
		if v, err := n.store.Record(gossipRecordKind, s.ID); err == nil && len(v) > 0 {
			out = append(out, string(v))
		}
	}
	return out
}

// removeDeadServers removes, on the leader, raft servers that gossip has not
// seen alive for DeadNodeGrace (dead, left, or never seen), like Consul's
// autopilot CleanupDeadServers. A voter is removed only if the voters gossip
// sees alive still form a quorum of the configuration without it.
func (n *Node) removeDeadServers(ctx context.Context, failedSince map[string]time.Time) {
	servers, err := n.store.Servers()
	if err != nil {
		return
	}
	now := time.Now()
	voters, failedVoters := 0, 0
	present := map[string]bool{}
	var due []raftstore.Server
	for _, s := range servers {
		present[s.ID] = true
		if s.Voter {
			voters++
		}
		if s.ID == n.id {
			continue
		}
		if m, ok := n.gossip.Member(s.ID); ok && m.State == gossip.StateAlive {
			delete(failedSince, s.ID)
			continue
		}
		if s.Voter {
			failedVoters++
		}
		since, ok := failedSince[s.ID]
		if !ok {
			failedSince[s.ID] = now
			n.log.Info("cluster member not alive in gossip; will remove it after the grace period", "member", s.ID, "grace", n.cfg.DeadNodeGrace)
			continue
		}
		if now.Sub(since) >= n.cfg.DeadNodeGrace {
			due = append(due, s)
		}
	}
	for id := range failedSince {
		if !present[id] {
			delete(failedSince, id)
		}
	}
	sort.Slice(due, func(i, j int) bool { return failedSince[due[i].ID].Before(failedSince[due[j].ID]) })
	for _, s := range due {
		if s.Voter && !canRemoveVoter(voters, failedVoters) {
			n.log.Warn("not removing dead member: the voters left alive would not form a quorum",
				"member", s.ID, "voters", voters, "alive_voters", voters-failedVoters)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		err := n.removeServer(rctx, s.ID)
		cancel()
		if err != nil {
			n.log.Warn("remove dead member", "member", s.ID, "err", err)
			return
		}
		n.log.Info("removed dead member from the cluster", "member", s.ID, "dead_for", now.Sub(failedSince[s.ID]).Round(time.Millisecond))
		delete(failedSince, s.ID)
		if s.Voter {
			voters--
			failedVoters--
		}
	}
}

// canRemoveVoter reports whether one of failed dead voters (of voters in
// the configuration) may be removed: the voters alive must form a quorum of
// the configuration without it.
func canRemoveVoter(voters, failed int) bool {
	after := voters - 1
	return after >= 1 && voters-failed >= after/2+1
}

// removeServer takes node id out of raft, then forgets its member record,
// gossip address and gossip state.
func (n *Node) removeServer(ctx context.Context, id string) error {
	if err := n.store.RemoveServer(ctx, id); err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	var errs []error
	if err := n.store.RemoveMember(ctx, id); err != nil {
		errs = append(errs, fmt.Errorf("remove member record: %w", err))
	}
	if err := n.store.DeleteRecord(ctx, gossipRecordKind, id); err != nil && !errors.Is(err, raftstore.ErrNotFound) {
		errs = append(errs, fmt.Errorf("remove gossip address record: %w", err))
	}
	n.gossip.Forget(id)
	return errors.Join(errs...)
}

// RemoveFromCluster removes node id for good, through any member: from the
// raft configuration, its member record (new .torrent files stop listing
// its announce URL) and its recorded gossip address. It is what the leader
// does to a node dead past DeadNodeGrace, for an operator who will not wait.
func RemoveFromCluster(ctx context.Context, c *raftstore.Client, id string) error {
	if err := c.RemoveServer(ctx, id); err != nil {
		return fmt.Errorf("remove %s from raft: %w", id, err)
	}
	if err := c.RemoveMember(ctx, id); err != nil {
		return fmt.Errorf("remove %s's member record: %w", id, err)
	}
	if err := c.DeleteRecord(ctx, gossipRecordKind, id); err != nil && !errors.Is(err, raftstore.ErrNotFound) {
		return fmt.Errorf("remove %s's gossip address: %w", id, err)
	}
	return nil
}
