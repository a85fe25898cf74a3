package web

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// registerRequest is the body of POST /api/v1/users.
type registerRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
	// Invite is required when the site registers by invitation only.
	Invite string `json:"invite"`
}

// apiRegister is POST /api/v1/users: an account made the way the
// registration form makes it (same checks, rate limit, invite rule and
// confirmation email); the answer says to confirm the email address, after
// which POST /api/v1/tokens gives a token.
func (s *Server) apiRegister(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if !readJSON(w, r, 64<<10, &req, `body must be JSON {"username", "email", "password", optional "invite"}`) {
		return
	}
	f := &form{Values: map[string]string{
		"username": strings.TrimSpace(req.Username),
		"email":    strings.TrimSpace(req.Email),
		"invite":   strings.TrimSpace(req.Invite),
	}, Errors: map[string]string{}}
	u, err := s.signup(r, f, req.Password, req.Password)
	switch {
	case errors.Is(err, errRegistrationClosed):
		writeJSON(w, http.StatusForbidden, apiError{"registration is closed on this site"})
	case errors.Is(err, errSignupRate):
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, apiError{f.Error})
	case errors.Is(err, errSignupInvalid):
		names := make([]string, 0, len(f.Errors))
		for k := range f.Errors {
			names = append(names, k)
		}
		sort.Strings(names)
		first := names[0]
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error":  fmt.Sprintf("%s: %s", first, f.Errors[first]),
			"fields": f.Errors,
		})
	case err != nil:
		s.log.Error("register through the API", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{"could not create the account now; try again"})
	default:
		writeJSON(w, http.StatusCreated, map[string]any{
			"id":       u.ID,
			"username": u.Username,
			"email":    u.Email,
			"role":     u.Role,
			"next":     "a confirmation link was emailed to " + u.Email + "; open it, then create a token with POST /api/v1/tokens",
		})
	}
}
