package web

import (
	"bytes"
	"crypto/subtle"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

// User Extra fields of two-factor authentication.
const (
	extraTOTPSecret   = "totp_secret"    // base32 secret once 2FA is on
	extraTOTPPending  = "totp_pending"   // otpauth:// URL while being set up
	extraTOTPLast     = "totp_last_step" // last accepted time step: a code works once
	extraRecoveryHash = "recovery_codes" // comma-separated SHA-256 of unused recovery codes
)

const recoveryCodes = 10

var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// checkTOTP accepts a code of the previous, current or next 30 s step that
// is later than the last accepted one, and returns its step.
func (s *Server) checkTOTP(secret, code string, last int64) (int64, bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != 6 {
		return 0, false
	}
	now := s.cfg.Now().Unix() / 30
	for step := now - 1; step <= now+1; step++ {
		if step <= last {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, timeOfStep(step), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// useSecondFactor checks a TOTP or recovery code for u and, on success,
// updates u.Extra so the code cannot be used again. The caller stores u.
func (s *Server) useSecondFactor(u *model.User, code string) bool {
	secret := u.Extra[extraTOTPSecret]
	if secret == "" {
		return false
	}
	last, _ := strconv.ParseInt(u.Extra[extraTOTPLast], 10, 64)
	if step, ok := s.checkTOTP(secret, code, last); ok {
		u.Extra[extraTOTPLast] = strconv.FormatInt(step, 10)
		return true
	}
	norm := normalizeRecovery(code)
	if norm == "" {
		return false
	}
	h := auth.HashCode(norm)
	hashes := strings.Split(u.Extra[extraRecoveryHash], ",")
	for i, x := range hashes {
		if x != "" && subtle.ConstantTimeCompare([]byte(x), []byte(h)) == 1 {
			hashes = append(hashes[:i], hashes[i+1:]...)
			u.Extra[extraRecoveryHash] = strings.Join(hashes, ",")
			s.log.Info("recovery code used", "uid", u.ID, "left", len(hashes))
			return true
		}
	}
	return false
}

func normalizeRecovery(c string) string {
	c = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(c))
	if len(c) != 8 {
		return ""
	}
	return c
}

type twoFAData struct {
	Enabled   bool
	Pending   bool
	Secret    string
	Recovery  []string
	CodesLeft int
}

func (s *Server) twoFAPage(w http.ResponseWriter, r *http.Request) {
	u := viewer(r)
	p := s.newPage(r, "Two-factor authentication")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	p.Data = s.twoFAData(u)
	s.render(w, http.StatusOK, "2fa", p)
}

func (s *Server) twoFAData(u *model.User) twoFAData {
	d := twoFAData{Enabled: u.Extra[extraTOTPSecret] != ""}
	if d.Enabled {
		for _, h := range strings.Split(u.Extra[extraRecoveryHash], ",") {
			if h != "" {
				d.CodesLeft++
			}
		}
	} else if k, err := otp.NewKeyFromURL(u.Extra[extraTOTPPending]); err == nil && u.Extra[extraTOTPPending] != "" {
		d.Pending, d.Secret = true, k.Secret()
	}
	return d
}

func (s *Server) twoFASetup(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	if u.Extra[extraTOTPSecret] != "" {
		http.Redirect(w, r, "/me/2fa", http.StatusSeeOther)
		return
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.SiteName, AccountName: u.Username})
	if err != nil {
		s.storeFailed(w, r, "setting up two-factor authentication", err)
		return
	}
	if u.Extra == nil {
		u.Extra = map[string]string{}
	}
	u.Extra[extraTOTPPending] = key.URL()
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "setting up two-factor authentication", err)
		return
	}
	http.Redirect(w, r, "/me/2fa", http.StatusSeeOther)
}

