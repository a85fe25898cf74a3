package web

import (
	"context"
	"net/http"
	"time"
)

// ClusterNode is one node as the admin Cluster page shows it.
type ClusterNode struct {
	ID          string
	Institution string
	SiteURL     string
	AnnounceURL string
	ClusterAddr string
	GossipAddr  string
	// RaftRole is "leader", "follower", "candidate", "non-voter" or
	// "not in raft" (known to gossip only).
	RaftRole string
	Leader   bool
	// Gossip is the node's membership state: alive, suspect, dead, left.
	Gossip string
	// LastContact is how long ago this node last heard from it; negative
	// when never.
	LastContact time.Duration
	Applied     uint64
	Peers       int
	Version     string
	Self        bool
}

// Cluster is what the admin Cluster page needs from the node; optional
// (Config.Cluster), the page says so when it is missing.
type Cluster interface {
	Nodes() []ClusterNode
	JoinSecret() string
	RotateJoinSecret(ctx context.Context) (string, error)
}

type clusterData struct {
	Nodes      []ClusterNode
	JoinSecret string
	Missing    bool
}

func (s *Server) clusterPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Cluster")
	d := clusterData{Missing: s.cfg.Cluster == nil}
	if c := s.cfg.Cluster; c != nil {
		d.Nodes = c.Nodes()
		d.JoinSecret = c.JoinSecret()
	}
	p.Data = d
	s.render(w, http.StatusOK, "cluster", p)
}

func (s *Server) rotateJoinSecret(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Cluster == nil {
		s.fail(w, r, http.StatusNotFound, "This site is not connected to a cluster.")
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if _, err := s.cfg.Cluster.RotateJoinSecret(ctx); err != nil {
		s.storeFailed(w, r, "rotating the join secret", err)
		return
	}
	s.audit(ctx, viewer(r), "cluster.join_secret.rotate", "cluster", "")
	redirectOK(w, r, "/admin/cluster", "join-secret")
}

// ago formats a last-contact duration for the Cluster page.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d < time.Second:
		return "now"
	default:
		return d.Round(time.Second).String() + " ago"
	}
}
