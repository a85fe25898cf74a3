package raftstore

import (
	"context"
	"encoding/json"
)

// ProposeFutureCommand proposes, through the leader s, a log entry of a
// command type this build does not know, as a newer seedbank would write:
// a setting key=value under type "future_put_setting".
func ProposeFutureCommand(ctx context.Context, s *Store, key, value string) (uint64, error) {
	body, _ := json.Marshal(putSettingCmd{Key: key, Value: value})
	env, _ := json.Marshal(envelope{Type: "future_put_setting", Body: body})
	return s.applyAsLeader(ctx, append([]byte{commandVersion}, env...))
}

// Upgrade makes this build understand "future_put_setting" (as a setting
// write), as if the node were upgraded; undo restores the old build.
func Upgrade() (undo func()) {
	f := func(typ string) command {
		if typ == "future_put_setting" {
			return &putSettingCmd{}
		}
		return nil
	}
	newerCommand.Store(&f)
	return func() { newerCommand.Store(nil) }
}

// HaltedAt reports the log index where applying stopped, or 0.
func HaltedAt(s *Store) uint64 {
	if h := s.fsm.halted.Load(); h != nil {
		return h.index
	}
	return 0
}

// UsesBinaryStats reports whether s would write stats batches in the
// binary encoding now.
func UsesBinaryStats(s *Store) bool { return s.clusterHas(FeatureBinaryStats) }

// AddServer runs a join request on s, the leader.
func AddServer(s *Store, id, addr string) (uint64, error) { return s.addServer(id, addr) }
