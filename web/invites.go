package web

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

// Invites are records of kind "invite" keyed by the SHA-256 of the code (the
// code itself is shown once, to its creator). Using one writes a record of
// kind "invite_use" under the same key with ifAbsent, so two nodes cannot
// both accept one invite. Revoking deletes the invite record.
const (
	kindInvite    = "invite"
	kindInviteUse = "invite_use"
	inviteTTL     = 14 * 24 * time.Hour
)

type invite struct {
	Hash        string `json:"-"`
	CreatedBy   uint64 `json:"created_by"`
	CreatorName string `json:"creator_name"`
	Created     int64  `json:"created"`
	Expires     int64  `json:"expires"`
	Note        string `json:"note,omitempty"`
	// Filled from the invite_use record when listing.
	UsedBy string `json:"-"`
}

type inviteUse struct {
	UserID   uint64 `json:"user_id"`
	Username string `json:"username"`
	Used     int64  `json:"used"`
}

// lookupInvite returns the usable invite with code, or a message for the
// form field.
func (s *Server) lookupInvite(code string) (*invite, string) {
	code = strings.TrimSpace(code)
	if code == "" {
		return nil, "Registration is by invitation: enter the invite code you were given."
	}
	h := auth.HashCode(code)
	raw, err := s.store.Record(kindInvite, h)
	var inv invite
	if err != nil || json.Unmarshal(raw, &inv) != nil {
		return nil, "This invite code is not valid (mistyped, or revoked)."
	}
	inv.Hash = h
	if _, err := s.store.Record(kindInviteUse, h); err == nil {
		return nil, "This invite code has already been used."
	}
	if s.cfg.Now().UnixMilli() > inv.Expires {
		return nil, "This invite code has expired. Ask for a new one."
	}
	return &inv, ""
}

func (s *Server) claimInvite(ctx context.Context, inv *invite, u model.User) error {
	raw, _ := json.Marshal(inviteUse{UserID: u.ID, Username: u.Username, Used: s.cfg.Now().UnixMilli()})
	return s.store.PutRecord(ctx, kindInviteUse, inv.Hash, raw, true)
}

func (s *Server) releaseInvite(ctx context.Context, inv *invite) {
	if err := s.store.DeleteRecord(context.WithoutCancel(ctx), kindInviteUse, inv.Hash); err != nil {
		s.log.Warn("release invite after failed registration", "err", err)
	}
}

type invitesData struct {
	Listable bool
	Invites  []invite
	NewCode  string
	NewLink  string
	All      bool // the viewer sees everyone's invites
}

func (s *Server) invitesData(v *model.User) invitesData {
	d := invitesData{Listable: s.lister != nil, All: v.Role == model.RoleAdmin}
	if s.lister == nil {
		return d
	}
	kvs, err := s.lister.ListRecords(kindInvite, "")
	if err != nil {
		s.log.Error("list invites", "err", err)
		return d
	}
	for _, kv := range kvs {
		var inv invite
		if json.Unmarshal(kv.Value, &inv) != nil || (!d.All && inv.CreatedBy != v.ID) {
			continue
		}
		inv.Hash = kv.Key
		if raw, err := s.store.Record(kindInviteUse, kv.Key); err == nil {
			var use inviteUse
			if json.Unmarshal(raw, &use) == nil {
				inv.UsedBy = use.Username
			}
		}
		d.Invites = append(d.Invites, inv)
	}
	slices.SortFunc(d.Invites, func(a, b invite) int { return int(b.Created - a.Created) })
	return d
}

func (s *Server) invitesPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Invites")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	p.Data = s.invitesData(viewer(r))
	s.render(w, http.StatusOK, "invites", p)
}

func (s *Server) inviteCreate(w http.ResponseWriter, r *http.Request) {
	v := viewer(r)
	p := s.newPage(r, "Invites")
	f := newForm(r, "note")
	p.Form = f
	if len(f.Get("note")) > 200 {
		f.fail("note", "Keep the note under 200 characters.")
		p.Data = s.invitesData(v)
		s.render(w, http.StatusUnprocessableEntity, "invites", p)
		return
	}
	code, err := auth.NewCode(10)
	if err != nil {
		s.storeFailed(w, r, "creating the invite", err)
		return
	}
	now := s.cfg.Now()
	inv := invite{CreatedBy: v.ID, CreatorName: v.Username, Created: now.UnixMilli(), Expires: now.Add(inviteTTL).UnixMilli(), Note: f.Get("note")}
	raw, _ := json.Marshal(inv)
	ctx, cancel := writeCtx(r)
	defer cancel()
	h := auth.HashCode(code)
	if err := s.store.PutRecord(ctx, kindInvite, h, raw, true); err != nil {
		s.storeFailed(w, r, "creating the invite", err)
		return
	}
	s.audit(ctx, v, "invite.create", h[:12], f.Get("note"))
	d := s.invitesData(v)
	d.NewCode = code
	d.NewLink = s.cfg.BaseURL + "/register?invite=" + code
	p.Data = d
	p.Notice = notices["invite"]
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "invites", p)
}

func (s *Server) inviteRevoke(w http.ResponseWriter, r *http.Request) {
	v := viewer(r)
	h := r.PostFormValue("id")
	raw, err := s.store.Record(kindInvite, h)
	var inv invite
	if h == "" || err != nil || json.Unmarshal(raw, &inv) != nil {
		s.fail(w, r, http.StatusNotFound, "There is no such invite (it may be revoked already).")
		return
	}
	if inv.CreatedBy != v.ID && v.Role != model.RoleAdmin {
		s.fail(w, r, http.StatusForbidden, "You may only revoke your own invites.")
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.DeleteRecord(ctx, kindInvite, h); err != nil && !isErr(err, s.cfg.StoreErrors.NotFound) {
		s.storeFailed(w, r, "revoking the invite", err)
		return
	}
	s.audit(ctx, v, "invite.revoke", h[:min(12, len(h))], "")
	redirectOK(w, r, "/invites", "revoked")
}