// twoFAQR serves the QR code of the key being set up, as a PNG.
func (s *Server) twoFAQR(w http.ResponseWriter, r *http.Request) {
	u := viewer(r)
	k, err := otp.NewKeyFromURL(u.Extra[extraTOTPPending])
	if err != nil || u.Extra[extraTOTPPending] == "" {
		http.NotFound(w, r)
		return
	}
	img, err := k.Image(240, 240)
	if err != nil {
		s.log.Error("totp qr image", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

func (s *Server) twoFAConfirm(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	p := s.newPage(r, "Two-factor authentication")
	f := newForm(r, "code")
	p.Form = f
	p.Data = s.twoFAData(&u)
	k, err := otp.NewKeyFromURL(u.Extra[extraTOTPPending])
	if err != nil || u.Extra[extraTOTPPending] == "" || u.Extra[extraTOTPSecret] != "" {
		http.Redirect(w, r, "/me/2fa", http.StatusSeeOther)
		return
	}
	step, ok := s.checkTOTP(k.Secret(), f.Get("code"), 0)
	if !ok {
		f.fail("code", "This code does not match. Enter the 6-digit code your app shows now (check the phone's clock if it keeps failing).")
		s.render(w, http.StatusUnprocessableEntity, "2fa", p)
		return
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		s.storeFailed(w, r, "turning on two-factor authentication", err)
		return
	}
	u.Extra[extraTOTPSecret] = k.Secret()
	u.Extra[extraTOTPLast] = strconv.FormatInt(step, 10)
	u.Extra[extraRecoveryHash] = hashes
	delete(u.Extra, extraTOTPPending)
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "turning on two-factor authentication", err)
		return
	}
	p.Viewer = &u
	p.Notice = notices["2fa-on"]
	p.Data = twoFAData{Enabled: true, Recovery: codes, CodesLeft: len(codes)}
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "2fa", p)
}

func (s *Server) twoFADisable(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	p := s.newPage(r, "Two-factor authentication")
	f := newForm(r)
	p.Form = f
	p.Data = s.twoFAData(&u)
	if ok, _ := auth.VerifyPassword(r.PostFormValue("password"), u.PasswordHash); !ok {
		f.fail("password", "This is not your current password.")
		s.render(w, http.StatusUnprocessableEntity, "2fa", p)
		return
	}
	for _, k := range []string{extraTOTPSecret, extraTOTPPending, extraTOTPLast, extraRecoveryHash} {
		delete(u.Extra, k)
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "turning off two-factor authentication", err)
		return
	}
	redirectOK(w, r, "/me/2fa", "2fa-off")
}

func timeOfStep(step int64) time.Time { return time.Unix(step*30, 0) }

// newRecoveryCodes returns fresh recovery codes, as shown (xxxx-xxxx) and
// as stored (comma-separated SHA-256).
func newRecoveryCodes() ([]string, string, error) {
	codes := make([]string, recoveryCodes)
	hashes := make([]string, recoveryCodes)
	for i := range codes {
		c, err := auth.NewCode(5)
		if err != nil {
			return nil, "", err
		}
		codes[i] = c[:4] + "-" + c[4:]
		hashes[i] = auth.HashCode(c)
	}
	return codes, strings.Join(hashes, ","), nil
}

// twoFARecovery replaces the recovery codes (the old ones stop working) and
// shows the new ones once. It asks for the password.
func (s *Server) twoFARecovery(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	p := s.newPage(r, "Two-factor authentication")
	f := newForm(r)
	p.Form = f
	p.Data = s.twoFAData(&u)
	if u.Extra[extraTOTPSecret] == "" {
		http.Redirect(w, r, "/me/2fa", http.StatusSeeOther)
		return
	}
	if ok, _ := auth.VerifyPassword(r.PostFormValue("rpassword"), u.PasswordHash); !ok {
		f.fail("rpassword", "This is not your current password.")
		s.render(w, http.StatusUnprocessableEntity, "2fa", p)
		return
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		s.storeFailed(w, r, "making new recovery codes", err)
		return
	}
	u.Extra[extraRecoveryHash] = hashes
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "making new recovery codes", err)
		return
	}
	p.Viewer = &u
	p.Data = twoFAData{Enabled: true, Recovery: codes, CodesLeft: len(codes)}
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "2fa", p)
}
