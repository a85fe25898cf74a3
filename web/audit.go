package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
)

// The audit log is replicated as records of kind "audit" keyed by the
// zero-padded Unix milliseconds and a random id, so keys sort by time.
const (
	kindAudit  = "audit"
	auditShown = 500
)

// AuditEntry is one logged staff action.
type AuditEntry struct {
	Time      int64  `json:"time"`
	ActorID   uint64 `json:"actor_id"`
	ActorName string `json:"actor_name"`
	Action    string `json:"action"`
	Target    string `json:"target"`
	Detail    string `json:"detail,omitempty"`
}

// audit records a staff action; a failure is logged, not shown: the action
// itself already happened.
func (s *Server) audit(ctx context.Context, actor *model.User, action, target, detail string) {
	id, err := auth.NewID()
	if err != nil {
		s.log.Error("audit id", "err", err)
		return
	}
	e := AuditEntry{Time: s.cfg.Now().UnixMilli(), ActorID: actor.ID, ActorName: actor.Username, Action: action, Target: target, Detail: detail}
	raw, _ := json.Marshal(e)
	key := fmt.Sprintf("%015d-%016x", e.Time, id)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.PutRecord(ctx, kindAudit, key, raw, true); err != nil {
		s.log.Error("write audit entry", "action", action, "target", target, "err", err)
	}
	s.log.Info("audit", "actor", actor.Username, "action", action, "target", target, "detail", detail)
}

type auditData struct {
	Listable bool
	Entries  []AuditEntry
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Audit log")
	d := auditData{Listable: s.lister != nil}
	if s.lister != nil {
		kvs, err := s.lister.ListRecords(kindAudit, "")
		if err != nil {
			s.log.Error("list audit log", "err", err)
		}
		for _, kv := range slices.Backward(kvs) {
			var e AuditEntry
			if json.Unmarshal(kv.Value, &e) == nil {
				d.Entries = append(d.Entries, e)
			}
			if len(d.Entries) >= auditShown {
				break
			}
		}
	}
	p.Data = d
	s.render(w, http.StatusOK, "audit", p)
}
