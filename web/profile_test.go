package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, p := range []string{"/", "/login", "/static/site.css", "/nope"} {
		r := e.browser().get(p)
		h := r.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows unsafe-inline", p)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", p, h)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS without TLS", p)
		}
	}
	r := e.browser().get("/static/site.css")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Fatalf("css: %d %s", r.status, r.header.Get("Content-Type"))
	}
	wantStatus(t, e.browser().get("/nope"), http.StatusNotFound)
	// No inline style or script anywhere in the pages.
	body := e.browser().get("/register").body
	for _, bad := range []string{"style=", "<style", "<script", "onclick"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	contains(t, body, `name="viewport"`)

	tls := newEnv(t, func(c *Config) { c.TLS = true })
	r = tls.browser().get("/login")
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS with TLS")
	}
	if c := r.header.Get("Set-Cookie"); !strings.Contains(c, "__Host-sb_session=") || !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("cookie %q", c)
	}
}

func TestSessionChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.mkUser("ivy", model.RoleMember)
	b := e.browser()
	b.login("ivy", "password-ivy")
	wantStatus(t, b.get("/me"), http.StatusOK)
	r404 := b.get("/no/such/page")
	wantStatus(t, r404, http.StatusNotFound)
	contains(t, r404.body, `<a href="/me">ivy</a>`)
	wantStatus(t, b.get("/login"), http.StatusSeeOther) // already logged in

	// A forged or tampered cookie is anonymous.
	jar := b.c.Jar
	base, _ := url.Parse(e.ts.URL)
	for _, c := range jar.Cookies(base) {
		if c.Name == "sb_session" {
			c2 := *c
			c2.Value = strings.Replace(c.Value, ".", "x.", 1)
			fb := e.browser()
			fb.c.Jar.SetCookies(base, []*http.Cookie{&c2})
			wantStatus(t, fb.get("/me"), http.StatusSeeOther)
		}
	}

	// Disabled user: logged out at once.
	u = e.user("ivy")
	u.Enabled = false
	e.update(u)
	r := b.get("/me")
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.location(), "/login") {
		t.Fatalf("redirect %q", r.location())
	}
	u.Enabled = true
	e.update(u)
	// The old session stays dead: it was replaced by an anonymous one.
	wantStatus(t, b.get("/me"), http.StatusSeeOther)

	// Expired session.
	b.login("ivy", "password-ivy")
	e.clock.add(15 * 24 * time.Hour)
	wantStatus(t, b.get("/me"), http.StatusSeeOther)
}

func TestLogoutEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("jack", model.RoleMember)
	a, b := e.browser(), e.browser()
	a.login("jack", "password-jack")
	b.login("jack", "password-jack")
	wantStatus(t, a.post("/me", "/me/logout-everywhere", nil), http.StatusSeeOther)
	wantStatus(t, a.get("/me"), http.StatusSeeOther)
	wantStatus(t, b.get("/me"), http.StatusSeeOther)
	if e.user("jack").SessionEpoch != 1 {
		t.Fatal("epoch not bumped")
	}
	a.login("jack", "password-jack")
	wantStatus(t, a.get("/me"), http.StatusOK)

	// Plain logout ends only this browser's session.
	b.login("jack", "password-jack")
	wantStatus(t, a.post("/me", "/logout", nil), http.StatusSeeOther)
	wantStatus(t, a.get("/me"), http.StatusSeeOther)
	wantStatus(t, b.get("/me"), http.StatusOK)
}

var passkeyRe = regexp.MustCompile(`<code id="passkey">([0-9a-f]{32})</code>`)

func TestProfileAndPasskey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.mkUser("kim", model.RoleMember)
	e.mkUser("lee", model.RoleMember)
	must(t, e.st.CommitStats(context.Background(), model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{
		{UserID: u.ID, Torrent: model.InfoHash{1}, Uploaded: 3 << 30, Downloaded: 2 << 30, Snatches: 4}}}))
	b := e.browser()
	// Profiles need a login.
	wantStatus(t, b.get("/user/kim"), http.StatusSeeOther)
	b.login("kim", "password-kim")
	r := b.get("/me")
	contains(t, r.body, "kim", "member", "3.00 GiB", "2.00 GiB", "1.50", "<dd>4</dd>", time.Now().UTC().Format("2006"))
	if strings.Contains(r.body, u.Passkey) {
		t.Fatal("passkey shown on the profile page")
	}
	r = b.get("/user/lee")
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(r.body, "lee@example.org") {
		t.Fatal("other member's email shown")
	}
	wantStatus(t, b.get("/user/nobody"), http.StatusNotFound)

	r = b.get("/me/passkey")
	m := passkeyRe.FindStringSubmatch(r.body)
	if m == nil || m[1] != u.Passkey {
		t.Fatalf("passkey page does not show the passkey")
	}
	// CSRF: no reset without the token.
	wantStatus(t, b.postRaw("/me/passkey/reset", nil), http.StatusForbidden)
	if e.user("kim").Passkey != u.Passkey {
		t.Fatal("passkey changed without CSRF token")
	}
	r = b.post("/me/passkey", "/me/passkey/reset", nil)
	wantStatus(t, r, http.StatusSeeOther)
	nu := e.user("kim")
	if nu.Passkey == u.Passkey || len(nu.Passkey) != 32 {
		t.Fatalf("passkey %q", nu.Passkey)
	}
	if _, ok := e.st.UserByPasskey(u.Passkey); ok {
		t.Fatal("old passkey still works")
	}
	if ref, ok := e.st.UserByPasskey(nu.Passkey); !ok || ref.ID != u.ID {
		t.Fatal("new passkey unknown")
	}
	contains(t, b.get(r.location()).body, nu.Passkey, "old passkey no longer works")

	// Anonymous POST to an account action: 403, nothing changes.
	anon := e.browser()
	wantStatus(t, anon.post("/login", "/me/passkey/reset", nil), http.StatusForbidden)
}

func TestAPIToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("mia", model.RoleMember)
	b := e.browser()
	b.login("mia", "password-mia")
	r := b.post("/me", "/me/tokens", url.Values{"name": {""}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "name") == "" {
		t.Fatal("no error for empty token name")
	}
	r = b.post("/me", "/me/tokens", url.Values{"name": {"pipeline"}})
	wantStatus(t, r, http.StatusOK)
	tok := between(r.body, `<code id="new-token">`, `</code>`)
	if !strings.HasPrefix(tok, "sb_") {
		t.Fatalf("token %q", tok)
	}
	api := func(tok string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		must(t, err)
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	code, m := api(tok)
	if code != 200 || m["username"] != "mia" || m["can_download"] != true {
		t.Fatalf("api: %d %v", code, m)
	}
	if code, _ := api("sb_wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	r = b.get("/me")
	contains(t, r.body, "pipeline")
	h := between(r.body, `name="token" value="`, `"`)
	wantStatus(t, b.post("/me", "/me/tokens/revoke", url.Values{"token": {h}}), http.StatusSeeOther)
	if code, _ := api(tok); code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", code)
	}
}
