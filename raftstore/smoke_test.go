package raftstore_test

import (
	"context"
	"testing"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

func TestSmoke(t *testing.T) {
	s := raftstoretest.Single(t)
	u := model.User{ID: 1, Username: "alice", Email: "a@example.org", PasswordHash: "x", Passkey: "0123456789abcdef0123456789abcdef", Role: model.RoleAdmin, Enabled: true, Created: 1}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByName("ALICE")
	if err != nil || got.Email != u.Email {
		t.Fatal(got, err)
	}
	if r, ok := s.UserByPasskey(u.Passkey); !ok || r.ID != 1 {
		t.Fatal(r, ok)
	}
}

// TestTorrentGeneration: the number the tracker keeps torrent lookups
// under moves with every change of the torrents (so a kept lookup is
// never used after one) and stays put for stats batches (the commonest
// entry: moving it would make the tracker look every torrent up again).
func TestTorrentGeneration(t *testing.T) {
	ctx := context.Background()
	s := raftstoretest.Single(t)
	u := model.User{ID: 1, Username: "alice", Email: "a@example.org", PasswordHash: "x", Passkey: "0123456789abcdef0123456789abcdef", Role: model.RoleAdmin, Enabled: true, Created: 1}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	g0 := s.TorrentGeneration()
	if g0 == 0 {
		t.Fatal("generation 0")
	}
	h := model.InfoHash{0xab, 1}
	tr := model.Torrent{ID: h, InfoHashV1: h.String(), Name: "reads", Metainfo: []byte("d4:infode"),
		Files: []model.File{{Path: "r.fastq", Length: 10}}, TotalSize: 10, Uploader: 1, Created: 1}
	if err := s.PutTorrent(ctx, tr); err != nil {
		t.Fatal(err)
	}
	g1 := s.TorrentGeneration()
	if ref, ok := s.TorrentByHash(h); g1 == g0 || !ok || ref.TotalSize != 10 {
		t.Fatalf("after PutTorrent: generation %d -> %d, lookup %+v %v", g0, g1, ref, ok)
	}
	if err := s.CommitStats(ctx, model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{UserID: 1, Torrent: h, Uploaded: 5}}}); err != nil {
		t.Fatal(err)
	}
	if g := s.TorrentGeneration(); g != g1 {
		t.Fatalf("a stats batch moved the generation %d -> %d", g1, g)
	}
	if err := s.DeleteTorrent(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.TorrentByHash(h); s.TorrentGeneration() == g1 || ok {
		t.Fatalf("after DeleteTorrent: generation still %d, lookup %v", g1, ok)
	}
}

// A join request from the leader itself (a joiner whose first attempt was
// added but not answered, elected since) is done; another node claiming
// the leader's id or address is refused.
func TestJoinOfTheLeaderItself(t *testing.T) {
	s := raftstoretest.Single(t)
	if _, err := raftstore.AddServer(s, s.NodeID(), s.Addr()); err != nil {
		t.Fatalf("the leader's own join: %v", err)
	}
	if _, err := raftstore.AddServer(s, s.NodeID(), "127.0.0.1:1"); err == nil {
		t.Fatal("the leader's id at another address was accepted")
	}
	if _, err := raftstore.AddServer(s, "n9", s.Addr()); err == nil {
		t.Fatal("another id at the leader's address was accepted")
	}
	if srv, err := s.Servers(); err != nil || len(srv) != 1 {
		t.Fatalf("servers %v, %v: want the leader alone", srv, err)
	}
}
