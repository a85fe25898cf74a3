package web

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

// While the cluster key is rotated, nodes sign with different keys; a node
// that accepts the other key keeps the sessions, CSRF tokens and emailed
// links made by a node that has not switched (or already has).
func TestSessionsSurviveKeyRotation(t *testing.T) {
	t.Parallel()
	st := raftstoretest.Single(t)
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	onOld := newEnvOn(t, st, func(c *Config) { c.SessionKey = oldKey })
	rotating := newEnvOn(t, st, func(c *Config) { c.SessionKey, c.AcceptSessionKeys = newKey, [][]byte{oldKey} })
	done := newEnvOn(t, st, func(c *Config) { c.SessionKey = newKey })
	onOld.mkUser("quinn", model.RoleMember)

	b := onOld.browser()
	b.login("quinn", "password-quinn")
	token := b.token("/me")
	carry := func(e *env) *browser {
		nb := newBrowser(t, e.ts.URL)
		from, _ := url.Parse(onOld.ts.URL)
		to, _ := url.Parse(e.ts.URL)
		nb.c.Jar.SetCookies(to, b.c.Jar.Cookies(from))
		return nb
	}
	r := carry(rotating).get("/me")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "quinn")
	// A form rendered by the old node posts to the rotating one.
	r = carry(rotating).postRaw("/me/passkey/reset", url.Values{"csrf": {token}})
	wantStatus(t, r, http.StatusSeeOther)

	// Once the old key is dropped, its sessions end (users log in again).
	r = carry(done).get("/me")
	if r.status == http.StatusOK {
		t.Fatal("a node without the old key accepted its session")
	}

	// An emailed reset link made by the old node works on the rotating one.
	wantStatus(t, onOld.browser().post("/password/forgot", "/password/forgot", url.Values{"email": {"quinn@example.org"}}), http.StatusSeeOther)
	link := onOld.mail.last(t).link(t)
	u, _ := url.Parse(link)
	r = newBrowser(t, rotating.ts.URL).get(u.RequestURI())
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "password")
}
