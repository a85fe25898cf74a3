package web

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/seedbank/seedbank/model"
)

// DefaultClients are current open-source BitTorrent clients, by peer_id
// prefix (Azureus-style "-XX" or aria2's "A2-").
var DefaultClients = []model.ClientRule{
	{Prefix: "-TR", Name: "Transmission"},
	{Prefix: "-qB", Name: "qBittorrent"},
	{Prefix: "-DE", Name: "Deluge"},
	{Prefix: "-lt", Name: "rTorrent (libtorrent by rakshasa)"},
	{Prefix: "-LT", Name: "libtorrent-rasterbar"},
	{Prefix: "-KT", Name: "KTorrent"},
	{Prefix: "A2-", Name: "aria2"},
	{Prefix: "-BI", Name: "BiglyBT"},
}

func (s *Server) adminHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}

type adminUsersData struct {
	Query string
	Users []adminUserRow
	More  int
	Roles []model.Role
}

type adminUserRow struct {
	model.User
	Stats   model.Stats
	CanEdit bool // the viewer may enable/disable this user
	CanRole bool // the viewer may change this user's role
}

const adminUsersShown = 200

func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request) {
	v := viewer(r)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	users, err := s.store.Users()
	if err != nil {
		s.log.Error("list users", "err", err)
	}
	d := adminUsersData{Query: q, Roles: []model.Role{model.RoleMember, model.RoleModerator, model.RoleAdmin}}
	for _, u := range users {
		if q != "" && !lowerContains(u.Username, q) && !lowerContains(u.Email, q) {
			continue
		}
		if len(d.Users) >= adminUsersShown {
			d.More++
			continue
		}
		d.Users = append(d.Users, adminUserRow{User: u, Stats: s.store.UserStats(u.ID),
			CanEdit: mayManage(v, u), CanRole: Can(v.Role, RightChangeRoles) && v.ID != u.ID})
	}
	p := s.newPage(r, "Users")
	p.Data = d
	s.render(w, http.StatusOK, "admin_users", p)
}

// mayManage reports whether v may enable or disable u: never themselves,
// and a moderator only users below their rank.
func mayManage(v *model.User, u model.User) bool {
	if v.ID == u.ID || !Can(v.Role, RightManageUsers) {
		return false
	}
	return v.Role == model.RoleAdmin || roleRank(u.Role) < roleRank(v.Role)
}

func (s *Server) targetUser(w http.ResponseWriter, r *http.Request) (model.User, bool) {
	id, err := strconv.ParseUint(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "There is no such user.")
		return model.User{}, false
	}
	u, err := s.store.User(id)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "There is no such user.")
		return model.User{}, false
	}
	return u, true
}

func (s *Server) adminSetEnabled(w http.ResponseWriter, r *http.Request) {
	v := viewer(r)
	u, ok := s.targetUser(w, r)
	if !ok {
		return
	}
	if !mayManage(v, u) {
		s.fail(w, r, http.StatusForbidden, "You may not enable or disable this account (your own, or one of equal or higher rank).")
		return
	}
	want := r.PostFormValue("enabled") == "1"
	if u.Enabled != want {
		u.Enabled = want
		ctx, cancel := writeCtx(r)
		defer cancel()
		if err := s.store.UpdateUser(ctx, u); err != nil {
			s.storeFailed(w, r, "updating the user", err)
			return
		}
		action := "user.disable"
		if want {
			action = "user.enable"
		}
		s.audit(ctx, v, action, u.Username, "")
	}
	redirectOK(w, r, "/admin/users?q="+urlQueryEscape(r.PostFormValue("q")), "user")
}

func (s *Server) adminSetRole(w http.ResponseWriter, r *http.Request) {
	v := viewer(r)
	u, ok := s.targetUser(w, r)
	if !ok {
		return
	}
	if u.ID == v.ID {
		s.fail(w, r, http.StatusForbidden, "You cannot change your own role; ask another admin.")
		return
	}
	role := model.Role(r.PostFormValue("role"))
	if !role.Valid() {
		s.fail(w, r, http.StatusBadRequest, "Choose member, moderator or admin.")
		return
	}
	if u.Role != role {
		old := u.Role
		u.Role = role
		ctx, cancel := writeCtx(r)
		defer cancel()
		if err := s.store.UpdateUser(ctx, u); err != nil {
			s.storeFailed(w, r, "changing the role", err)
			return
		}
		s.audit(ctx, v, "user.role", u.Username, fmt.Sprintf("%s -> %s", old, role))
	}
	redirectOK(w, r, "/admin/users?q="+urlQueryEscape(r.PostFormValue("q")), "user")
}

