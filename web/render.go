package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/seedbank/seedbank/model"
)

// page is what every template gets.
type page struct {
	Site   string
	Title  string
	Viewer *model.User
	CSRF   string
	// Nav holds the rights the viewer has, for the navigation.
	Nav map[string]bool
	// Banner is the ratio warning, empty when none.
	Banner string
	// Notice is a success message after a redirect.
	Notice string
	Form   *form
	Data   any
	// BaseURL is the site's public URL (for links shown as text, e.g. feeds).
	BaseURL string
}

// form keeps submitted values and per-field errors, so a page re-renders
// with the user's input and each message beside its field.
type form struct {
	Values map[string]string
	Errors map[string]string
	// Error is a message about the whole form.
	Error string
}

func newForm(r *http.Request, fields ...string) *form {
	f := &form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, k := range fields {
		f.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	return f
}

func (f *form) Get(k string) string { return f.Values[k] }
func (f *form) Err(k string) string { return f.Errors[k] }
func (f *form) fail(k, msg string) {
	if _, ok := f.Errors[k]; !ok {
		f.Errors[k] = msg
	}
}
func (f *form) ok() bool { return len(f.Errors) == 0 && f.Error == "" }

// fieldData is one labelled input for the "field" template.
type fieldData struct {
	Name, Label, Type, Autocomplete, Value, Error, Hint string
}

var funcs = template.FuncMap{
	"field": func(f *form, name, label, typ, autocomplete string) fieldData {
		d := fieldData{Name: name, Label: label, Type: typ, Autocomplete: autocomplete}
		if f != nil {
			if typ != "password" {
				d.Value = f.Values[name]
			}
			d.Error = f.Errors[name]
		}
		return d
	},
	"hint":  func(d fieldData, hint string) fieldData { d.Hint = hint; return d },
	"ago":   ago,
	"bytes": formatBytes,
	"date": func(ms int64) string {
		return time.UnixMilli(ms).UTC().Format("2 Jan 2006")
	},
	"datetime": func(ms int64) string {
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04 UTC")
	},
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, e := range names {
		n := e.Name()
		if n == "layout.html" || n == "partials.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, path.Join("templates", n))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		pages[strings.TrimSuffix(n, ".html")] = t
	}
	return pages, nil
}

// notices are the fixed success messages a redirect can ask for (?ok=...),
// so no text from the URL is echoed.
var notices = map[string]string{
	"registered":       "Account created. We sent you an email with a link to confirm your address; open it, then log in.",
	"confirmed":        "Your email address is confirmed. You can log in now.",
	"resent":           "If that address belongs to an unconfirmed account, a new confirmation link is on its way.",
	"reset-sent":       "If an account uses that address, we sent it a link to choose a new password.",
	"password-set":     "Your password was changed and every other session was logged out. Log in with the new password.",
	"password-changed": "Your password was changed and every other session was logged out.",
	"loggedout":        "You are logged out.",
	"everywhere":       "Every session of your account was logged out, on every node.",
	"passkey":          "Your passkey was reset. Download your .torrent files again: the old passkey no longer works.",
	"2fa-on":           "Two-factor authentication is on.",
	"2fa-off":          "Two-factor authentication is off.",
	"invite":           "Invite created.",
	"revoked":          "Invite revoked.",
	"user":             "User updated.",
	"whitelist":        "Client whitelist updated.",
	"join-secret":      "Join secret rotated: the old one no longer works.",
	"settings":         "Settings saved.",
	"token-revoked":    "API token revoked.",
}

func (s *Server) newPage(r *http.Request, title string) *page {
	st := state(r)
	p := &page{Site: s.cfg.SiteName, Title: title, Viewer: st.user, CSRF: s.csrfToken(st.sess.SID), Nav: map[string]bool{}, BaseURL: s.cfg.BaseURL}
	if st.user != nil {
		for right := range permissions {
			p.Nav[string(right)] = Can(st.user.Role, right)
		}
		p.Banner = s.ratioBanner(st.user)
	}
	if msg, ok := notices[r.URL.Query().Get("ok")]; ok {
		p.Notice = msg
	}
	return p
}

// render executes a page template; a template error is logged and becomes
// a plain 500, never half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail renders an error page with a message a person can act on.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := s.newPage(r, http.StatusText(status))
	p.Data = msg
	s.render(w, status, "error", p)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "There is no page at this address.")
}

func redirectOK(w http.ResponseWriter, r *http.Request, to, notice string) {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	http.Redirect(w, r, to+sep+"ok="+notice, http.StatusSeeOther)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// formatBytes writes n with binary units.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
