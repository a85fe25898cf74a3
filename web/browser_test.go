package web

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/seedbank/seedbank/model"
)

// chromiumPath returns Debian's chromium; the browser test fails without it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("SEEDBANK_CHROMIUM"), "chromium", "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium is not installed (apt-get install chromium, or set SEEDBANK_CHROMIUM): the browser test needs it")
	return ""
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SEEDBANK_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "seedbank-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// chrome is a headless Chromium session on the test site with the small
// helpers the browser tests share.
type chrome struct {
	t           *testing.T
	ctx         context.Context
	base, shots string
}

func newChrome(t *testing.T, chromium, base, shots string) *chrome {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1100, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	return &chrome{t: t, ctx: ctx, base: base, shots: shots}
}

func (c *chrome) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, steps...); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// location returns the current path, without the site's base URL.
func (c *chrome) location() string {
	c.t.Helper()
	l, err := chromedp.Run(c.ctx, chromedp.Location())
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimPrefix(l, c.base)
}

func (c *chrome) shot(name string) {
	c.t.Helper()
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	must(c.t, os.WriteFile(filepath.Join(c.shots, name+".png"), png, 0o644))
}

var mailLinkRe = regexp.MustCompile(`http://\S+/confirm\?token=\S+`)

// TestBrowserAccountFlow drives Chromium through the site: register, confirm
// by the emailed link (over real SMTP), log in, turn on TOTP, log out, log
// in with a code, reset the passkey, and visit the admin pages.
func TestBrowserAccountFlow(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	shots := screenshotDir(t)
	smtpAddr, mails := startSMTP(t)
	e := newEnv(t, func(c *Config) {
		c.SMTP = SMTPConfig{Host: smtpAddr.IP.String(), Port: smtpAddr.Port, From: "seedbank@example.org"}
	})
	e.srv.mail = newMailer(e.srv.cfg.SMTP, e.srv.log) // the real SMTP client, not the test's memory mailer

	c := newChrome(t, chromium, e.ts.URL, shots)
	ctx, base := c.ctx, c.base
	do, text, location, shot := c.do, c.text, c.location, c.shot
	submit := func(what, form string) {
		t.Helper()
		res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`main form[action="`+form+`"] button[type=submit]`)))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Status != http.StatusOK {
			t.Fatalf("%s: status %d at %s", what, res.Status, res.URL)
		}
	}
	fill := func(id, v string) chromedp.Action[chromedp.Void] {
		return chromedp.SendKeys(chromedp.ID(id), v)
	}

	// Register; a wrong repeat shows the error beside the field first.
	do("open register", chromedp.Navigate(base+"/register"))
	shot("register")
	do("fill register", fill("f-username", "rosalind"), fill("f-email", "rosalind@example.org"),
		fill("f-password", "double helix 1953"), fill("f-password2", "double helix 1954"))
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`main form[action="/register"] button[type=submit]`)))
	if err != nil || res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad register: %v %v", res, err)
	}
	if got := text("#f-password2-err"); !strings.Contains(got, "do not match") {
		t.Fatalf("error beside the field: %q", got)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("f-username"))); v != "rosalind" {
		t.Fatalf("username not kept: %q", v)
	}
	shot("register-error")
	do("fix register", fill("f-password", "double helix 1953"), fill("f-password2", "double helix 1953"))
	submit("register", "/register")
	if !strings.HasPrefix(location(), "/login") {
		t.Fatalf("after register at %s", location())
	}

	// Confirm with the emailed link.
	var link string
	select {
	case m := <-mails:
		if !strings.Contains(m, "To: rosalind@example.org") {
			t.Fatalf("mail: %q", m)
		}
		link = mailLinkRe.FindString(m)
	case <-time.After(10 * time.Second):
		t.Fatal("no confirmation email over SMTP")
	}
	if link == "" {
		t.Fatal("no link in the email")
	}
	do("confirm", chromedp.Navigate(link))
	if n := text("main .notice"); !strings.Contains(n, "confirmed") {
		t.Fatalf("notice %q", n)
	}
	shot("login")

	// Log in.
	do("fill login", fill("f-username", "rosalind"), fill("f-password", "double helix 1953"))
	submit("login", "/login")
	if location() != "/me" {
		t.Fatalf("after login at %s", location())
	}

	// Turn on TOTP.
	do("2fa page", chromedp.Navigate(base+"/me/2fa"))
	submit("2fa setup", "/me/2fa/setup")
	secret := text("#totp-secret")
	qrWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector('main img').naturalWidth`))
	if err != nil || qrWidth == 0 {
		t.Fatalf("QR image did not load: %d %v", qrWidth, err)
	}
	shot("2fa-setup")
	code, _ := totp.GenerateCode(secret, e.clock.now())
	do("fill code", fill("f-code", code))
	submit("2fa confirm", "/me/2fa/confirm")
	if codes := text("#recovery-codes"); len(strings.Fields(codes)) != 10 {
		t.Fatalf("recovery codes %q", codes)
	}

	// Log out, log in with password and a TOTP code (of the next time step:
	// a code works once).
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`header form[action="/logout"] button`)))
	if err != nil || location() != "/?ok=loggedout" {
		t.Fatalf("logout: %v at %s", err, location())
	}
	do("login page", chromedp.Navigate(base+"/login"))
	do("fill login", fill("f-username", "rosalind"), fill("f-password", "double helix 1953"))
	submit("login", "/login")
	if !strings.HasPrefix(location(), "/login/2fa") {
		t.Fatalf("no second step: at %s", location())
	}
	e.clock.add(30 * time.Second)
	code, _ = totp.GenerateCode(secret, e.clock.now())
	do("fill code", fill("f-code", code))
	submit("login 2fa", "/login/2fa")
	if location() != "/me" {
		t.Fatalf("after 2FA login at %s", location())
	}
	shot("profile")

	// Reset the passkey.
	do("passkey", chromedp.Navigate(base+"/me/passkey"))
	old := text("#passkey")
	submit("passkey reset", "/me/passkey/reset")
	nu := text("#passkey")
	if len(nu) != 32 || nu == old {
		t.Fatalf("passkey %q -> %q", old, nu)
	}
	if _, ok := e.st.UserByPasskey(old); ok {
		t.Fatal("old passkey still known")
	}
	shot("passkey")

	// The first account is the admin.
	e.mkUser("watson", model.RoleMember)
	do("admin users", chromedp.Navigate(base+"/admin/users"))
	if !strings.Contains(text("main table"), "watson") {
		t.Fatal("admin users page lacks watson")
	}
	shot("admin-users")
	do("whitelist", chromedp.Navigate(base+"/admin/whitelist"))
	submit("whitelist defaults", "/admin/whitelist/defaults")
	if !strings.Contains(text("main table"), "qBittorrent") {
		t.Fatal("defaults not loaded")
	}
	shot("admin-whitelist")

	// Phone-sized screenshots.
	do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/me"))
	shot("profile-phone")
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`header form[action="/logout"] button`)))
	if err != nil {
		t.Fatal(err)
	}
	do("phone login", chromedp.Navigate(base+"/login"))
	shot("login-phone")
}
