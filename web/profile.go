package web

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

type profileData struct {
	User   model.User
	Stats  model.Stats
	Ratio  string
	Self   bool
	Staff  bool // the viewer may manage this user
	CanDL  bool
	Reason string
	TwoFA  bool
	Tokens []apiToken
	// NewToken is an API token just created, shown once.
	NewToken string
}

func (s *Server) profileData(viewer *model.User, u model.User) profileData {
	st := s.store.UserStats(u.ID)
	d := profileData{User: u, Stats: st, Ratio: formatRatio(ratioOf(st)), Self: viewer.ID == u.ID,
		Staff: Can(viewer.Role, RightManageUsers), TwoFA: u.Extra[extraTOTPSecret] != ""}
	if d.Self {
		d.CanDL, d.Reason = s.CanDownload(u)
		d.Tokens = s.userTokens(u)
	}
	return d
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	u := viewer(r)
	p := s.newPage(r, u.Username)
	p.Data = s.profileData(u, *u)
	s.render(w, http.StatusOK, "profile", p)
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	v := viewer(r)
	if v == nil {
		http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.Path), http.StatusSeeOther)
		return
	}
	u, err := s.store.UserByName(mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "There is no user with this name.")
		return
	}
	p := s.newPage(r, u.Username)
	p.Data = s.profileData(v, u)
	s.render(w, http.StatusOK, "profile", p)
}

func (s *Server) passkeyPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Your passkey")
	p.Data = viewer(r).Passkey
	s.render(w, http.StatusOK, "passkey", p)
}

// passkeyReset gives the viewer a new passkey. Once the update is applied
// on a node, announces with the old passkey fail there.
func (s *Server) passkeyReset(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	pk, err := auth.NewPasskey()
	if err != nil {
		s.storeFailed(w, r, "resetting your passkey", err)
		return
	}
	u.Passkey = pk
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "resetting your passkey", err)
		return
	}
	s.log.Info("passkey reset", "user", u.Username, "uid", u.ID)
	redirectOK(w, r, "/me/passkey", "passkey")
}

// logoutEverywhere bumps the session epoch: every session cookie of the
// user, on every node, stops working once the update is applied there.
func (s *Server) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	u.SessionEpoch++
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.storeFailed(w, r, "logging out everywhere", err)
		return
	}
	s.setSession(w, s.anonymousSession())
	redirectOK(w, r, "/login", "everywhere")
}

func lowerContains(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
