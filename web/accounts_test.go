package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

func regForm(name, email, pw, pw2 string) url.Values {
	return url.Values{"username": {name}, "email": {email}, "password": {pw}, "password2": {pw2}}
}

func TestRegisterConfirmLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.browser()

	r := b.get("/register")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "first account", `<label for="f-username">`, `autocomplete="new-password"`)

	r = b.post("/register", "/register", regForm("alice", "alice@example.org", "correct horse battery", "correct horse battery"))
	wantStatus(t, r, http.StatusSeeOther)
	if r.location() != "/login?ok=registered" {
		t.Fatalf("redirect to %q", r.location())
	}
	u := e.user("alice")
	if u.Role != model.RoleAdmin || !u.Enabled || len(u.Passkey) != 32 || u.Extra[extraEmailConfirmed] != "0" {
		t.Fatalf("first user: %+v", u)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q", u.PasswordHash)
	}

	// Not confirmed yet: login refused with a clear message.
	r = b.post("/login", "/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}})
	wantStatus(t, r, http.StatusForbidden)
	contains(t, r.body, "Confirm your email address first")

	m := e.mail.last(t)
	if m.to != "alice@example.org" || !strings.Contains(m.subject, "confirm") {
		t.Fatalf("mail %+v", m)
	}
	r = b.get(m.link(t))
	wantStatus(t, r, http.StatusSeeOther)
	if e.user("alice").Extra[extraEmailConfirmed] != "1" {
		t.Fatal("email not confirmed")
	}
	// A tampered link is refused.
	r = b.get(m.link(t) + "x")
	wantStatus(t, r, http.StatusBadRequest)

	r = b.post("/login", "/login", url.Values{"username": {"alice"}, "password": {"wrong password"}})
	wantStatus(t, r, http.StatusUnauthorized)
	contains(t, r.body, "Incorrect username or password.", `value="alice"`)

	b.login("alice", "correct horse battery")
	r = b.get("/me")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "alice", "admin", "Log out everywhere")

	// Login by email works too; a second account is a member.
	b2 := e.browser()
	r = b2.post("/register", "/register", regForm("bob", "bob@example.org", "bobs long password", "bobs long password"))
	wantStatus(t, r, http.StatusSeeOther)
	if e.user("bob").Role != model.RoleMember {
		t.Fatal("second user is not a member")
	}
	b2.get(e.mail.last(t).link(t))
	b2.login("bob@example.org", "bobs long password")
}

func TestRegisterBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("taken", model.RoleAdmin)
	good := "a good long password"
	cases := []struct {
		name  string
		form  url.Values
		field string
		msg   string
	}{
		{"short username", regForm("a", "x@example.org", good, good), "username", "Use 2-32 letters"},
		{"bad username", regForm("bad name!", "x@example.org", good, good), "username", "Use 2-32 letters"},
		{"taken username", regForm("TAKEN", "x@example.org", good, good), "username", "This username is taken."},
		{"bad email", regForm("newbie", "not an email", good, good), "email", "Enter a plain email address"},
		{"taken email", regForm("newbie", "Taken@example.org", good, good), "email", "An account already uses this email address."},
		{"short password", regForm("newbie", "x@example.org", "short", "short"), "password", "Use at least 10 characters."},
		{"password is username", regForm("newbie1234", "x@example.org", "newbie1234", "newbie1234"), "password", "Do not use your username"},
		{"mismatch", regForm("newbie", "x@example.org", good, good+"x"), "password2", "The two passwords do not match."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := e.browser()
			r := b.post("/register", "/register", c.form)
			wantStatus(t, r, http.StatusUnprocessableEntity)
			if got := fieldError(t, r.body, c.field); !strings.Contains(got, c.msg) {
				t.Errorf("error beside %s = %q, want %q", c.field, got, c.msg)
			}
			if v := c.form.Get("username"); !strings.Contains(r.body, `value="`+v+`"`) {
				t.Errorf("username %q not kept in the form", v)
			}
			if strings.Contains(r.body, `value="`+good+`"`) {
				t.Error("password echoed back")
			}
			if n := e.st.UserCount(); n != 1 {
				t.Errorf("%d users stored", n)
			}
		})
	}
}

func TestCSRFMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.browser()
	b.get("/register") // has a session cookie, but sends no token
	r := b.postRaw("/register", regForm("alice", "alice@example.org", "correct horse battery", "correct horse battery"))
	wantStatus(t, r, http.StatusForbidden)
	contains(t, r.body, "security token")
	if e.st.UserCount() != 0 {
		t.Fatal("user stored without CSRF token")
	}
	// A token of another session is refused too.
	other := e.browser().token("/register")
	v := regForm("alice", "alice@example.org", "correct horse battery", "correct horse battery")
	v.Set("csrf", other)
	wantStatus(t, b.postRaw("/register", v), http.StatusForbidden)
	// No cookie at all.
	v.Set("csrf", b.token("/register"))
	wantStatus(t, newBrowser(t, e.ts.URL).postRaw("/register", v), http.StatusForbidden)
	if e.st.UserCount() != 0 {
		t.Fatal("user stored without valid CSRF token")
	}
	// Login form too.
	e.mkUser("carol", model.RoleMember)
	r = b.postRaw("/login", url.Values{"username": {"carol"}, "password": {"password-carol"}})
	wantStatus(t, r, http.StatusForbidden)
}

func TestRegistrationModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.mkUser("admin", model.RoleAdmin)
	ctx := context.Background()
	must(t, e.st.PutSetting(ctx, SettingRegistrationMode, RegistrationClosed))
	b := e.browser()
	contains(t, b.get("/register").body, "Registration is closed")
	wantStatus(t, b.post("/login", "/register", regForm("newbie", "n@example.org", "a good long password", "a good long password")), http.StatusForbidden)

	must(t, e.st.PutSetting(ctx, SettingRegistrationMode, RegistrationInvite))
	r := b.post("/register", "/register", regForm("newbie", "n@example.org", "a good long password", "a good long password"))
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if got := fieldError(t, r.body, "invite"); !strings.Contains(got, "enter the invite code") {
		t.Fatalf("invite error %q", got)
	}
	f := regForm("newbie", "n@example.org", "a good long password", "a good long password")
	f.Set("invite", "nonsense")
	r = b.post("/register", "/register", f)
	if got := fieldError(t, r.body, "invite"); !strings.Contains(got, "not valid") {
		t.Fatalf("invite error %q", got)
	}

	ab := e.browser()
	ab.login("admin", "password-admin")
	r = ab.post("/invites", "/invites", url.Values{"note": {"for newbie"}})
	wantStatus(t, r, http.StatusOK)
	code := between(r.body, `<code id="invite-code">`, `</code>`)
	if code == "" {
		t.Fatal("no invite code shown")
	}
	// The register link prefills the code.
	contains(t, b.get("/register?invite="+code).body, `value="`+code+`"`)
	f.Set("invite", code)
	wantStatus(t, b.post("/register", "/register", f), http.StatusSeeOther)
	if e.user("newbie").Role != model.RoleMember {
		t.Fatal("invited user not created")
	}
	// Used once only.
	f2 := regForm("second", "s@example.org", "a good long password", "a good long password")
	f2.Set("invite", code)
	r = e.browser().post("/register", "/register", f2)
	if got := fieldError(t, r.body, "invite"); !strings.Contains(got, "already been used") {
		t.Fatalf("reused invite error %q", got)
	}
	contains(t, ab.get("/invites").body, "used by")

	// A revoked invite does not work.
	r = ab.post("/invites", "/invites", nil)
	code2 := between(r.body, `<code id="invite-code">`, `</code>`)
	wantStatus(t, ab.post("/invites", "/invites/revoke", url.Values{"id": {auth.HashCode(code2)}}), http.StatusSeeOther)
	f2.Set("invite", code2)
	r = e.browser().post("/register", "/register", f2)
	if got := fieldError(t, r.body, "invite"); !strings.Contains(got, "not valid") {
		t.Fatalf("revoked invite error %q", got)
	}
	if _, err := e.st.UserByName("second"); err == nil {
		t.Fatal("user registered with used or revoked invite")
	}
	_ = admin
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestLoginRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.LoginPerAccount = RateLimit{Burst: 2, Every: 1e12}
	})
	u := e.mkUser("dave", model.RoleMember)

	b := e.browser()
	r := b.post("/login", "/login", url.Values{"username": {""}, "password": {""}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "username") == "" || fieldError(t, r.body, "password") == "" {
		t.Fatal("empty fields without errors")
	}
	// Unknown user and wrong password say the same.
	r = b.post("/login", "/login", url.Values{"username": {"nobody"}, "password": {"whatever"}})
	wantStatus(t, r, http.StatusUnauthorized)
	contains(t, r.body, "Incorrect username or password.")

	// Disabled user.
	u.Enabled = false
	e.update(u)
	r = b.post("/login", "/login", url.Values{"username": {"dave"}, "password": {"password-dave"}})
	wantStatus(t, r, http.StatusForbidden)
	contains(t, r.body, "disabled")
	u.Enabled = true
	e.update(u)

	// Rate limit per account: the 4th attempt is refused even with the right password.
	r = b.post("/login", "/login", url.Values{"username": {"dave"}, "password": {"wrong"}})
	wantStatus(t, r, http.StatusUnauthorized)
	r = b.post("/login", "/login", url.Values{"username": {"DAVE"}, "password": {"password-dave"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	contains(t, r.body, "Too many login attempts")

	// Open redirect is refused.
	e2 := newEnv(t, nil)
	e2.mkUser("erin", model.RoleMember)
	b2 := e2.browser()
	r = b2.post("/login", "/login", url.Values{"username": {"erin"}, "password": {"password-erin"}, "next": {"//evil.example/"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.location() != "/me" {
		t.Fatalf("redirect to %q", r.location())
	}
}

func TestRehashOnLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.mkUser("frank", model.RoleMember)
	weak := auth.Params{Memory: 512, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, _ := auth.HashPassword("password-frank", weak)
	u.PasswordHash = h
	e.update(u)
	e.browser().login("frank", "password-frank")
	if got := e.user("frank").PasswordHash; !strings.HasPrefix(got, "$argon2id$v=19$m=1024,") {
		t.Fatalf("hash not upgraded: %q", got)
	}
	e.browser().login("frank", "password-frank")
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("gina", model.RoleMember)
	old := e.browser()
	old.login("gina", "password-gina")

	b := e.browser()
	r := b.post("/password/forgot", "/password/forgot", url.Values{"email": {"bad"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "email") == "" {
		t.Fatal("no email error")
	}
	// Unknown address: same answer, no mail.
	n := e.mail.count()
	wantStatus(t, b.post("/password/forgot", "/password/forgot", url.Values{"email": {"nobody@example.org"}}), http.StatusSeeOther)
	if e.mail.count() != n {
		t.Fatal("mail sent to unknown address")
	}
	wantStatus(t, b.post("/password/forgot", "/password/forgot", url.Values{"email": {"gina@example.org"}}), http.StatusSeeOther)
	link := e.mail.last(t).link(t)
	linkPath := strings.TrimPrefix(link, e.ts.URL)
	r = b.get(linkPath)
	wantStatus(t, r, http.StatusOK)
	tok := between(r.body, `name="token" value="`, `"`)

	r = b.post(linkPath, "/password/reset", url.Values{"token": {htmlUnescape(tok)}, "password": {"new password 123"}, "password2": {"different"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "password2") == "" {
		t.Fatal("no mismatch error")
	}
	r = b.post(linkPath, "/password/reset", url.Values{"token": {htmlUnescape(tok)}, "password": {"new password 123"}, "password2": {"new password 123"}})
	wantStatus(t, r, http.StatusSeeOther)
	b.login("gina", "new password 123")
	// The link works once; the old session ended.
	wantStatus(t, b.get(linkPath), http.StatusBadRequest)
	wantStatus(t, old.get("/me"), http.StatusSeeOther)
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("hank", model.RoleMember)
	b, other := e.browser(), e.browser()
	b.login("hank", "password-hank")
	other.login("hank", "password-hank")
	r := b.post("/me/password", "/me/password", url.Values{"current": {"nope"}, "password": {"another password"}, "password2": {"another password"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "current") == "" {
		t.Fatal("no error for wrong current password")
	}
	r = b.post("/me/password", "/me/password", url.Values{"current": {"password-hank"}, "password": {"another password"}, "password2": {"another password"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantStatus(t, b.get("/me"), http.StatusOK)
	wantStatus(t, other.get("/me"), http.StatusSeeOther)
	e.browser().login("hank", "another password")
}

func htmlUnescape(s string) string { return strings.ReplaceAll(s, "&#43;", "+") }
