package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

func TestPermissionsTable(t *testing.T) {
	t.Parallel()
	for right, roles := range permissions {
		for _, r := range roles {
			if !r.Valid() {
				t.Errorf("%s: bad role %q", right, r)
			}
		}
		if !Can(model.RoleAdmin, right) {
			t.Errorf("admin lacks %s", right)
		}
	}
	if Can(model.RoleMember, RightManageUsers) || Can(model.RoleModerator, RightChangeRoles) {
		t.Error("rights too broad")
	}
}

func TestWrongRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("admin", model.RoleAdmin)
	e.mkUser("mod", model.RoleModerator)
	member := e.mkUser("member", model.RoleMember)
	mb := e.browser()
	mb.login("member", "password-member")
	for _, p := range []string{"/admin/users", "/admin/whitelist", "/admin/settings", "/admin/audit", "/invites"} {
		r := mb.get(p)
		wantStatus(t, r, http.StatusForbidden)
		contains(t, r.body, "may not do this")
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/admin/whitelist", url.Values{"prefix": {"-XX"}, "name": {"X"}}},
		{"/admin/whitelist/defaults", nil},
		{"/admin/settings", url.Values{"registration_mode": {"closed"}, "ratio_required": {"1"}, "grace_gib": {"1"}, "grace_days": {"1"}}},
		{fmt.Sprintf("/admin/users/%d/role", member.ID), url.Values{"role": {"admin"}}},
		{fmt.Sprintf("/admin/users/%d/enabled", member.ID), url.Values{"enabled": {"0"}}},
		{"/invites", nil},
	}
	for _, p := range posts {
		wantStatus(t, mb.post("/me", p.path, p.form), http.StatusForbidden)
	}
	if len(e.st.ClientRules()) != 0 || len(e.st.Settings()) != 0 {
		t.Fatal("member changed state")
	}
	if u := e.user("member"); u.Role != model.RoleMember || !u.Enabled {
		t.Fatal("member changed own account")
	}
	// Moderators: no role changes, no settings, cannot disable an admin.
	mod := e.browser()
	mod.login("mod", "password-mod")
	admin := e.user("admin")
	wantStatus(t, mod.post("/admin/users", fmt.Sprintf("/admin/users/%d/role", member.ID), url.Values{"role": {"moderator"}}), http.StatusForbidden)
	wantStatus(t, mod.post("/admin/users", fmt.Sprintf("/admin/users/%d/enabled", admin.ID), url.Values{"enabled": {"0"}}), http.StatusForbidden)
	wantStatus(t, mod.get("/admin/settings"), http.StatusForbidden)
	if !e.user("admin").Enabled || e.user("member").Role != model.RoleMember {
		t.Fatal("moderator exceeded rights")
	}
	// But may disable a member.
	wantStatus(t, mod.post("/admin/users", fmt.Sprintf("/admin/users/%d/enabled", member.ID), url.Values{"enabled": {"0"}}), http.StatusSeeOther)
	if e.user("member").Enabled {
		t.Fatal("moderator could not disable a member")
	}
	wantStatus(t, mb.get("/me"), http.StatusSeeOther)
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.mkUser("root", model.RoleAdmin)
	e.mkUser("olga", model.RoleMember)
	e.mkUser("oscar", model.RoleMember)
	e.mkUser("paul", model.RoleMember)
	b := e.browser()
	b.login("root", "password-root")
	r := b.get("/admin/users?q=OL")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, ">olga<", `value="OL"`)
	if strings.Contains(r.body, ">paul<") || strings.Contains(r.body, ">oscar<") {
		t.Fatal("search did not filter")
	}
	olga := e.user("olga")
	wantStatus(t, b.post("/admin/users", fmt.Sprintf("/admin/users/%d/role", olga.ID), url.Values{"role": {"moderator"}}), http.StatusSeeOther)
	wantStatus(t, b.post("/admin/users", fmt.Sprintf("/admin/users/%d/role", olga.ID), url.Values{"role": {"king"}}), http.StatusBadRequest)
	wantStatus(t, b.post("/admin/users", fmt.Sprintf("/admin/users/%d/role", admin.ID), url.Values{"role": {"member"}}), http.StatusForbidden)
	wantStatus(t, b.post("/admin/users", fmt.Sprintf("/admin/users/%d/enabled", admin.ID), url.Values{"enabled": {"0"}}), http.StatusForbidden)
	wantStatus(t, b.post("/admin/users", "/admin/users/12345/enabled", url.Values{"enabled": {"0"}}), http.StatusNotFound)
	if e.user("olga").Role != model.RoleModerator || e.user("root").Role != model.RoleAdmin {
		t.Fatal("roles wrong")
	}
	oscar := e.user("oscar")
	wantStatus(t, b.post("/admin/users", fmt.Sprintf("/admin/users/%d/enabled", oscar.ID), url.Values{"enabled": {"0"}}), http.StatusSeeOther)
	if e.user("oscar").Enabled {
		t.Fatal("not disabled")
	}
	wantStatus(t, b.post("/admin/users", fmt.Sprintf("/admin/users/%d/enabled", oscar.ID), url.Values{"enabled": {"1"}}), http.StatusSeeOther)
	if !e.user("oscar").Enabled {
		t.Fatal("not enabled")
	}
	// CSRF on admin actions.
	wantStatus(t, b.postRaw(fmt.Sprintf("/admin/users/%d/enabled", oscar.ID), url.Values{"enabled": {"0"}}), http.StatusForbidden)
	if !e.user("oscar").Enabled {
		t.Fatal("disabled without CSRF token")
	}

	// Every action is in the audit log, newest first.
	r = b.get("/admin/audit")
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "user.role", "member -&gt; moderator", "user.disable", "user.enable")
	if strings.Index(r.body, "user.enable") > strings.Index(r.body, "user.disable") {
		t.Fatal("audit log not newest first")
	}
	kvs, err := listingStore{e.st}.ListRecords(kindAudit, "")
	must(t, err)
	var first AuditEntry
	must(t, json.Unmarshal(kvs[0].Value, &first))
	if len(kvs) != 3 || first.ActorName != "root" || first.Target != "olga" || len(kvs[0].Key) != 32 {
		t.Fatalf("audit records %d %+v %q", len(kvs), first, kvs[0].Key)
	}
}

