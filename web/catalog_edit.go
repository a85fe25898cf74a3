package web

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
)

// editRecord is one metadata edit, kept as a record of kind torrent_edit.
type editRecord struct {
	UserID   uint64        `json:"user_id"`
	Username string        `json:"username"`
	Time     int64         `json:"time"`
	Changes  []fieldChange `json:"changes"`
}

type fieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// recordKey makes a time-ordered record key under prefix hex.
func recordKey(h model.InfoHash, ms int64) string {
	suffix, _ := auth.NewCode(4)
	return fmt.Sprintf("%s/%016d-%s", h, ms, strings.ToLower(suffix))
}

// applyEdit validates new metadata fields (raw values by key) and, when
// webSeeds is not nil, the new web seed list for t by u, saves them and
// records the change. It returns the field errors, or a status and message
// when the write failed.
func (s *Server) applyEdit(ctx context.Context, u model.User, t model.Torrent, fields map[string]string, webSeeds *[]string) (biometa.Errors, int, string) {
	md, errs := validateMetadata(fields, s.cfg.Now().Year()+1)
	curSeeds := webSeedsOf(&t)
	newSeeds := curSeeds
	if webSeeds != nil {
		seeds, msg := parseWebSeeds(*webSeeds, curSeeds)
		if msg != "" {
			if errs == nil {
				errs = biometa.Errors{}
			}
			errs[fieldWebSeeds] = msg
		}
		newSeeds = seeds
	}
	if errs != nil {
		return errs, http.StatusUnprocessableEntity, ""
	}
	newMD := md.Map()
	// Keep fields the catalog does not manage (set by other tools), and
	// the web seeds field.
	for k, v := range t.Metadata {
		if !slices.Contains(biometa.Keys, k) {
			newMD[k] = v
		}
	}
	var changes []fieldChange
	keys := slices.Sorted(maps.Keys(mergeKeys(t.Metadata, newMD)))
	for _, k := range keys {
		if k != metaWebSeeds && t.Metadata[k] != newMD[k] {
			changes = append(changes, fieldChange{Field: k, Old: t.Metadata[k], New: newMD[k]})
		}
	}
	if !slices.Equal(curSeeds, newSeeds) {
		newMD[metaWebSeeds] = strings.Join(newSeeds, "\n")
		changes = append(changes, fieldChange{Field: metaWebSeeds, Old: strings.Join(curSeeds, "\n"), New: newMD[metaWebSeeds]})
	}
	if len(changes) == 0 {
		return nil, http.StatusOK, ""
	}
	t.Metadata = newMD
	if err := s.store.UpdateTorrent(ctx, t); err != nil {
		s.log.Error("update torrent", "torrent", t.ID, "err", err)
		if isErr(err, s.cfg.StoreErrors.NoLeader) {
			return nil, http.StatusServiceUnavailable, "The cluster cannot accept changes right now (no leader reachable), so the edit was not saved. Try again in a minute."
		}
		return nil, http.StatusInternalServerError, "Something went wrong, so the edit was not saved."
	}
	now := s.cfg.Now().UnixMilli()
	raw, _ := json.Marshal(editRecord{UserID: u.ID, Username: u.Username, Time: now, Changes: changes})
	if len(raw) > 1<<20 {
		// Keep the record under the store's value limit: drop old values.
		for i := range changes {
			changes[i].Old = "(too long to keep)"
		}
		raw, _ = json.Marshal(editRecord{UserID: u.ID, Username: u.Username, Time: now, Changes: changes})
	}
	if err := s.store.PutRecord(ctx, kindEdit, recordKey(t.ID, now), raw, false); err != nil {
		s.log.Warn("record torrent edit", "torrent", t.ID, "err", err)
	}
	s.log.Info("dataset edited", "torrent", t.ID, "user", u.Username, "fields", len(changes))
	return nil, http.StatusOK, ""
}

// editFields are the edit form's fields: the metadata and the web seeds.
var editFields = append(slices.Clone(catalogFields), fieldWebSeeds)

func mergeKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func (s *Server) editPage(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	if !canEdit(viewer(r), &t) {
		s.fail(w, r, http.StatusForbidden, "Only the uploader or a moderator may edit this dataset.")
		return
	}
	p := s.newPage(r, "Edit "+t.Name)
	p.Form = &form{Values: biometa.FromMap(t.Metadata).Form(), Errors: map[string]string{}}
	p.Form.Values[fieldWebSeeds] = strings.Join(webSeedsOf(&t), "\n")
	d := s.newUploadData()
	d.Edit, d.Hex = true, t.ID.String()
	p.Data = d
	s.render(w, http.StatusOK, "upload", p)
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	u := viewer(r)
	if !canEdit(u, &t) {
		s.fail(w, r, http.StatusForbidden, "Only the uploader or a moderator may edit this dataset.")
		return
	}
	f := newForm(r, editFields...)
	seeds := strings.Split(f.Values[fieldWebSeeds], "\n")
	ctx, cancel := writeCtx(r)
	defer cancel()
	errs, status, msg := s.applyEdit(ctx, *u, t, f.Values, &seeds)
	if errs != nil || msg != "" {
		for k, v := range errs {
			f.fail(k, v)
		}
		f.Error = msg
		if msg == "" {
			f.Error = "Nothing was saved; see the messages beside the fields."
		}
		p := s.newPage(r, "Edit "+t.Name)
		p.Form = f
		d := s.newUploadData()
		d.Edit, d.Hex = true, t.ID.String()
		p.Data = d
		s.render(w, status, "upload", p)
		return
	}
	redirectOK(w, r, "/t/"+t.ID.String(), "edited")
}

// historyData is the edit history page.
type historyData struct {
	Hex   string
	Name  string
	Edits []editRecord
}

// edits returns a dataset's edits, newest first.
func (s *Server) edits(h model.InfoHash) ([]editRecord, bool) {
	if s.lister == nil {
		return nil, false
	}
	kvs, err := s.lister.ListRecords(kindEdit, h.String()+"/")
	if err != nil {
		s.log.Warn("list edits", "torrent", h, "err", err)
		return nil, false
	}
	out := make([]editRecord, 0, len(kvs))
	for i := len(kvs) - 1; i >= 0; i-- {
		var e editRecord
		if json.Unmarshal(kvs[i].Value, &e) == nil {
			out = append(out, e)
		}
	}
	return out, true
}

func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	edits, ok := s.edits(t.ID)
	if !ok {
		s.fail(w, r, http.StatusServiceUnavailable, "This node cannot list the edit history.")
		return
	}
	p := s.newPage(r, "Edit history of "+t.Name)
	p.Data = historyData{Hex: t.ID.String(), Name: t.Name, Edits: edits}
	s.render(w, http.StatusOK, "history", p)
}
