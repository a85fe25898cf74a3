package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

// API tokens: the token is shown once; the store keeps its SHA-256 as the
// key of an "apitoken" record (for lookup) and in the user's Extra field
// "api_tokens" (for listing and revoking).
const (
	kindAPIToken    = "apitoken"
	extraAPITokens  = "api_tokens"
	maxTokensByUser = 10
	tokenPrefix     = "sb_"
)

type apiToken struct {
	Hash    string `json:"-"`
	UserID  uint64 `json:"user_id"`
	Name    string `json:"name"`
	Created int64  `json:"created"`
}

func (s *Server) userTokens(u model.User) []apiToken {
	var out []apiToken
	for _, h := range strings.Split(u.Extra[extraAPITokens], ",") {
		if h == "" {
			continue
		}
		raw, err := s.store.Record(kindAPIToken, h)
		var t apiToken
		if err != nil || json.Unmarshal(raw, &t) != nil || t.UserID != u.ID {
			continue
		}
		t.Hash = h
		out = append(out, t)
	}
	return out
}

func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	p := s.newPage(r, u.Username)
	f := newForm(r, "name")
	p.Form = f
	d := s.profileData(&u, u)
	p.Data = d
	name := f.Get("name")
	if name == "" || len(name) > 64 {
		f.fail("name", "Name the token (1-64 characters), e.g. the pipeline that uses it.")
	}
	if len(d.Tokens) >= maxTokensByUser {
		f.fail("name", "You have the maximum of 10 tokens; revoke one first.")
	}
	if !f.ok() {
		s.render(w, http.StatusUnprocessableEntity, "profile", p)
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	tok, err := s.issueToken(ctx, &u, name)
	if err != nil {
		s.storeFailed(w, r, "creating the token", err)
		return
	}
	d = s.profileData(&u, u)
	d.NewToken = tok
	p.Data = d
	p.Viewer = &u
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "profile", p)
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	h := r.PostFormValue("token")
	hashes := strings.Split(u.Extra[extraAPITokens], ",")
	i := slices.Index(hashes, h)
	if h == "" || i < 0 {
		s.fail(w, r, http.StatusNotFound, "You have no such API token.")
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.DeleteRecord(ctx, kindAPIToken, h); err != nil && !isErr(err, s.cfg.StoreErrors.NotFound) {
		s.storeFailed(w, r, "revoking the token", err)
		return
	}
	u.Extra[extraAPITokens] = strings.Join(slices.Delete(hashes, i, i+1), ",")
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "revoking the token", err)
		return
	}
	redirectOK(w, r, "/me", "token-revoked")
}

// apiUser authenticates an API request by its bearer token.
func (s *Server) apiUser(r *http.Request) (model.User, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(tok, tokenPrefix) || len(tok) > 100 {
		return model.User{}, false
	}
	raw, err := s.store.Record(kindAPIToken, auth.HashCode(tok))
	var t apiToken
	if err != nil || json.Unmarshal(raw, &t) != nil {
		return model.User{}, false
	}
	u, err := s.store.User(t.UserID)
	if err != nil || !u.Enabled {
		return model.User{}, false
	}
	return u, true
}

type apiError struct {
	Error string `json:"error"`
}

// readJSON decodes a strict JSON body (unknown fields refused) of at most
// limit bytes into v. On failure it answers 400 with what, the error, and
// returns false.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any, what string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{what + ": " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiMe is GET /api/v1/me: the token owner's account and counters.
func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	u, ok := s.apiUser(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="seedbank"`)
		writeJSON(w, http.StatusUnauthorized, apiError{"missing, unknown or revoked API token: send Authorization: Bearer <token> (create one on your profile page)"})
		return
	}
	st := s.store.UserStats(u.ID)
	canDL, reason := s.CanDownload(u)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":           u.ID,
		"username":     u.Username,
		"role":         u.Role,
		"created":      time.UnixMilli(u.Created).UTC().Format(time.RFC3339),
		"uploaded":     st.Uploaded,
		"downloaded":   st.Downloaded,
		"snatches":     st.Snatches,
		"can_download": canDL,
		"reason":       reason,
	})
}
