package raftstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

// TorrentSnatches reads many torrents' snatches in one transaction and
// agrees with TorrentStats; a torrent without stats has 0.
func TestTorrentSnatches(t *testing.T) {
	c := newCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, s := c.leader()
	ids := putTorrents(ctx, t, s, 0xbb, 5)
	var deltas []model.StatsDelta
	for i, h := range ids[:4] { // the last torrent has no stats record
		deltas = append(deltas, model.StatsDelta{UserID: 1, Torrent: h, Downloaded: 10, Snatches: uint64(i)})
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

// An applied stats batch names, in its Change, the torrents whose snatch
// count it raised (the search index refreshes only those), and no others.
func TestChangeListsSnatchedTorrents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var snatched [][]model.InfoHash
	cfg := raftstoretest.Config("n1", t.TempDir())
	cfg.OnApply = func(c raftstore.Change) {
		mu.Lock()
		defer mu.Unlock()
		if len(c.Snatched) > 0 {
			snatched = append(snatched, c.Snatched)
		}
	}
	s, err := raftstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := raftstoretest.WaitLeader(ctx, s); err != nil {
		t.Fatal(err)
	}
	hs := putTorrents(ctx, t, s, 0xcc, 3)
	var unknown model.InfoHash
	unknown[0] = 0xdd // not registered: keeps no counters, so no change
	err = s.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{
		{UserID: 1, Torrent: hs[0], Downloaded: 10},
		{UserID: 1, Torrent: hs[1], Downloaded: 10, Snatches: 1},
		{UserID: 2, Torrent: hs[2], Uploaded: 5, Snatches: 2},
		{UserID: 2, Torrent: unknown, Snatches: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(snatched) != 1 || !slices.Equal(snatched[0], hs[1:]) {
		t.Fatalf("changes listed snatched torrents %x, want one change with %x", snatched, hs[1:])
	}
}

// putTorrents registers n small torrents whose hashes start with prefix and
// returns their hashes.
func putTorrents(ctx context.Context, t *testing.T, s *raftstore.Store, prefix byte, n int) []model.InfoHash {
	t.Helper()
	var hs []model.InfoHash
	for i := range n {
		var h model.InfoHash
		h[0], h[1] = prefix, byte(i)
		tr := model.Torrent{ID: h, InfoHashV1: h.String(), Name: fmt.Sprint("set", i), Metainfo: []byte("d4:infode"),
			Files: []model.File{{Path: "x", Length: 1 << 20}}, TotalSize: 1 << 20, Uploader: 1, Created: 1}
		if err := s.PutTorrent(ctx, tr); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}