func (s *Server) whitelistPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Client whitelist")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	p.Data = s.store.ClientRules()
	s.render(w, http.StatusOK, "whitelist", p)
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 20 {
		return false
	}
	for _, c := range []byte(p) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) whitelistAdd(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Client whitelist")
	f := newForm(r, "prefix", "name")
	p.Form = f
	rules := s.store.ClientRules()
	p.Data = rules
	prefix, name := f.Get("prefix"), f.Get("name")
	if !validPrefix(prefix) {
		f.fail("prefix", "Enter 1-20 printable ASCII characters without spaces, e.g. -TR.")
	} else if slices.ContainsFunc(rules, func(c model.ClientRule) bool { return c.Prefix == prefix }) {
		f.fail("prefix", "This prefix is already on the whitelist.")
	}
	if name == "" || len(name) > 100 {
		f.fail("name", "Name the client (1-100 characters).")
	}
	if !f.ok() {
		s.render(w, http.StatusUnprocessableEntity, "whitelist", p)
		return
	}
	s.saveRules(w, r, append(rules, model.ClientRule{Prefix: prefix, Name: name}), "whitelist.add", prefix+" "+name)
}

func (s *Server) saveRules(w http.ResponseWriter, r *http.Request, rules []model.ClientRule, action, detail string) {
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.SetClientRules(ctx, rules); err != nil {
		s.storeFailed(w, r, "updating the whitelist", err)
		return
	}
	s.audit(ctx, viewer(r), action, "whitelist", detail)
	redirectOK(w, r, "/admin/whitelist", "whitelist")
}

func (s *Server) whitelistDelete(w http.ResponseWriter, r *http.Request) {
	prefix := r.PostFormValue("prefix")
	rules := s.store.ClientRules()
	i := slices.IndexFunc(rules, func(c model.ClientRule) bool { return c.Prefix == prefix })
	if i < 0 {
		s.fail(w, r, http.StatusNotFound, "This prefix is not on the whitelist.")
		return
	}
	s.saveRules(w, r, slices.Delete(rules, i, i+1), "whitelist.delete", prefix)
}

// whitelistDefaults adds every DefaultClients rule not yet listed.
func (s *Server) whitelistDefaults(w http.ResponseWriter, r *http.Request) {
	rules := s.store.ClientRules()
	var added []string
	for _, d := range DefaultClients {
		if !slices.ContainsFunc(rules, func(c model.ClientRule) bool { return c.Prefix == d.Prefix }) {
			rules = append(rules, d)
			added = append(added, d.Prefix)
		}
	}
	s.saveRules(w, r, rules, "whitelist.defaults", strings.Join(added, " "))
}

type settingsData struct {
	Modes []string
}

func (s *Server) settingsForm() *form {
	rr := s.RatioRules()
	f := &form{Values: map[string]string{
		"registration_mode": s.registrationMode(),
		"ratio_required":    strconv.FormatFloat(rr.Required, 'f', -1, 64),
		"grace_gib":         strconv.FormatFloat(float64(rr.GraceBytes)/(1<<30), 'f', -1, 64),
		"grace_days":        strconv.FormatFloat(rr.GracePeriod.Hours()/24, 'f', -1, 64),
	}, Errors: map[string]string{}}
	return f
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Settings")
	p.Form = s.settingsForm()
	p.Data = settingsData{Modes: []string{RegistrationOpen, RegistrationInvite, RegistrationClosed}}
	s.render(w, http.StatusOK, "settings", p)
}

func parseNonNeg(v string, limit float64) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil && f >= 0 && f <= limit && !math.IsNaN(f)
}

func (s *Server) settingsSave(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Settings")
	f := newForm(r, "registration_mode", "ratio_required", "grace_gib", "grace_days")
	p.Form = f
	p.Data = settingsData{Modes: []string{RegistrationOpen, RegistrationInvite, RegistrationClosed}}
	if !validRegistrationMode(f.Get("registration_mode")) {
		f.fail("registration_mode", "Choose open, invite or closed.")
	}
	ratio, ok := parseNonNeg(f.Get("ratio_required"), 100)
	if !ok {
		f.fail("ratio_required", "Enter a number from 0 (rules off) to 100, e.g. 0.5.")
	}
	gib, ok := parseNonNeg(f.Get("grace_gib"), 1<<30)
	if !ok {
		f.fail("grace_gib", "Enter a number of GiB, 0 or more.")
	}
	days, ok := parseNonNeg(f.Get("grace_days"), 3650)
	if !ok {
		f.fail("grace_days", "Enter a number of days from 0 to 3650.")
	}
	if !f.ok() {
		s.render(w, http.StatusUnprocessableEntity, "settings", p)
		return
	}
	want := map[string]string{
		SettingRegistrationMode: f.Get("registration_mode"),
		SettingRatioRequired:    strconv.FormatFloat(ratio, 'f', -1, 64),
		SettingRatioGraceBytes:  strconv.FormatUint(uint64(gib*(1<<30)), 10),
		SettingRatioGracePeriod: (time.Duration(days * 24 * float64(time.Hour))).String(),
	}
	cur := s.store.Settings()
	ctx, cancel := writeCtx(r)
	defer cancel()
	for _, k := range []string{SettingRegistrationMode, SettingRatioRequired, SettingRatioGraceBytes, SettingRatioGracePeriod} {
		if cur[k] == want[k] {
			continue
		}
		if err := s.store.PutSetting(ctx, k, want[k]); err != nil {
			s.storeFailed(w, r, "saving the settings", err)
			return
		}
		s.audit(ctx, viewer(r), "setting", k, fmt.Sprintf("%q -> %q", cur[k], want[k]))
	}
	redirectOK(w, r, "/admin/settings", "settings")
}
