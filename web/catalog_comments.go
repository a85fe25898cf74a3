package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxComment bounds a comment's length in characters.
const maxComment = 5000

// comment is one comment on a dataset, kept as a record of kind comment.
type comment struct {
	UserID   uint64 `json:"user_id"`
	Username string `json:"username"`
	Time     int64  `json:"time"`
	Body     string `json:"body"`
}

type commentView struct {
	comment
	Key string
}

// comments returns a dataset's comments, oldest first (nil when the store
// cannot list records).
func (s *Server) comments(h interface{ String() string }) []commentView {
	if s.lister == nil {
		return nil
	}
	kvs, err := s.lister.ListRecords(kindComment, h.String()+"/")
	if err != nil {
		s.log.Warn("list comments", "torrent", h.String(), "err", err)
		return nil
	}
	out := make([]commentView, 0, len(kvs))
	for _, kv := range kvs {
		var c comment
		if json.Unmarshal(kv.Value, &c) == nil {
			out = append(out, commentView{comment: c, Key: kv.Key})
		}
	}
	return out
}

func (s *Server) addComment(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	u := viewer(r)
	body := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("body"), "\r\n", "\n"))
	if body == "" || utf8.RuneCountInString(body) > maxComment || !utf8.ValidString(body) {
		s.fail(w, r, http.StatusUnprocessableEntity, "A comment needs 1 to 5000 characters of text. Go back to edit it.")
		return
	}
	now := s.cfg.Now().UnixMilli()
	raw, _ := json.Marshal(comment{UserID: u.ID, Username: u.Username, Time: now, Body: body})
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.PutRecord(ctx, kindComment, recordKey(t.ID, now), raw, true); err != nil {
		s.storeFailed(w, r, "posting the comment", err)
		return
	}
	redirectOK(w, r, "/t/"+t.ID.String()+"#comments", "commented")
}

// deleteComment removes a comment: its author or a moderator.
func (s *Server) deleteComment(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	key := r.PostFormValue("key")
	if !strings.HasPrefix(key, t.ID.String()+"/") {
		s.fail(w, r, http.StatusNotFound, "There is no such comment.")
		return
	}
	raw, err := s.store.Record(kindComment, key)
	var c comment
	if err != nil || json.Unmarshal(raw, &c) != nil {
		s.fail(w, r, http.StatusNotFound, "There is no such comment.")
		return
	}
	u := viewer(r)
	if c.UserID != u.ID && !Can(u.Role, RightModerate) {
		s.fail(w, r, http.StatusForbidden, "Only the author or a moderator may delete this comment.")
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.DeleteRecord(ctx, kindComment, key); err != nil && !isErr(err, s.cfg.StoreErrors.NotFound) {
		s.storeFailed(w, r, "deleting the comment", err)
		return
	}
	redirectOK(w, r, "/t/"+t.ID.String()+"#comments", "comment-deleted")
}
