package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

// cluster3 starts a real three-node raft cluster.
func cluster3(t *testing.T) []*raftstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []*raftstore.Store
	for i := 1; i <= 3; i++ {
		cfg := raftstoretest.Config(fmt.Sprintf("n%d", i), t.TempDir())
		if i > 1 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		s, err := raftstore.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open node %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		if i == 1 {
			must(t, raftstoretest.WaitLeader(ctx, s))
		}
		nodes = append(nodes, s)
	}
	for _, s := range nodes {
		must(t, s.WaitForLeader(ctx))
	}
	return nodes
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionAcrossNodes(t *testing.T) {
	t.Parallel()
	nodes := cluster3(t)
	e1 := newEnvOn(t, nodes[0], nil)
	e2 := newEnvOn(t, nodes[1], nil)
	e3 := newEnvOn(t, nodes[2], nil)
	e1.mkUser("admin", model.RoleAdmin)
	u := e1.mkUser("quinn", model.RoleMember)
	eventually(t, "user on node 2", func() bool { _, err := nodes[1].User(u.ID); return err == nil })

	// Log in on node 1; the same cookie works on node 2.
	b1 := e1.browser()
	b1.login("quinn", "password-quinn")
	b2 := newBrowser(t, e2.ts.URL)
	u1, _ := url.Parse(e1.ts.URL)
	u2, _ := url.Parse(e2.ts.URL)
	b2.c.Jar.SetCookies(u2, b1.c.Jar.Cookies(u1))
	r := b2.get("/me")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "quinn")

	// A write through node 2's site (a follower or the leader) lands everywhere.
	wantStatus(t, b2.post("/me/passkey", "/me/passkey/reset", nil), http.StatusSeeOther)
	eventually(t, "old passkey gone on node 3", func() bool { _, ok := nodes[2].UserByPasskey(u.Passkey); return !ok })

	// The admin disables the user through node 1: node 2 refuses the session.
	ab := e1.browser()
	ab.login("admin", "password-admin")
	wantStatus(t, ab.post("/admin/users", fmt.Sprintf("/admin/users/%d/enabled", u.ID), url.Values{"enabled": {"0"}}), http.StatusSeeOther)
	eventually(t, "node 2 refuses the disabled user's session", func() bool {
		b := newBrowser(t, e2.ts.URL)
		b.c.Jar.SetCookies(u2, b1.c.Jar.Cookies(u1))
		return b.get("/me").status == http.StatusSeeOther
	})
	wantStatus(t, b1.get("/me"), http.StatusSeeOther)

	// Log out everywhere on node 3 ends a node-1 session.
	u = e1.user("quinn")
	u.Enabled = true
	e1.update(u)
	b1 = e1.browser()
	b1.login("quinn", "password-quinn")
	eventually(t, "enabled on node 3", func() bool { x, err := nodes[2].User(u.ID); return err == nil && x.Enabled })
	b3 := e3.browser()
	b3.login("quinn", "password-quinn")
	wantStatus(t, b3.post("/me", "/me/logout-everywhere", nil), http.StatusSeeOther)
	eventually(t, "node 1 refuses the session", func() bool { return b1.get("/me").status == http.StatusSeeOther })
}
