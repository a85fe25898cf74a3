// Package web serves seedbank's site: accounts (registration, email
// confirmation, login with optional TOTP, password reset), profiles and
// passkeys, invites, roles and the admin pages (users, client whitelist,
// settings, audit log), with security headers and CSRF protection, and the
// catalog: uploads, dataset pages, personalised downloads, search, citations,
// edit history, comments, RSS feeds and the JSON API (catalog*.go, upload.go,
// rss.go, api_catalog.go; docs/API.md).
//
// State lives in the replicated Store; the site keeps none of its own except
// per-node login rate limits. Sessions are signed cookies checked against the
// replicated user on every request.
//
// The audit log and invite lists need to list records by prefix. raftstore's
// Records returns raftstore.KV, which web cannot name without importing
// raftstore, so a store that also implements RecordLister enables them:
//
//	type webStore struct{ *raftstore.Store }
//	func (s webStore) ListRecords(kind, prefix string) ([]web.KV, error) { ... }
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server is the site of one node. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	store  Store
	lister RecordLister // nil when the store cannot list records
	log    *slog.Logger
	sign   signer
	pages  map[string]*template.Template
	mail   mailer
	ipRate *limiter
	acRate *limiter
	router *mux.Router
	// dummyHash is verified against when an account does not exist, so a
	// wrong username takes as long as a wrong password.
	dummyHash string
	// bookkeeping holds the background user writes in flight.
	bookkeeping sync.Map
}

// New checks cfg, fills its defaults and builds the site on st.
func New(cfg Config, st Store, log *slog.Logger) (*Server, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, fmt.Errorf("web config: %w", err)
	}
	if st == nil {
		return nil, errors.New("web: nil store")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:    cfg,
		store:  st,
		log:    log.With("component", "web"),
		sign:   signer{key: cfg.SessionKey, accept: cfg.AcceptSessionKeys},
		ipRate: newLimiter(cfg.LoginPerIP),
		acRate: newLimiter(cfg.LoginPerAccount),
	}
	s.lister, _ = st.(RecordLister)
	h, err := auth.HashPassword("seedbank dummy password", cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s.dummyHash = h
	s.mail = newMailer(cfg.SMTP, s.log)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	s.routes()
	return s, nil
}

// Handler returns the site's handler: every route, behind the security
// headers and panic recovery.
func (s *Server) Handler() http.Handler {
	return s.securityHeaders(s.recoverer(s.router))
}

func (s *Server) routes() {
	r := mux.NewRouter()
	static, _ := fs.Sub(staticFS, "static")
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", staticCache(http.FileServerFS(static))))
	r.Handle("/api/v1/me", http.HandlerFunc(s.apiMe)).Methods(http.MethodGet)
	r.Handle("/api/v1/tokens", http.HandlerFunc(s.apiTokenCreate)).Methods(http.MethodPost)
	r.Handle("/api/v1/users", http.HandlerFunc(s.apiRegister)).Methods(http.MethodPost)
	s.catalogAPIRoutes(r)

	p := r.NewRoute().Subrouter()
	p.Use(s.loadSession, s.checkCSRF)
	get, post := http.MethodGet, http.MethodPost
	p.HandleFunc("/", s.home).Methods(get)
	p.HandleFunc("/register", s.registerPage).Methods(get)
	p.HandleFunc("/register", s.register).Methods(post)
	p.HandleFunc("/confirm", s.confirm).Methods(get)
	p.HandleFunc("/confirm/resend", s.resendPage).Methods(get)
	p.HandleFunc("/confirm/resend", s.resend).Methods(post)
	p.HandleFunc("/login", s.loginPage).Methods(get)
	p.HandleFunc("/login", s.login).Methods(post)
	p.HandleFunc("/login/2fa", s.login2FAPage).Methods(get)
	p.HandleFunc("/login/2fa", s.login2FA).Methods(post)
	p.HandleFunc("/logout", s.logout).Methods(post)
	p.HandleFunc("/password/forgot", s.forgotPage).Methods(get)
	p.HandleFunc("/password/forgot", s.forgot).Methods(post)
	p.HandleFunc("/password/reset", s.resetPage).Methods(get)
	p.HandleFunc("/password/reset", s.reset).Methods(post)

	p.HandleFunc("/user/{name}", s.profile).Methods(get)
	me := p.PathPrefix("/me").Subrouter()
	me.Use(s.requireLogin)
	me.HandleFunc("", s.me).Methods(get)
	me.HandleFunc("/passkey", s.passkeyPage).Methods(get)
	me.HandleFunc("/passkey/reset", s.passkeyReset).Methods(post)
	me.HandleFunc("/logout-everywhere", s.logoutEverywhere).Methods(post)
	me.HandleFunc("/password", s.passwordPage).Methods(get)
	me.HandleFunc("/password", s.changePassword).Methods(post)
	me.HandleFunc("/2fa", s.twoFAPage).Methods(get)
	me.HandleFunc("/2fa/setup", s.twoFASetup).Methods(post)
	me.HandleFunc("/2fa/qr.png", s.twoFAQR).Methods(get)
	me.HandleFunc("/2fa/confirm", s.twoFAConfirm).Methods(post)
	me.HandleFunc("/2fa/disable", s.twoFADisable).Methods(post)
	me.HandleFunc("/2fa/recovery", s.twoFARecovery).Methods(post)
	me.HandleFunc("/tokens", s.tokenCreate).Methods(post)
	me.HandleFunc("/tokens/revoke", s.tokenRevoke).Methods(post)

	p.Handle("/invites", s.require(RightInvite, s.invitesPage)).Methods(get)
	p.Handle("/invites", s.require(RightInvite, s.inviteCreate)).Methods(post)
	p.Handle("/invites/revoke", s.require(RightInvite, s.inviteRevoke)).Methods(post)

	p.Handle("/admin", s.require(RightManageUsers, s.adminHome)).Methods(get)
	p.Handle("/admin/users", s.require(RightManageUsers, s.adminUsers)).Methods(get)
	p.Handle("/admin/users/{id:[0-9]+}/enabled", s.require(RightManageUsers, s.adminSetEnabled)).Methods(post)
	p.Handle("/admin/users/{id:[0-9]+}/role", s.require(RightChangeRoles, s.adminSetRole)).Methods(post)
	p.Handle("/admin/whitelist", s.require(RightEditWhitelist, s.whitelistPage)).Methods(get)
	p.Handle("/admin/whitelist", s.require(RightEditWhitelist, s.whitelistAdd)).Methods(post)
	p.Handle("/admin/whitelist/delete", s.require(RightEditWhitelist, s.whitelistDelete)).Methods(post)
	p.Handle("/admin/whitelist/defaults", s.require(RightEditWhitelist, s.whitelistDefaults)).Methods(post)
	p.Handle("/admin/settings", s.require(RightEditSettings, s.settingsPage)).Methods(get)
	p.Handle("/admin/settings", s.require(RightEditSettings, s.settingsSave)).Methods(post)
	p.Handle("/admin/audit", s.require(RightViewAudit, s.auditPage)).Methods(get)
	p.Handle("/admin/cluster", s.require(RightEditSettings, s.clusterPage)).Methods(get)
	p.Handle("/admin/cluster/join-secret", s.require(RightEditSettings, s.rotateJoinSecret)).Methods(post)

	s.catalogRoutes(p)
	me.HandleFunc("/rss", s.rssCreate).Methods(post)

	p.NotFoundHandler = s.loadSession(http.HandlerFunc(s.notFound))
	r.NotFoundHandler = s.loadSession(http.HandlerFunc(s.notFound))
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
	s.router = r
}

func staticCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.cfg.TLS {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// reqState is what the session middleware learns about a request.
type reqState struct {
	sess session
	// user is the logged-in user, nil when anonymous.
	user *model.User
}

type ctxKey struct{}

func state(r *http.Request) *reqState {
	if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

func viewer(r *http.Request) *model.User { return state(r).user }

// loadSession reads the session cookie and checks it against the replicated
// user: a missing, disabled user or a changed session epoch ends it. A
// request without a valid session gets a fresh anonymous one.
func (s *Server) loadSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := s.cfg.Now()
		st := &reqState{}
		valid := false
		if c, err := r.Cookie(s.cookieName()); err == nil {
			st.sess, valid = s.decodeSession(c.Value, now)
		}
		if valid && st.sess.UID != 0 && !st.sess.Pending {
			u, err := s.store.User(st.sess.UID)
			switch {
			case err == nil && u.Enabled && u.SessionEpoch == st.sess.Epoch:
				st.user = &u
			case err != nil && !isErr(err, s.cfg.StoreErrors.NotFound):
				s.log.Error("load session user", "uid", st.sess.UID, "err", err)
				s.fail(w, r, http.StatusServiceUnavailable, "The site cannot read its state right now. Try again in a moment.")
				return
			default:
				valid = false
			}
		}
		if !valid {
			st.sess = s.anonymousSession()
			s.setSession(w, st.sess)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
	})
}

// maxFormBytes bounds a form post (room for a .torrent upload later).
const maxFormBytes = 16 << 20

// checkCSRF refuses a state-changing request without the session's token.
func (s *Server) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if !s.validCSRF(cookieSID(s, r), r.PostFormValue("csrf")) {
			s.fail(w, r, http.StatusForbidden, "This form's security token is missing or does not match your session, so nothing was changed. Go back, reload the page and submit it again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cookieSID is the SID of the session cookie the browser sent (not of a
// fresh session the loader may have just made).
func cookieSID(s *Server, r *http.Request) string {
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return ""
	}
	se, ok := s.decodeSession(c.Value, s.cfg.Now())
	if !ok {
		return ""
	}
	return se.SID
}

func (s *Server) requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if viewer(r) == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			s.fail(w, r, http.StatusForbidden, "You are not logged in (or your session ended). Log in and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// require lets the request through only for a logged-in user whose role has
// right; the one place rights are enforced.
func (s *Server) require(right Right, h http.HandlerFunc) http.Handler {
	return s.requireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Can(viewer(r).Role, right) {
			s.fail(w, r, http.StatusForbidden, "Your role ("+string(viewer(r).Role)+") may not do this.")
			return
		}
		h(w, r)
	}))
}

// clientIP is the address login limits count against.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if s.cfg.TrustProxyHeaders && s.fromTrustedProxy(host) {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	return host
}

// fromTrustedProxy reports whether the connection's address is a trusted
// proxy; with no list configured every sender counts (TrustProxyHeaders
// alone, for a node reachable only through its proxy).
func (s *Server) fromTrustedProxy(host string) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// storeFailed renders a failed write: no leader is a 503 the user can retry.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	if isErr(err, s.cfg.StoreErrors.NoLeader) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("store write failed", "what", what, "err", err)
		s.fail(w, r, http.StatusServiceUnavailable, "The cluster cannot accept changes right now (no leader reachable), so "+what+" did not happen. Try again in a minute.")
		return
	}
	s.log.Error("store write failed", "what", what, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong, so "+what+" did not happen.")
}

// writeCtx bounds a store write started by a request.
func writeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}
