package raftstore

import (
	"slices"
	"strings"
)

// Optional log encodings. A build lists those it applies in Features; a
// node records them in its member record (model.Member.Features), and a
// writer uses one only when every server of the raft configuration lists
// it. So a newer node joining an older cluster writes what the older nodes
// read, and switches once the last of them is upgraded. (Entries an older
// build cannot read at all still stop it safely; see fsm.halt.)
const (
	// FeatureBinaryStats: stats batches in the binary encoding
	// (statsBatchCmd) instead of JSON commit_stats.
	FeatureBinaryStats = "binary-stats"
)

// Features is what this build applies, as written in member records.
var Features = strings.Join([]string{FeatureBinaryStats}, " ")

// clusterHas reports whether every server of the raft configuration has a
// member record listing feature. A server without a record yet (it is
// joining) counts as lacking it.
func (s *Store) clusterHas(feature string) bool {
	servers, err := s.Servers()
	if err != nil || len(servers) == 0 {
		return false
	}
	have := map[string]bool{}
	for _, m := range s.Members() {
		if slices.Contains(strings.Fields(m.Features), feature) {
			have[m.NodeID] = true
		}
	}
	for _, srv := range servers {
		if !have[srv.ID] {
			return false
		}
	}
	return true
}
