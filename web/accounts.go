package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

// User Extra fields owned by the account pages.
const (
	// extraEmailConfirmed is "0" from registration until the address is
	// confirmed, then "1". Accounts made elsewhere (the CLI) lack it and
	// count as confirmed.
	extraEmailConfirmed = "email_confirmed"
)

var usernameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$`)

const (
	minPasswordLen = 10
	maxPasswordLen = 1024
	confirmTTL     = 72 * time.Hour
	resetTTL       = time.Hour
	pendingTTL     = 5 * time.Minute
)

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Welcome")
	s.render(w, http.StatusOK, "home", p)
}

// registrationMode is the effective mode: the replicated setting, else the
// node's configured default.
func (s *Server) registrationMode() string {
	if v, ok := s.store.Setting(SettingRegistrationMode); ok && validRegistrationMode(v) {
		return v
	}
	return s.cfg.RegistrationMode
}

type registerData struct {
	Mode  string
	First bool
}

func (s *Server) registerData() registerData {
	d := registerData{Mode: s.registrationMode(), First: s.store.UserCount() == 0}
	if d.First {
		d.Mode = RegistrationOpen
	}
	return d
}

func (s *Server) registerPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Create an account")
	p.Data = s.registerData()
	p.Form = &form{Values: map[string]string{"invite": r.URL.Query().Get("invite")}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "register", p)
}

func validatePassword(f *form, pw, pw2, username string) {
	switch {
	case len(pw) < minPasswordLen:
		f.fail("password", fmt.Sprintf("Use at least %d characters.", minPasswordLen))
	case len(pw) > maxPasswordLen:
		f.fail("password", fmt.Sprintf("Use at most %d bytes.", maxPasswordLen))
	case username != "" && strings.EqualFold(pw, username):
		f.fail("password", "Do not use your username as your password.")
	}
	if pw2 != pw {
		f.fail("password2", "The two passwords do not match.")
	}
}

func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e && len(e) <= 254
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Create an account")
	p.Data = s.registerData()
	f := newForm(r, "username", "email", "invite")
	p.Form = f
	_, err := s.signup(r, f, r.PostFormValue("password"), r.PostFormValue("password2"))
	switch {
	case errors.Is(err, errRegistrationClosed):
		s.fail(w, r, http.StatusForbidden, "Registration is closed on this site.")
	case errors.Is(err, errSignupRate):
		s.render(w, http.StatusTooManyRequests, "register", p)
	case errors.Is(err, errSignupInvalid):
		s.render(w, http.StatusUnprocessableEntity, "register", p)
	case err != nil:
		s.storeFailed(w, r, "creating your account", err)
	default:
		redirectOK(w, r, "/login", "registered")
	}
}

var (
	errRegistrationClosed = errors.New("registration is closed")
	errSignupRate         = errors.New("too many registrations")
	errSignupInvalid      = errors.New("invalid registration")
)

// signup checks and creates an account, for the form and the API alike:
// f holds username, email and invite; a field error fills f and returns
// errSignupInvalid. The new account must confirm its email address (a link
// is sent) before it can log in; the first account becomes an admin.
func (s *Server) signup(r *http.Request, f *form, pw, pw2 string) (model.User, error) {
	d := s.registerData()
	if d.Mode == RegistrationClosed {
		return model.User{}, errRegistrationClosed
	}
	if ok, wait := s.ipRate.allow("register:"+s.clientIP(r), s.cfg.Now()); !ok {
		f.Error = fmt.Sprintf("Too many registrations from your address. Wait %d seconds and try again.", int(wait.Seconds())+1)
		return model.User{}, errSignupRate
	}
	name, email := f.Get("username"), f.Get("email")
	if !usernameRe.MatchString(name) {
		f.fail("username", "Use 2-32 letters, digits, '_', '.' or '-', starting with a letter or digit.")
	} else if _, err := s.store.UserByName(name); err == nil {
		f.fail("username", "This username is taken.")
	}
	if !validEmail(email) {
		f.fail("email", "Enter a plain email address, like name@example.org.")
	} else if _, err := s.store.UserByEmail(email); err == nil {
		f.fail("email", "An account already uses this email address.")
	}
	validatePassword(f, pw, pw2, name)
	var inv *invite
	if d.Mode == RegistrationInvite {
		var msg string
		inv, msg = s.lookupInvite(f.Get("invite"))
		if msg != "" {
			f.fail("invite", msg)
		}
	}
	if !f.ok() {
		return model.User{}, errSignupInvalid
	}
	hash, err := auth.HashPassword(pw, s.cfg.Password)
	if err != nil {
		return model.User{}, err
	}
	id, err1 := auth.NewID()
	passkey, err2 := auth.NewPasskey()
	if err := errors.Join(err1, err2); err != nil {
		return model.User{}, err
	}
	u := model.User{
		ID: id, Username: name, Email: email, PasswordHash: hash, Passkey: passkey,
		Role: model.RoleMember, Enabled: true, Created: s.cfg.Now().UnixMilli(),
		Extra: map[string]string{extraEmailConfirmed: "0"},
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if inv != nil {
		if err := s.claimInvite(ctx, inv, u); err != nil {
			if isErr(err, s.cfg.StoreErrors.RecordExists) {
				f.fail("invite", "This invite code has already been used.")
				return model.User{}, errSignupInvalid
			}
			return model.User{}, err
		}
	}
	create := s.store.CreateUser
	if d.First {
		// Looks like the first account here; the cluster decides.
		create = s.store.CreateUserAdminIfFirst
	}
	if err := create(ctx, u); err != nil {
		if inv != nil {
			s.releaseInvite(ctx, inv)
		}
		switch {
		case isErr(err, s.cfg.StoreErrors.UsernameTaken):
			f.fail("username", "This username is taken.")
		case isErr(err, s.cfg.StoreErrors.EmailTaken):
			f.fail("email", "An account already uses this email address.")
		default:
			return model.User{}, err
		}
		return model.User{}, errSignupInvalid
	}
	if d.First {
		if stored, err := s.store.User(u.ID); err == nil {
			u = stored
		}
	}
	s.log.Info("account created", "user", u.Username, "uid", u.ID, "role", u.Role)
	s.sendConfirmation(u)
	return u, nil
}

func unconfirmed(u model.User) bool { return u.Extra[extraEmailConfirmed] == "0" }

func (s *Server) sendConfirmation(u model.User) {
	link := s.cfg.BaseURL + "/confirm?token=" + s.emailToken("confirm", u.ID, u.Email, confirmTTL)
	body := fmt.Sprintf("Hello %s,\n\nconfirm your email address for %s by opening this link:\n\n%s\n\nThe link works for %d hours. If you did not create this account, ignore this email.\n",
		u.Username, s.cfg.SiteName, link, int(confirmTTL.Hours()))
	if err := s.mail.send(u.Email, s.cfg.SiteName+": confirm your email address", body); err != nil {
		s.log.Error("send confirmation email", "uid", u.ID, "err", err)
	}
}

func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	uid, ok := s.checkEmailToken("confirm", r.URL.Query().Get("token"), func(uid uint64) (string, bool) {
		u, err := s.store.User(uid)
		return u.Email, err == nil
	})
	if !ok {
		s.fail(w, r, http.StatusBadRequest, "This confirmation link is invalid or has expired. Ask for a new one on the “Resend confirmation” page.")
		return
	}
	u, err := s.store.User(uid)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "This confirmation link is invalid or has expired.")
		return
	}
	if u.Extra[extraEmailConfirmed] != "1" {
		if u.Extra == nil {
			u.Extra = map[string]string{}
		}
		u.Extra[extraEmailConfirmed] = "1"
		ctx, cancel := writeCtx(r)
		defer cancel()
		if err := s.store.UpdateUser(ctx, u); err != nil {
			s.storeFailed(w, r, "confirming your email", err)
			return
		}
	}
	redirectOK(w, r, "/login", "confirmed")
}

func (s *Server) resendPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Resend confirmation")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "resend", p)
}

func (s *Server) resend(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Resend confirmation")
	f := newForm(r, "email")
	p.Form = f
	if !validEmail(f.Get("email")) {
		f.fail("email", "Enter the email address of your account.")
		s.render(w, http.StatusUnprocessableEntity, "resend", p)
		return
	}
	if ok, _ := s.ipRate.allow("mail:"+s.clientIP(r), s.cfg.Now()); !ok {
		f.fail("email", "Too many requests from your address. Wait a minute and try again.")
		s.render(w, http.StatusTooManyRequests, "resend", p)
		return
	}
	if u, err := s.store.UserByEmail(f.Get("email")); err == nil && u.Enabled && unconfirmed(u) {
		s.sendConfirmation(u)
	}
	redirectOK(w, r, "/login", "resent")
}

// safeNext returns a local path to go to after login.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/me"
	}
	return next
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if viewer(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "Log in")
	p.Form = &form{Values: map[string]string{"next": safeNext(r.URL.Query().Get("next"))}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "login", p)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Log in")
	f := newForm(r, "username", "next")
	p.Form = f
	name, pw := f.Get("username"), r.PostFormValue("password")
	if name == "" {
		f.fail("username", "Enter your username or email address.")
	}
	if pw == "" {
		f.fail("password", "Enter your password.")
	}
	if !f.ok() {
		s.render(w, http.StatusUnprocessableEntity, "login", p)
		return
	}
	now := s.cfg.Now()
	okIP, waitIP := s.ipRate.allow("login:"+s.clientIP(r), now)
	okAcct, waitAcct := s.acRate.allow("login:"+strings.ToLower(name), now)
	if !okIP || !okAcct {
		wait := max(waitIP, waitAcct)
		f.Error = fmt.Sprintf("Too many login attempts. Wait %d seconds and try again.", int(wait.Seconds())+1)
		s.render(w, http.StatusTooManyRequests, "login", p)
		return
	}
	u, ok := s.checkPassword(name, pw)
	if !ok {
		f.Error = "Incorrect username or password."
		s.render(w, http.StatusUnauthorized, "login", p)
		return
	}
	if !u.Enabled {
		f.Error = "This account is disabled. Contact a moderator if you think this is a mistake."
		s.render(w, http.StatusForbidden, "login", p)
		return
	}
	if unconfirmed(u) {
		f.Error = "Confirm your email address first: open the link we emailed you when you registered."
		p.Data = "unconfirmed"
		s.render(w, http.StatusForbidden, "login", p)
		return
	}
	if auth.NeedsRehash(u.PasswordHash, s.cfg.Password) {
		if h, err := auth.HashPassword(pw, s.cfg.Password); err == nil {
			u.PasswordHash = h
			ctx, cancel := writeCtx(r)
			if err := s.store.UpdateUser(ctx, u); err != nil {
				s.log.Warn("upgrade password hash", "uid", u.ID, "err", err)
			}
			cancel()
		}
	}
	next := safeNext(f.Get("next"))
	if u.Extra[extraTOTPSecret] != "" {
		s.setSession(w, session{SID: newSID(), UID: u.ID, Epoch: u.SessionEpoch, Exp: now.Add(pendingTTL).Unix(), Pending: true})
		http.Redirect(w, r, "/login/2fa?next="+urlQueryEscape(next), http.StatusSeeOther)
		return
	}
	s.startSession(w, u)
	s.log.Info("login", "user", u.Username, "uid", u.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// startSession logs u in with a new session id.
func (s *Server) startSession(w http.ResponseWriter, u model.User) {
	s.setSession(w, session{SID: newSID(), UID: u.ID, Epoch: u.SessionEpoch, Exp: s.cfg.Now().Add(s.cfg.SessionTTL).Unix()})
}

// pendingUser returns the user who passed the password step and owes a
// TOTP code.
func (s *Server) pendingUser(r *http.Request) (model.User, bool) {
	se := state(r).sess
	if !se.Pending || se.UID == 0 {
		return model.User{}, false
	}
	u, err := s.store.User(se.UID)
	if err != nil || !u.Enabled || u.SessionEpoch != se.Epoch || u.Extra[extraTOTPSecret] == "" {
		return model.User{}, false
	}
	return u, true
}

func (s *Server) login2FAPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.pendingUser(r); !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "Two-factor code")
	p.Form = &form{Values: map[string]string{"next": safeNext(r.URL.Query().Get("next"))}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "login2fa", p)
}

func (s *Server) login2FA(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pendingUser(r)
	if !ok {
		s.fail(w, r, http.StatusForbidden, "Your login took too long or was interrupted. Log in again with your password.")
		return
	}
	p := s.newPage(r, "Two-factor code")
	f := newForm(r, "code", "next")
	p.Form = f
	if ok, wait := s.acRate.allow("totp:"+strconv.FormatUint(u.ID, 10), s.cfg.Now()); !ok {
		f.fail("code", fmt.Sprintf("Too many attempts. Wait %d seconds and try again.", int(wait.Seconds())+1))
		s.render(w, http.StatusTooManyRequests, "login2fa", p)
		return
	}
	if !s.useSecondFactor(&u, f.Get("code")) {
		f.fail("code", "This code is not valid. Enter the current 6-digit code from your app, or one of your recovery codes.")
		f.Values["code"] = ""
		s.render(w, http.StatusUnauthorized, "login2fa", p)
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "logging in", err)
		return
	}
	s.startSession(w, u)
	s.log.Info("login with second factor", "user", u.Username, "uid", u.ID)
	http.Redirect(w, r, safeNext(f.Get("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.setSession(w, s.anonymousSession())
	redirectOK(w, r, "/", "loggedout")
}

func (s *Server) forgotPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Forgot password")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "forgot", p)
}

func (s *Server) forgot(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Forgot password")
	f := newForm(r, "email")
	p.Form = f
	if !validEmail(f.Get("email")) {
		f.fail("email", "Enter the email address of your account.")
		s.render(w, http.StatusUnprocessableEntity, "forgot", p)
		return
	}
	if ok, _ := s.ipRate.allow("mail:"+s.clientIP(r), s.cfg.Now()); !ok {
		f.fail("email", "Too many requests from your address. Wait a minute and try again.")
		s.render(w, http.StatusTooManyRequests, "forgot", p)
		return
	}
	if u, err := s.store.UserByEmail(f.Get("email")); err == nil && u.Enabled {
		link := s.cfg.BaseURL + "/password/reset?token=" + s.emailToken("reset", u.ID, u.PasswordHash, resetTTL)
		body := fmt.Sprintf("Hello %s,\n\nsomeone asked to reset the password of your %s account. To choose a new password, open:\n\n%s\n\nThe link works once, for one hour. If it was not you, ignore this email; your password stays as it is.\n",
			u.Username, s.cfg.SiteName, link)
		if err := s.mail.send(u.Email, s.cfg.SiteName+": reset your password", body); err != nil {
			s.log.Error("send reset email", "uid", u.ID, "err", err)
		}
	}
	redirectOK(w, r, "/login", "reset-sent")
}

func (s *Server) resetUser(tok string) (model.User, bool) {
	uid, ok := s.checkEmailToken("reset", tok, func(uid uint64) (string, bool) {
		u, err := s.store.User(uid)
		return u.PasswordHash, err == nil && u.Enabled
	})
	if !ok {
		return model.User{}, false
	}
	u, err := s.store.User(uid)
	return u, err == nil
}

const badResetLink = "This password reset link is invalid, expired or already used. Ask for a new one on the “Forgot password” page."

func (s *Server) resetPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if _, ok := s.resetUser(tok); !ok {
		s.fail(w, r, http.StatusBadRequest, badResetLink)
		return
	}
	p := s.newPage(r, "Choose a new password")
	p.Form = &form{Values: map[string]string{"token": tok}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "reset", p)
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	f := newForm(r, "token")
	u, ok := s.resetUser(f.Get("token"))
	if !ok {
		s.fail(w, r, http.StatusBadRequest, badResetLink)
		return
	}
	p := s.newPage(r, "Choose a new password")
	p.Form = f
	pw := r.PostFormValue("password")
	validatePassword(f, pw, r.PostFormValue("password2"), u.Username)
	if !f.ok() {
		s.render(w, http.StatusUnprocessableEntity, "reset", p)
		return
	}
	if err := s.setPassword(r, &u, pw); err != nil {
		s.storeFailed(w, r, "changing your password", err)
		return
	}
	s.setSession(w, s.anonymousSession())
	redirectOK(w, r, "/login", "password-set")
}

// setPassword stores a new hash and ends every session of u. Whoever could
// reset it also proved to own the email address.
func (s *Server) setPassword(r *http.Request, u *model.User, pw string) error {
	h, err := auth.HashPassword(pw, s.cfg.Password)
	if err != nil {
		return err
	}
	u.PasswordHash = h
	u.SessionEpoch++
	if u.Extra == nil {
		u.Extra = map[string]string{}
	}
	u.Extra[extraEmailConfirmed] = "1"
	ctx, cancel := writeCtx(r)
	defer cancel()
	return s.store.UpdateUser(ctx, *u)
}

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Change password")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "password", p)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	p := s.newPage(r, "Change password")
	f := newForm(r)
	p.Form = f
	if ok, _ := auth.VerifyPassword(r.PostFormValue("current"), u.PasswordHash); !ok {
		f.fail("current", "This is not your current password.")
	}
	pw := r.PostFormValue("password")
	validatePassword(f, pw, r.PostFormValue("password2"), u.Username)
	if !f.ok() {
		s.render(w, http.StatusUnprocessableEntity, "password", p)
		return
	}
	if err := s.setPassword(r, &u, pw); err != nil {
		s.storeFailed(w, r, "changing your password", err)
		return
	}
	s.startSession(w, u)
	redirectOK(w, r, "/me", "password-changed")
}

// checkPassword looks the account up by username or email and verifies the
// password in constant time; an unknown account is checked against a dummy
// hash, so the answer takes as long either way.
func (s *Server) checkPassword(name, pw string) (model.User, bool) {
	var u model.User
	var err error
	if strings.Contains(name, "@") {
		u, err = s.store.UserByEmail(name)
	} else {
		u, err = s.store.UserByName(name)
	}
	hash := u.PasswordHash
	if err != nil {
		hash = s.dummyHash
	}
	match, verr := auth.VerifyPassword(pw, hash)
	if verr != nil && err == nil {
		s.log.Error("stored password hash is malformed", "uid", u.ID, "err", verr)
	}
	return u, err == nil && match
}
