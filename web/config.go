package web

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/seedbank/seedbank/auth"
)

// Config sets up the site. Zero values get the defaults of withDefaults, the
// one place where defaults live.
type Config struct {
	// SiteName is shown in the title, the nav, emails and TOTP apps.
	SiteName string
	// BaseURL is the public URL of this node's site, used in emailed links,
	// e.g. https://seedbank.example.org. No trailing slash.
	BaseURL string
	// SessionKey signs session cookies, CSRF tokens and emailed tokens. Every
	// node of a cluster must use the same key (at least 32 bytes), so a
	// session made on one node is accepted on all.
	SessionKey []byte
	// AcceptSessionKeys are further keys whose signatures are accepted (not
	// made): the session keys of nodes that have not switched yet while the
	// cluster key is rotated.
	AcceptSessionKeys [][]byte
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// TLS says the site is served over HTTPS (directly or behind a TLS proxy):
	// cookies get Secure and the __Host- prefix, responses get HSTS.
	TLS bool
	// SMTP sends account emails. With an empty Host, emails are logged with
	// slog instead, so a node without mail still works.
	SMTP SMTPConfig
	// RegistrationMode is "open", "invite" or "closed"; the replicated
	// setting "registration_mode" overrides it.
	RegistrationMode string
	// Password sets argon2id costs for new hashes; older, weaker hashes are
	// upgraded on the next login.
	Password auth.Params
	// LoginPerIP and LoginPerAccount limit login attempts (per node, in
	// memory).
	LoginPerIP      RateLimit
	LoginPerAccount RateLimit
	// TrustedProxies are the proxies whose X-Forwarded-For is believed: the
	// header counts only on requests whose connection comes from one of
	// them, so a client reaching the node directly cannot fake its address
	// (and slip past the login rate limits).
	TrustedProxies []netip.Prefix
	// TrustProxyHeaders makes the client address come from X-Forwarded-For
	// (set it only behind a proxy that overwrites that header).
	TrustProxyHeaders bool
	// Cluster, when set, feeds the admin Cluster page (nodes, join secret).
	Cluster Cluster
	// StoreErrors are the store's sentinel errors the site branches on.
	StoreErrors StoreErrors
	// Now returns the current time; tests may replace it.
	Now func() time.Time

	// Catalog (see catalog.go).

	// Source is the cluster-wide source tag written into every sanitized
	// torrent, so a dataset has the same info hash on every node. Every node
	// must use the same value. Default "seedbank".
	Source string
	// MaxTorrentBytes is the largest .torrent file accepted. Default 10 MiB
	// (uploads also stop at the 16 MiB form limit).
	MaxTorrentBytes int
	// Search is the node's catalog index (a *search.Index). Without it the
	// browse page lists the newest datasets by scanning the store.
	Search SearchIndex
	// Swarm gives live seeders, leechers and snatches from the tracker;
	// without it the site shows "-" for live numbers.
	Swarm SwarmStats
	// PublicCatalog lets visitors who are not logged in browse datasets and
	// their citations. Downloads always need an account.
	PublicCatalog bool
}

// SMTPConfig is an SMTP relay. Username and Password are optional (PLAIN auth,
// which net/smtp only sends over TLS or to localhost).
type SMTPConfig struct {
	Host     string
	Port     int
	From     string
	Username string
	Password string
}

// RateLimit is a token bucket: Burst attempts at once, then one per Every.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// StoreErrors are the sentinel errors of the Store the site needs to tell
// apart. Set them from the store package (raftstore.ErrNotFound...). A nil
// field falls back to matching the error text of raftstore's errors.
type StoreErrors struct {
	NotFound      error
	UsernameTaken error
	EmailTaken    error
	RecordExists  error
	NoLeader      error
	TorrentExists error
}

// Registration modes.
const (
	RegistrationOpen   = "open"
	RegistrationInvite = "invite"
	RegistrationClosed = "closed"
)

func (c *Config) withDefaults() error {
	if c.SiteName == "" {
		c.SiteName = "seedbank"
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://localhost:8080"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q must be an absolute http(s) URL", c.BaseURL)
	}
	if len(c.SessionKey) < 32 {
		return errors.New("session key must be at least 32 bytes (derive it from the cluster key so every node shares it)")
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 14 * 24 * time.Hour
	}
	if c.SMTP.Port == 0 {
		c.SMTP.Port = 25
	}
	if c.SMTP.From == "" {
		c.SMTP.From = "seedbank@localhost"
	}
	if c.RegistrationMode == "" {
		c.RegistrationMode = RegistrationOpen
	}
	if !validRegistrationMode(c.RegistrationMode) {
		return fmt.Errorf("registration mode %q must be open, invite or closed", c.RegistrationMode)
	}
	if c.Password == (auth.Params{}) {
		c.Password = auth.DefaultParams
	}
	if c.LoginPerIP == (RateLimit{}) {
		c.LoginPerIP = RateLimit{Burst: 20, Every: 6 * time.Second}
	}
	if c.LoginPerAccount == (RateLimit{}) {
		c.LoginPerAccount = RateLimit{Burst: 10, Every: 30 * time.Second}
	}
	e := &c.StoreErrors
	fill := func(p *error, text string) {
		if *p == nil {
			*p = errors.New(text)
		}
	}
	// Texts of raftstore's sentinel errors (raftstore/fsm.go, store.go).
	fill(&e.NotFound, "not found")
	fill(&e.UsernameTaken, "username is taken")
	fill(&e.EmailTaken, "email is already registered")
	fill(&e.RecordExists, "record already exists")
	fill(&e.NoLeader, "no raft leader reachable: the cluster is electing a leader or this node cannot reach a quorum; writes are refused, reads still work")
	fill(&e.TorrentExists, "torrent is already registered")
	if c.Source == "" {
		c.Source = "seedbank"
	}
	if c.MaxTorrentBytes <= 0 {
		c.MaxTorrentBytes = 10 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func validRegistrationMode(m string) bool {
	return m == RegistrationOpen || m == RegistrationInvite || m == RegistrationClosed
}

// isErr reports whether err is target or wraps an error with target's text,
// so the site can branch on the store's errors without importing the store.
func isErr(err, target error) bool {
	if err == nil || target == nil {
		return false
	}
	if errors.Is(err, target) {
		return true
	}
	want := target.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == want {
			return true
		}
	}
	return false
}
