package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/seedbank/seedbank/model"
)

func TestTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("nora", model.RoleMember)
	b := e.browser()
	b.login("nora", "password-nora")

	contains(t, b.get("/me/2fa").body, "Set up two-factor authentication")
	wantStatus(t, b.post("/me/2fa", "/me/2fa/setup", nil), http.StatusSeeOther)
	r := b.get("/me/2fa")
	secret := between(r.body, `<code id="totp-secret">`, `</code>`)
	if len(secret) < 16 {
		t.Fatalf("secret %q", secret)
	}
	contains(t, r.body, `<img src="/me/2fa/qr.png"`)
	qr := b.get("/me/2fa/qr.png")
	if qr.status != 200 || qr.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(qr.body, "\x89PNG") {
		t.Fatalf("qr: %d %s", qr.status, qr.header.Get("Content-Type"))
	}

	r = b.post("/me/2fa", "/me/2fa/confirm", url.Values{"code": {"000000"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "code") == "" {
		t.Fatal("no error for a wrong code")
	}
	now := e.clock.now()
	code, _ := totp.GenerateCode(secret, now)
	r = b.post("/me/2fa", "/me/2fa/confirm", url.Values{"code": {code}})
	wantStatus(t, r, http.StatusOK)
	recovery := strings.Split(between(r.body, `<ul class="codes" id="recovery-codes">`, `</ul>`), "<li><code>")
	var codes []string
	for _, c := range recovery {
		if c, _, ok := strings.Cut(c, "</code>"); ok {
			codes = append(codes, c)
		}
	}
	if len(codes) != 10 {
		t.Fatalf("recovery codes %q", codes)
	}
	u := e.user("nora")
	if u.Extra[extraTOTPSecret] != secret || strings.Contains(u.Extra[extraRecoveryHash], codes[0]) {
		t.Fatal("secret not stored or recovery codes stored in clear")
	}

	// Log in again: password, then code.
	b2 := e.browser()
	r = b2.post("/login", "/login", url.Values{"username": {"nora"}, "password": {"password-nora"}})
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.location(), "/login/2fa") {
		t.Fatalf("redirect %q", r.location())
	}
	wantStatus(t, b2.get("/me"), http.StatusSeeOther) // not logged in yet
	r = b2.post("/login/2fa", "/login/2fa", url.Values{"code": {"123456"}})
	wantStatus(t, r, http.StatusUnauthorized)
	if fieldError(t, r.body, "code") == "" {
		t.Fatal("no error beside the code field")
	}
	// The code used to turn 2FA on cannot be replayed.
	r = b2.post("/login/2fa", "/login/2fa", url.Values{"code": {code}})
	wantStatus(t, r, http.StatusUnauthorized)
	e.clock.add(30 * time.Second)
	code2, _ := totp.GenerateCode(secret, e.clock.now())
	r = b2.post("/login/2fa", "/login/2fa", url.Values{"code": {code2}})
	wantStatus(t, r, http.StatusSeeOther)
	wantStatus(t, b2.get("/me"), http.StatusOK)

	// A recovery code works once.
	login2 := func(c string) resp {
		b3 := e.browser()
		b3.post("/login", "/login", url.Values{"username": {"nora"}, "password": {"password-nora"}})
		return b3.post("/login/2fa", "/login/2fa", url.Values{"code": {c}})
	}
	wantStatus(t, login2(strings.ToUpper(codes[3])), http.StatusSeeOther)
	wantStatus(t, login2(codes[3]), http.StatusUnauthorized)

	// The second step without the password step is refused.
	wantStatus(t, e.browser().post("/login", "/login/2fa", url.Values{"code": {codes[4]}}), http.StatusForbidden)

	// New recovery codes replace the old ones; it needs the password.
	r = b2.post("/me/2fa", "/me/2fa/recovery", url.Values{"rpassword": {"wrong"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "rpassword") == "" {
		t.Fatal("no error beside the password field")
	}
	r = b2.post("/me/2fa", "/me/2fa/recovery", url.Values{"rpassword": {"password-nora"}})
	wantStatus(t, r, http.StatusOK)
	fresh := between(between(r.body, `id="recovery-codes">`, `</ul>`), "<li><code>", "</code>")
	if len(fresh) != 9 {
		t.Fatalf("new recovery code %q", fresh)
	}
	wantStatus(t, login2(codes[5]), http.StatusUnauthorized)
	wantStatus(t, login2(fresh), http.StatusSeeOther)

	// Turning it off needs the password.
	r = b2.post("/me/2fa", "/me/2fa/disable", url.Values{"password": {"wrong"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantStatus(t, b2.post("/me/2fa", "/me/2fa/disable", url.Values{"password": {"password-nora"}}), http.StatusSeeOther)
	e.browser().login("nora", "password-nora")
}
