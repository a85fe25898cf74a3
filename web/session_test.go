package web

import (
	"strings"
	"testing"
	"time"
)

func testServer(t testing.TB) *Server {
	cfg := testConfig()
	must2(t, cfg.withDefaults())
	return &Server{cfg: cfg, sign: signer{key: cfg.SessionKey}}
}

func must2(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSessionCodec(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	now := time.Now()
	se := session{SID: newSID(), UID: 42, Epoch: 7, Exp: now.Add(time.Hour).Unix(), Pending: true}
	v := s.encodeSession(se)
	got, ok := s.decodeSession(v, now)
	if !ok || got != se {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	if _, ok := s.decodeSession(v, now.Add(2*time.Hour)); ok {
		t.Fatal("expired session accepted")
	}
	other := testServer(t)
	other.sign.key = []byte("another key of at least thirty-two bytes")
	if _, ok := other.decodeSession(v, now); ok {
		t.Fatal("session signed with another key accepted")
	}
	// A CSRF token is not a session and vice versa (purpose separation).
	if _, ok := s.decodeSession(s.csrfToken(se.SID), now); ok {
		t.Fatal("csrf token accepted as session")
	}
	if !s.validCSRF(se.SID, s.csrfToken(se.SID)) || s.validCSRF(newSID(), s.csrfToken(se.SID)) || s.validCSRF("", "") {
		t.Fatal("csrf check wrong")
	}
}

func FuzzDecodeSession(f *testing.F) {
	s := testServer(f)
	now := time.Now()
	f.Add(s.encodeSession(session{SID: newSID(), UID: 1, Exp: now.Add(time.Hour).Unix()}))
	f.Add("")
	f.Add(".")
	f.Add("djF8|x.y")
	f.Fuzz(func(t *testing.T, v string) {
		se, ok := s.decodeSession(v, now)
		if ok && len(se.SID) != 32 {
			t.Fatalf("accepted %q", v)
		}
		s.checkEmailToken("reset", v, func(uint64) (string, bool) { return "", true })
	})
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/me/2fa": "/me/2fa", "": "/me", "//evil.example": "/me", "/\\evil.example": "/me",
		"https://evil.example": "/me", "/x\r\nSet-Cookie: a=b": "/me",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSMTPHeaderInjection(t *testing.T) {
	t.Parallel()
	m := smtpMailer{c: SMTPConfig{Host: "127.0.0.1", Port: 1, From: "a@example.org"}}
	if err := m.send("victim@example.org\r\nBcc: x@example.org", "s", "b"); err == nil || !strings.Contains(err.Error(), "injection") {
		t.Fatalf("err %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	if err := c.withDefaults(); err == nil {
		t.Fatal("no error without a session key")
	}
	c = Config{SessionKey: testKey, RegistrationMode: "sometimes"}
	if err := c.withDefaults(); err == nil {
		t.Fatal("bad registration mode accepted")
	}
	c = Config{SessionKey: testKey, BaseURL: "ftp://x"}
	if err := c.withDefaults(); err == nil {
		t.Fatal("bad base URL accepted")
	}
	c = Config{SessionKey: testKey, BaseURL: "https://seedbank.example.org/"}
	must2(t, c.withDefaults())
	if c.BaseURL != "https://seedbank.example.org" || c.SiteName != "seedbank" || c.RegistrationMode != "open" || c.Password.Memory == 0 || c.StoreErrors.NotFound == nil {
		t.Fatalf("defaults %+v", c)
	}
}
