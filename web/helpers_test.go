package web

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

// testParams keep argon2id fast in tests.
var testParams = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

var testKey = []byte("seedbank-test-session-key-32-bytes!!")

// listingStore adds RecordLister to the real store, as the node does.
type listingStore struct{ *raftstore.Store }

func (s listingStore) ListRecords(kind, prefix string) ([]KV, error) {
	kvs, err := s.Records(kind, prefix)
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		out[i] = KV{Key: kv.Key, Value: kv.Value}
	}
	return out, err
}

// memMailer keeps sent emails for handler tests.
type memMailer struct {
	mu   sync.Mutex
	sent []sentMail
}

type sentMail struct{ to, subject, body string }

func (m *memMailer) send(to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, sentMail{to, subject, body})
	return nil
}

func (m *memMailer) last(t *testing.T) sentMail {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sent) == 0 {
		t.Fatal("no email sent")
	}
	return m.sent[len(m.sent)-1]
}

func (m *memMailer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

var linkRe = regexp.MustCompile(`https?://\S+`)

func (m sentMail) link(t *testing.T) string {
	t.Helper()
	l := linkRe.FindString(m.body)
	if l == "" {
		t.Fatalf("no link in email %q", m.body)
	}
	return l
}

// clock is a settable time source that ticks a millisecond per reading, so
// events keep their order.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	st    *raftstore.Store
	srv   *Server
	ts    *httptest.Server
	mail  *memMailer
	clock *clock
}

func testConfig() Config {
	return Config{
		SessionKey: testKey,
		Password:   testParams,
		StoreErrors: StoreErrors{
			NotFound: raftstore.ErrNotFound, UsernameTaken: raftstore.ErrUsernameTaken, EmailTaken: raftstore.ErrEmailTaken,
			RecordExists: raftstore.ErrRecordExists, NoLeader: raftstore.ErrNoLeader,
		},
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("SEEDBANK_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newEnvOn starts the site over st on a real listener.
func newEnvOn(t *testing.T, st *raftstore.Store, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, st: st, mail: &memMailer{}, clock: &clock{t: time.Now()}}
	var h http.Handler
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	cfg := testConfig()
	cfg.BaseURL = e.ts.URL
	cfg.Now = e.clock.now
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, listingStore{st}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv.mail = e.mail
	e.srv = srv
	h = srv.Handler()
	return e
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, raftstoretest.Single(t), mod)
}

// mkUser stores a confirmed user with password "password-<name>".
func (e *env) mkUser(name string, role model.Role) model.User {
	e.t.Helper()
	h, err := auth.HashPassword("password-"+name, testParams)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := auth.NewID()
	pk, _ := auth.NewPasskey()
	u := model.User{ID: id, Username: name, Email: name + "@example.org", PasswordHash: h, Passkey: pk, Role: role,
		Enabled: true, Created: time.Now().UnixMilli(), Extra: map[string]string{}}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) user(name string) model.User {
	e.t.Helper()
	u, err := e.st.UserByName(name)
	if err != nil {
		e.t.Fatalf("user %s: %v", name, err)
	}
	return u
}

func (e *env) update(u model.User) {
	e.t.Helper()
	if err := e.st.UpdateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (e *env) browser() *browser { return newBrowser(e.t, e.ts.URL) }

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (r resp) location() string { return r.header.Get("Location") }

func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(body), res.Header}
}

func (b *browser) get(path string) resp {
	b.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.base + path
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// postRaw posts the form as is.
func (b *browser) postRaw(path string, v url.Values) resp {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token fetches page and returns its CSRF token.
func (b *browser) token(page string) string {
	b.t.Helper()
	r := b.get(page)
	m := csrfRe.FindStringSubmatch(r.body)
	if m == nil {
		b.t.Fatalf("no csrf token on %s (status %d)", page, r.status)
	}
	return html.UnescapeString(m[1])
}

// post submits a form from page to path with page's CSRF token.
func (b *browser) post(page, path string, v url.Values) resp {
	b.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf", b.token(page))
	return b.postRaw(path, v)
}

func (b *browser) login(name, password string) {
	b.t.Helper()
	r := b.post("/login", "/login", url.Values{"username": {name}, "password": {password}})
	if r.status != http.StatusSeeOther {
		b.t.Fatalf("login %s: status %d: %s", name, r.status, errText(r.body))
	}
}

var errRe = regexp.MustCompile(`class="error[^"]*"[^>]*>([^<]*)<`)

// errText returns the error messages on a page, for failure output.
func errText(body string) string {
	var out []string
	for _, m := range errRe.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return strings.Join(out, " | ")
}

// fieldError returns the message shown beside field, checking it is tied
// to the input by aria-describedby.
func fieldError(t *testing.T, body, field string) string {
	t.Helper()
	re := regexp.MustCompile(`<p class="error" id="f-` + regexp.QuoteMeta(field) + `-err">([^<]*)</p>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	in := regexp.MustCompile(`<input id="f-` + regexp.QuoteMeta(field) + `"[^>]*aria-describedby="[^"]*f-` + regexp.QuoteMeta(field) + `-err"[^>]*aria-invalid="true"`)
	sel := regexp.MustCompile(`<select id="f-` + regexp.QuoteMeta(field) + `"[^>]*aria-invalid="true" aria-describedby="f-` + regexp.QuoteMeta(field) + `-err"`)
	if !in.MatchString(body) && !sel.MatchString(body) {
		t.Errorf("field %s has an error but its input does not reference it", field)
	}
	return html.UnescapeString(m[1])
}

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; errors: %s; location %q", r.status, want, errText(r.body), r.location())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}
