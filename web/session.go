package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A session is carried entirely by a signed cookie: nodes keep no session
// state. Each request checks it against the replicated user, so disabling
// the user or bumping their SessionEpoch ends it on every node.
type session struct {
	// SID identifies the browser session; CSRF tokens are bound to it. A
	// new SID is issued at login and logout.
	SID string
	// UID is the logged-in user, 0 when anonymous.
	UID uint64
	// Epoch must equal the user's SessionEpoch.
	Epoch uint64
	// Exp is the expiry, Unix seconds.
	Exp int64
	// Pending means the password was right but the TOTP code is still due:
	// the session is anonymous except on the second login step.
	Pending bool
}

// signer makes and checks HMAC-SHA256 signatures with purpose separation.
// It signs with key and also accepts signatures made with accept (the keys
// of other nodes while the cluster key is rotated), so sessions survive a
// rotation.
type signer struct {
	key    []byte
	accept [][]byte
}

func (s signer) mac(purpose string, msg string) []byte { return macWith(s.key, purpose, msg) }

func macWith(key []byte, purpose, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// verify reports whether sig signs msg under key or an accepted key.
func (s signer) verify(purpose, msg string, sig []byte) bool {
	if hmac.Equal(sig, s.mac(purpose, msg)) {
		return true
	}
	for _, k := range s.accept {
		if hmac.Equal(sig, macWith(k, purpose, msg)) {
			return true
		}
	}
	return false
}

// seal returns msg and its signature, base64url, joined by a dot.
func (s signer) seal(purpose, msg string) string {
	b64 := base64.RawURLEncoding
	return b64.EncodeToString([]byte(msg)) + "." + b64.EncodeToString(s.mac(purpose, msg))
}

// open checks a sealed value and returns msg.
func (s signer) open(purpose, sealed string) (string, bool) {
	a, b, ok := strings.Cut(sealed, ".")
	if !ok {
		return "", false
	}
	b64 := base64.RawURLEncoding
	msg, err1 := b64.DecodeString(a)
	sig, err2 := b64.DecodeString(b)
	if err1 != nil || err2 != nil {
		return "", false
	}
	if !s.verify(purpose, string(msg), sig) {
		return "", false
	}
	return string(msg), true
}

func newSID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b)
}

func (s *Server) cookieName() string {
	if s.cfg.TLS {
		return "__Host-sb_session"
	}
	return "sb_session"
}

func (s *Server) encodeSession(se session) string {
	p := "0"
	if se.Pending {
		p = "1"
	}
	msg := strings.Join([]string{"v1", se.SID, strconv.FormatUint(se.UID, 10), strconv.FormatUint(se.Epoch, 10), strconv.FormatInt(se.Exp, 10), p}, "|")
	return s.sign.seal("session", msg)
}

func (s *Server) decodeSession(v string, now time.Time) (session, bool) {
	msg, ok := s.sign.open("session", v)
	if !ok {
		return session{}, false
	}
	f := strings.Split(msg, "|")
	if len(f) != 6 || f[0] != "v1" || len(f[1]) != 32 {
		return session{}, false
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 64)
	epoch, err2 := strconv.ParseUint(f[3], 10, 64)
	exp, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || exp < now.Unix() {
		return session{}, false
	}
	return session{SID: f[1], UID: uid, Epoch: epoch, Exp: exp, Pending: f[5] == "1"}, true
}

func (s *Server) setSession(w http.ResponseWriter, se session) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    s.encodeSession(se),
		Path:     "/",
		Expires:  time.Unix(se.Exp, 0),
		HttpOnly: true,
		Secure:   s.cfg.TLS,
		SameSite: http.SameSiteLaxMode,
	})
}

// anonymousSession returns a fresh session without a user.
func (s *Server) anonymousSession() session {
	return session{SID: newSID(), Exp: s.cfg.Now().Add(s.cfg.SessionTTL).Unix()}
}

// csrfToken is the synchronizer token of a session: forms carry it in the
// hidden field "csrf", and every state-changing request must present it.
func (s *Server) csrfToken(sid string) string {
	return base64.RawURLEncoding.EncodeToString(s.sign.mac("csrf", sid))
}

func (s *Server) validCSRF(sid, token string) bool {
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || sid == "" {
		return false
	}
	return s.sign.verify("csrf", sid, got)
}

// emailToken makes a signed, expiring token for a link sent by email. Bind
// ties it to state that changes once it is used (the password hash for a
// reset), so it works once.
func (s *Server) emailToken(purpose string, uid uint64, bind string, ttl time.Duration) string {
	exp := s.cfg.Now().Add(ttl).Unix()
	msg := fmt.Sprintf("%d|%d|%s", uid, exp, hex.EncodeToString(s.sign.mac("bind", bind)))
	return s.sign.seal(purpose, msg)
}

// checkEmailToken returns the user id of a valid token; bindFor returns the
// current binding state of that user.
func (s *Server) checkEmailToken(purpose, tok string, bindFor func(uid uint64) (string, bool)) (uint64, bool) {
	msg, ok := s.sign.open(purpose, tok)
	if !ok {
		return 0, false
	}
	f := strings.Split(msg, "|")
	if len(f) != 3 {
		return 0, false
	}
	uid, err1 := strconv.ParseUint(f[0], 10, 64)
	exp, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || exp < s.cfg.Now().Unix() {
		return 0, false
	}
	bind, ok := bindFor(uid)
	if !ok {
		return 0, false
	}
	got, err := hex.DecodeString(f[2])
	if err != nil || !s.sign.verify("bind", bind, got) {
		return 0, false
	}
	return uid, true
}
