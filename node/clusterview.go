package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/seedbank/seedbank/gossip"
	"github.com/seedbank/seedbank/web"
)

// Version is this build's version, shown on the Cluster page and sent in
// gossip metadata; the seedbank command sets it from its build flags.
var Version = "dev"

// gossipStatus is what this node reports about itself in gossip.
func (n *Node) gossipStatus() gossip.Status {
	// Called by memberlist whenever it sends this node's metadata: Len
	// visits swarms, not every peer.
	return gossip.Status{RaftState: n.store.State(), Applied: n.store.AppliedIndex(), Peers: n.tracker.Peers().Len()}
}

// clusterView feeds the admin Cluster page from raft's configuration, the
// replicated member records and gossip.
type clusterView struct{ n *Node }

func (v clusterView) JoinSecret() string { return v.n.store.JoinSecret() }

func (v clusterView) RotateJoinSecret(ctx context.Context) (string, error) {
	return v.n.store.RotateJoinSecret(ctx)
}

func (v clusterView) Nodes() []web.ClusterNode {
	n := v.n
	byID := map[string]*web.ClusterNode{}
	get := func(id string) *web.ClusterNode {
		if c, ok := byID[id]; ok {
			return c
		}
		c := &web.ClusterNode{ID: id, RaftRole: "not in raft", Gossip: "unknown", LastContact: -1}
		byID[id] = c
		return c
	}
	servers, err := n.store.Servers()
	if err != nil {
		n.log.Warn("cluster page: raft configuration", "err", err)
	}
	for _, s := range servers {
		c := get(s.ID)
		c.ClusterAddr = s.Addr
		c.Leader = s.Leader
		switch {
		case s.Leader:
			c.RaftRole = "leader"
		case s.Voter:
			c.RaftRole = "follower"
		default:
			c.RaftRole = "non-voter"
		}
	}
	for _, m := range n.store.Members() {
		c := get(m.NodeID)
		c.Institution, c.SiteURL, c.AnnounceURL = m.Institution, m.SiteURL, m.AnnounceURL
		if c.ClusterAddr == "" {
			c.ClusterAddr = m.ClusterAddr
		}
	}
	if n.gossip != nil {
		for _, gm := range n.gossip.Members() {
			c := get(gm.NodeID)
			c.GossipAddr = gm.Addr
			c.Gossip = gm.State.String()
			if !gm.Updated.IsZero() {
				c.LastContact = time.Since(gm.Updated)
			}
			c.Applied, c.Peers, c.Version = gm.Status.Applied, gm.Status.Peers, gm.Version
			if c.Institution == "" {
				c.Institution = gm.Institution
			}
			// A voter reports whether it is a candidate; the leader is
			// the one raft names, whatever a stale report says.
			if st := strings.ToLower(gm.Status.RaftState); st == "candidate" && c.RaftRole == "follower" {
				c.RaftRole = st
			}
		}
	}
	self := get(n.id)
	st := n.gossipStatus()
	self.Self, self.LastContact, self.Applied, self.Peers, self.Version = true, 0, st.Applied, st.Peers, Version
	self.Gossip = "alive"
	if n.gossip != nil {
		self.GossipAddr = n.GossipAddr()
	}
	out := make([]web.ClusterNode, 0, len(byID))
	for _, c := range byID {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b web.ClusterNode) int { return strings.Compare(a.ID, b.ID) })
	return out
}
