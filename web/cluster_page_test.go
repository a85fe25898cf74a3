package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// recordedCluster is a Cluster whose nodes are given and whose rotations
// are counted.
type recordedCluster struct {
	mu      sync.Mutex
	nodes   []ClusterNode
	secret  string
	rotated int
}

func (c *recordedCluster) Nodes() []ClusterNode { return c.nodes }
func (c *recordedCluster) JoinSecret() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secret
}
func (c *recordedCluster) RotateJoinSecret(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotated++
	c.secret = strings.Repeat("n", c.rotated) + "-secret"
	return c.secret, nil
}

func TestClusterPage(t *testing.T) {
	t.Parallel()
	cl := &recordedCluster{secret: "sbj_first", nodes: []ClusterNode{
		{ID: "lab-a", Institution: "Lab <A>", RaftRole: "leader", Leader: true, Gossip: "alive", Applied: 42, Peers: 7, Version: "1.2.3", Self: true, SiteURL: "https://a.example.org"},
		{ID: "lab-b", Institution: "Lab B", RaftRole: "follower", Gossip: "dead", LastContact: 90 * time.Second, Applied: 40, Version: "1.2.2"},
	}}
	e := newEnv(t, func(c *Config) { c.Cluster = cl })
	e.mkUser("admin", model.RoleAdmin)
	e.mkUser("mod", model.RoleModerator)

	mod := e.browser()
	mod.login("mod", "password-mod")
	wantStatus(t, mod.get("/admin/cluster"), http.StatusForbidden)
	wantStatus(t, mod.postRaw("/admin/cluster/join-secret", nil), http.StatusForbidden)

	b := e.browser()
	b.login("admin", "password-admin")
	r := b.get("/admin/cluster")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "lab-a", "Lab &lt;A&gt;", ">leader</span>", "this node", "lab-b", "dead", "1m30s ago", "42", "1.2.3", "sbj_first", `href="/admin/cluster"`)
	if strings.Contains(r.body, "Lab <A>") {
		t.Fatal("institution not escaped")
	}

	// Rotation needs the CSRF token, is audited, and shows the new secret.
	wantStatus(t, b.postRaw("/admin/cluster/join-secret", nil), http.StatusForbidden)
	if cl.rotated != 0 {
		t.Fatal("rotated without a CSRF token")
	}
	r = b.post("/admin/cluster", "/admin/cluster/join-secret", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if cl.rotated != 1 {
		t.Fatalf("rotations: %d", cl.rotated)
	}
	r = b.get(r.location())
	contains(t, r.body, "Join secret rotated", "n-secret")
	if strings.Contains(r.body, "sbj_first") {
		t.Fatal("old secret still shown")
	}
	contains(t, b.get("/admin/audit").body, "cluster.join_secret.rotate")
}
