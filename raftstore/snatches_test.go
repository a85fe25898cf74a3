package raftstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// TorrentSnatches reads many torrents' snatches in one transaction and
// agrees with TorrentStats; a torrent without stats has 0.
func TestTorrentSnatches(t *testing.T) {
	c := newCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, s := c.leader()
	var ids []model.InfoHash
	var deltas []model.StatsDelta
	for i := range 5 {
		var h model.InfoHash
		h[0], h[1] = 0xbb, byte(i)
		tr := model.Torrent{ID: h, InfoHashV1: h.String(), Name: fmt.Sprint("set", i), Metainfo: []byte("d4:infode"),
			Files: []model.File{{Path: "x", Length: 1 << 20}}, TotalSize: 1 << 20, Uploader: 1, Created: 1}
		if err := s.PutTorrent(ctx, tr); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h)
		if i < 4 { // the last torrent has no stats record
			deltas = append(deltas, model.StatsDelta{UserID: 1, Torrent: h, Downloaded: 10, Snatches: uint64(i)})
		}
	}
	if err := s.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: deltas}); err != nil {
		t.Fatal(err)
	}
	got := make([]int, len(ids))
	for i := range got {
		got[i] = -1
	}
	s.TorrentSnatches(ids, got)
	for i, h := range ids {
		want := 0
		if i < 4 {
			want = i
		}
		if got[i] != want || int(s.TorrentStats(h).Snatches) != want {
			t.Fatalf("torrent %d: TorrentSnatches %d, TorrentStats %d, want %d", i, got[i], s.TorrentStats(h).Snatches, want)
		}
	}
}
