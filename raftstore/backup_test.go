package raftstore_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

// snapshotOf collects every user, torrent, stat, setting, member and
// record a store holds, for comparing two clusters.
func snapshotOf(t *testing.T, s *raftstore.Store) map[string]any {
	t.Helper()
	users, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"users": users, "settings": s.Settings(), "members": s.Members(), "rules": s.ClientRules()}
	var torrents []model.Torrent
	if err := s.ForEachTorrent(func(tr model.Torrent) error { torrents = append(torrents, tr); return nil }); err != nil {
		t.Fatal(err)
	}
	out["torrents"] = torrents
	for _, u := range users {
		out["ustats/"+u.Username] = s.UserStats(u.ID)
	}
	for _, tr := range torrents {
		out["tstats/"+tr.ID.String()] = s.TorrentStats(tr.ID)
	}
	recs, _ := s.Records("invite", "")
	out["records"] = recs
	out["seq"] = s.LastStatsSeq("n1")
	return out
}

func TestBackupRestoreIntoFreshCluster(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := c.follower()
	var users []model.User
	for i := 0; i < 20; i++ {
		u := randomUser(fmt.Sprintf("u%d", i))
		if err := f.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	var deltas []model.StatsDelta
	for i := 0; i < 5; i++ {
		var h model.InfoHash
		h[0], h[1] = 0xaa, byte(i)
		tr := model.Torrent{ID: h, InfoHashV1: h.String(), Name: fmt.Sprint("set", i), Metainfo: []byte("d4:infode"),
			Files: []model.File{{Path: "x", Length: int64(i + 1)}}, TotalSize: int64(i + 1), Uploader: users[i].ID, Created: 1,
			Metadata: map[string]string{"organism": "Homo sapiens"}}
		if err := f.PutTorrent(ctx, tr); err != nil {
			t.Fatal(err)
		}
		deltas = append(deltas, model.StatsDelta{UserID: users[i].ID, Torrent: h, Uploaded: uint64(100 * i), Downloaded: 7, Snatches: 1})
	}
	if err := f.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 3, Deltas: deltas}); err != nil {
		t.Fatal(err)
	}
	_ = f.PutSetting(ctx, "registration_mode", "invite")
	_ = f.PutRecord(ctx, "invite", "abc", []byte(`{"by":1}`), true)
	_ = f.SetClientRules(ctx, []model.ClientRule{{Prefix: "-TR", Name: "Transmission"}})
	c.waitConverged(ctx)

	client, err := raftstore.NewClient([]string{c.addrs[1], c.addrs[0]}, raftstoretest.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var buf bytes.Buffer
	n, err := client.Backup(ctx, &buf)
	if err != nil || n == 0 {
		t.Fatalf("backup: %d %v", n, err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	cfg := raftstoretest.Config("r1", dir)
	// The restored node's address must be fixed before its snapshot names it.
	cfg.BindAddr = freeAddr(t)
	applied, err := raftstore.RestoreDataDir(dir, "r1", cfg.BindAddr, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raftstore.RestoreDataDir(dir, "r1", cfg.BindAddr, bytes.NewReader(buf.Bytes())); err == nil {
		t.Fatal("restored twice into one dir")
	}
	r, err := raftstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := raftstoretest.WaitLeader(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.AppliedIndex() < applied {
		t.Fatalf("restored node applied %d < %d", r.AppliedIndex(), applied)
	}
	want, got := snapshotOf(t, c.nodes[0]), snapshotOf(t, r)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("restored state differs:\nwant %v\ngot  %v", want, got)
	}
	if _, ok := r.UserByPasskey(users[3].Passkey); !ok {
		t.Fatal("restored passkey index empty")
	}
	// The restored cluster takes writes and keeps the stats sequence.
	if err := r.CreateUser(ctx, randomUser("after")); err != nil {
		t.Fatal(err)
	}
	if err := r.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 3, Deltas: deltas}); err != nil {
		t.Fatal(err)
	}
	if r.UserStats(users[1].ID) != c.nodes[0].UserStats(users[1].ID) {
		t.Fatal("a batch applied before the backup was applied again after restore")
	}
	// A garbage backup is refused.
	if _, err := raftstore.RestoreDataDir(filepath.Join(t.TempDir(), "x"), "r2", "127.0.0.1:1", bytes.NewReader([]byte("nope"))); err == nil {
		t.Fatal("garbage restored")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
