// Package modeltest holds reference meanings of model values for tests.
package modeltest

import (
	"bytes"
	"cmp"
	"maps"
	"slices"

	"github.com/seedbank/seedbank/model"
)

// SumDeltas is what a list of stats deltas means: the sum per (user,
// torrent), sorted by user, then torrent. It is written plainly (a map,
// then a sort) so that the optimised code it checks is not its own
// reference.
func SumDeltas(ds []model.StatsDelta) []model.StatsDelta {
	type key struct {
		user    uint64
		torrent model.InfoHash
	}
	m := map[key]model.StatsDelta{}
	for _, d := range ds {
		k := key{d.UserID, d.Torrent}
		s := m[k]
		s.UserID, s.Torrent = d.UserID, d.Torrent
		s.Uploaded += d.Uploaded
		s.Downloaded += d.Downloaded
		s.Snatches += d.Snatches
		m[k] = s
	}
	return slices.SortedFunc(maps.Values(m), func(x, y model.StatsDelta) int {
		if c := cmp.Compare(x.UserID, y.UserID); c != 0 {
			return c
		}
		return bytes.Compare(x.Torrent[:], y.Torrent[:])
	})
}
