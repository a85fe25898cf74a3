package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

// errTooManyTokens is returned by issueToken at the per-user limit.
var errTooManyTokens = errors.New("too many API tokens")

// issueToken creates a new API token for u, stores its hash and returns the
// token, which is shown once. u is updated to list the token.
func (s *Server) issueToken(ctx context.Context, u *model.User, name string) (string, error) {
	if len(s.userTokens(*u)) >= maxTokensByUser {
		return "", errTooManyTokens
	}
	code, err := auth.NewCode(20)
	if err != nil {
		return "", err
	}
	tok := tokenPrefix + code
	h := auth.HashCode(tok)
	raw, _ := json.Marshal(apiToken{UserID: u.ID, Name: name, Created: s.cfg.Now().UnixMilli()})
	if err := s.store.PutRecord(ctx, kindAPIToken, h, raw, true); err != nil {
		return "", err
	}
	if u.Extra == nil {
		u.Extra = map[string]string{}
	}
	u.Extra[extraAPITokens] = strings.Trim(u.Extra[extraAPITokens]+","+h, ",")
	if err := s.store.UpdateUser(ctx, *u); err != nil {
		_ = s.store.DeleteRecord(ctx, kindAPIToken, h)
		return "", err
	}
	return tok, nil
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// TOTP is a current code or a recovery code, required with 2FA on.
	TOTP string `json:"totp"`
	Name string `json:"name"`
}

// apiTokenCreate is POST /api/v1/tokens: a lab pipeline trades a username
// and password (and a TOTP code when 2FA is on) for an API token, under the
// same rate limits and checks as the login form.
func (s *Server) apiTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !readJSON(w, r, 64<<10, &req, `body must be JSON {"username", "password", "name", optional "totp"}`) {
		return
	}
	switch {
	case req.Username == "":
		writeJSON(w, http.StatusBadRequest, apiError{"username: required"})
		return
	case req.Password == "":
		writeJSON(w, http.StatusBadRequest, apiError{"password: required"})
		return
	case req.Name == "" || len(req.Name) > 64:
		writeJSON(w, http.StatusBadRequest, apiError{"name: name the token in 1-64 characters, e.g. the pipeline that uses it"})
		return
	}
	now := s.cfg.Now()
	okIP, waitIP := s.ipRate.allow("login:"+s.clientIP(r), now)
	okAcct, waitAcct := s.acRate.allow("login:"+strings.ToLower(req.Username), now)
	if !okIP || !okAcct {
		w.Header().Set("Retry-After", fmt.Sprint(int(max(waitIP, waitAcct).Seconds())+1))
		writeJSON(w, http.StatusTooManyRequests, apiError{"too many attempts; wait and try again"})
		return
	}
	u, ok := s.checkPassword(req.Username, req.Password)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, apiError{"incorrect username or password"})
		return
	}
	if !u.Enabled {
		writeJSON(w, http.StatusForbidden, apiError{"this account is disabled"})
		return
	}
	if unconfirmed(u) {
		writeJSON(w, http.StatusForbidden, apiError{"confirm your email address first"})
		return
	}
	if u.Extra[extraTOTPSecret] != "" && !s.useSecondFactor(&u, req.TOTP) {
		writeJSON(w, http.StatusUnauthorized, apiError{"totp: this account has two-factor authentication; send a current code or a recovery code"})
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	tok, err := s.issueToken(ctx, &u, req.Name)
	if errors.Is(err, errTooManyTokens) {
		writeJSON(w, http.StatusConflict, apiError{"you have the maximum of 10 tokens; revoke one on your profile page"})
		return
	}
	if err != nil {
		s.log.Error("issue API token", "uid", u.ID, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{"could not store the token now; try again"})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": tok, "name": req.Name})
}