func TestWhitelist(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("mod", model.RoleModerator)
	b := e.browser()
	b.login("mod", "password-mod")
	contains(t, b.get("/admin/whitelist").body, "every client is allowed")

	bad := []struct {
		prefix, name, field, msg string
	}{
		{"", "X", "prefix", "Enter 1-20"},
		{"has space", "X", "prefix", "Enter 1-20"},
		{"-TR", "", "name", "Name the client"},
		{strings.Repeat("x", 21), "X", "prefix", "Enter 1-20"},
	}
	for _, c := range bad {
		r := b.post("/admin/whitelist", "/admin/whitelist", url.Values{"prefix": {c.prefix}, "name": {c.name}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if got := fieldError(t, r.body, c.field); !strings.Contains(got, c.msg) {
			t.Errorf("%q/%q: %s error %q", c.prefix, c.name, c.field, got)
		}
	}
	if len(e.st.ClientRules()) != 0 {
		t.Fatal("bad rule stored")
	}
	wantStatus(t, b.postRaw("/admin/whitelist", url.Values{"prefix": {"-TR"}, "name": {"Transmission"}}), http.StatusForbidden)
	wantStatus(t, b.post("/admin/whitelist", "/admin/whitelist", url.Values{"prefix": {"-TR"}, "name": {"Transmission"}}), http.StatusSeeOther)
	if !e.st.ClientAllowed([]byte("-TR4060-abcdefghijkl")) || e.st.ClientAllowed([]byte("-UT3000-abcdefghijkl")) {
		t.Fatal("rule not applied")
	}
	r := b.post("/admin/whitelist", "/admin/whitelist", url.Values{"prefix": {"-TR"}, "name": {"Again"}})
	if !strings.Contains(fieldError(t, r.body, "prefix"), "already") {
		t.Fatal("duplicate accepted")
	}
	wantStatus(t, b.post("/admin/whitelist", "/admin/whitelist/defaults", nil), http.StatusSeeOther)
	if n := len(e.st.ClientRules()); n != len(DefaultClients) {
		t.Fatalf("%d rules after defaults", n)
	}
	for _, id := range []string{"-qB4650-", "-DE211s-", "A2-1-37-0-", "-lt0D80-", "-LT2000-", "-KT5000-"} {
		if !e.st.ClientAllowed([]byte(id + "xxxxxxxxxxxx")) {
			t.Errorf("%s not allowed", id)
		}
	}
	wantStatus(t, b.post("/admin/whitelist", "/admin/whitelist/delete", url.Values{"prefix": {"-TR"}}), http.StatusSeeOther)
	if e.st.ClientAllowed([]byte("-TR4060-abcdefghijkl")) {
		t.Fatal("rule not removed")
	}
	wantStatus(t, b.post("/admin/whitelist", "/admin/whitelist/delete", url.Values{"prefix": {"-ZZ"}}), http.StatusNotFound)
}

func TestSettingsAndRatio(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("admin", model.RoleAdmin)
	m := e.mkUser("leech", model.RoleMember)
	b := e.browser()
	b.login("admin", "password-admin")

	good := url.Values{"registration_mode": {"invite"}, "ratio_required": {"0.5"}, "grace_gib": {"1"}, "grace_days": {"3"}}
	bad := []struct{ field, value, msg string }{
		{"registration_mode", "anyone", "Choose open"},
		{"ratio_required", "-1", "Enter a number"},
		{"ratio_required", "abc", "Enter a number"},
		{"grace_gib", "x", "GiB"},
		{"grace_days", "99999", "days"},
	}
	for _, c := range bad {
		v := url.Values{}
		for k := range good {
			v.Set(k, good.Get(k))
		}
		v.Set(c.field, c.value)
		r := b.post("/admin/settings", "/admin/settings", v)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if got := fieldError(t, r.body, c.field); !strings.Contains(got, c.msg) {
			t.Errorf("%s=%q: error %q", c.field, c.value, got)
		}
		if !strings.Contains(r.body, `value="`+c.value+`"`) && c.field != "registration_mode" {
			t.Errorf("%s value not kept", c.field)
		}
		if len(e.st.Settings()) != 0 {
			t.Fatal("bad settings stored")
		}
	}
	wantStatus(t, b.post("/admin/settings", "/admin/settings", good), http.StatusSeeOther)
	s := e.st.Settings()
	if s[SettingRegistrationMode] != "invite" || s[SettingRatioRequired] != "0.5" || s[SettingRatioGraceBytes] != "1073741824" || s[SettingRatioGracePeriod] != "72h0m0s" {
		t.Fatalf("settings %v", s)
	}
	contains(t, b.get("/admin/settings").body, `value="0.5"`, `value="3"`, `<option value="invite" selected>`)
	contains(t, b.get("/admin/audit").body, "ratio_required")

	// A member within the grace bytes is fine.
	ctx := context.Background()
	must(t, e.st.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{UserID: m.ID, Torrent: model.InfoHash{1}, Downloaded: 1 << 29}}}))
	lb := e.browser()
	lb.login("leech", "password-leech")
	if strings.Contains(lb.get("/me").body, `class="banner"`) {
		t.Fatal("banner within grace bytes")
	}
	// Beyond it, below the ratio: a warning on every page, downloads allowed during the grace period.
	must(t, e.st.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 2, Deltas: []model.StatsDelta{{UserID: m.ID, Torrent: model.InfoHash{1}, Downloaded: 3 << 29, Uploaded: 1 << 29}}}))
	// downloaded 2 GiB, uploaded 0.5 GiB: needs 0.5 GiB more.
	r := lb.get("/")
	contains(t, r.body, `class="banner"`, "Your ratio is 0.25", "512.00 MiB more", "or you will not be able to download")
	if ok, _ := e.srv.CanDownload(e.user("leech")); !ok {
		t.Fatal("cannot download during the grace period")
	}
	eventually(t, "below-since recorded", func() bool { return e.user("leech").Extra[extraRatioBelowSince] != "" })
	e.clock.add(73 * time.Hour)
	ok, reason := e.srv.CanDownload(e.user("leech"))
	if ok || !strings.Contains(reason, "uploaded 512.00 MiB more to download new torrents again") {
		t.Fatalf("after grace: %v %q", ok, reason)
	}
	contains(t, lb.get("/me").body, "grace period ended")
	// Staff are exempt; seeding fixes it and clears the record.
	if ok, _ := e.srv.CanDownload(e.user("admin")); !ok {
		t.Fatal("admin blocked")
	}
	must(t, e.st.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 3, Deltas: []model.StatsDelta{{UserID: m.ID, Torrent: model.InfoHash{1}, Uploaded: 1 << 29}}}))
	if strings.Contains(lb.get("/").body, `class="banner"`) {
		t.Fatal("banner after recovering")
	}
	if ok, _ := e.srv.CanDownload(e.user("leech")); !ok {
		t.Fatal("cannot download after recovering")
	}
	eventually(t, "below-since cleared", func() bool { return e.user("leech").Extra[extraRatioBelowSince] == "" })
	// Disabled users cannot download.
	u := e.user("leech")
	u.Enabled = false
	if ok, _ := e.srv.CanDownload(u); ok {
		t.Fatal("disabled user may download")
	}
}

func TestInvitesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("mod1", model.RoleModerator)
	e.mkUser("mod2", model.RoleModerator)
	b1, b2 := e.browser(), e.browser()
	b1.login("mod1", "password-mod1")
	b2.login("mod2", "password-mod2")
	r := b1.post("/invites", "/invites", url.Values{"note": {strings.Repeat("x", 201)}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if fieldError(t, r.body, "note") == "" {
		t.Fatal("no error for long note")
	}
	r = b1.post("/invites", "/invites", url.Values{"note": {"for a colleague"}})
	wantStatus(t, r, http.StatusOK)
	contains(t, r.body, "/register?invite=", "for a colleague")
	if strings.Contains(b2.get("/invites").body, "for a colleague") {
		t.Fatal("moderator sees another's invites")
	}
	id := between(b1.get("/invites").body, `name="id" value="`, `"`)
	wantStatus(t, b2.post("/invites", "/invites/revoke", url.Values{"id": {id}}), http.StatusForbidden)
	wantStatus(t, b1.post("/invites", "/invites/revoke", url.Values{"id": {id}}), http.StatusSeeOther)
	if strings.Contains(b1.get("/invites").body, "for a colleague") {
		t.Fatal("revoked invite still listed")
	}
}
