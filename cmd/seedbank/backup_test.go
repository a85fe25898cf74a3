package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/node"
)

func startTestNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Store().WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func loopbackConfig(dir string) node.Config {
	cfg := node.Default()
	cfg.DataDir = dir
	cfg.HTTPAddr, cfg.TrackerAddr, cfg.UDPAddr, cfg.ClusterAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// seedbank backup from a running node, seedbank restore into a new data
// dir, and the restored node serves the same users, torrents and stats.
func TestBackupAndRestoreCommands(t *testing.T) {
	srcDir := filepath.Join(t.TempDir(), "src")
	src := startTestNode(t, loopbackConfig(srcDir))
	ctx := context.Background()
	var h model.InfoHash
	h[0] = 9
	u := model.User{ID: 5, Username: "carol", Email: "carol@example.org", PasswordHash: "h", Passkey: strings.Repeat("ef", 16),
		Role: model.RoleModerator, Enabled: true, Created: 1}
	if err := src.Store().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	tr := model.Torrent{ID: h, InfoHashV1: h.String(), Name: "genome", Metainfo: []byte("m"), Files: []model.File{{Path: "g.fa", Length: 3}},
		TotalSize: 3, Uploader: 5, Created: 2}
	if err := src.Store().PutTorrent(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if err := src.Store().CommitStats(ctx, model.StatsBatch{NodeID: "x", Seq: 1, Deltas: []model.StatsDelta{{UserID: 5, Torrent: h, Uploaded: 11, Downloaded: 3, Snatches: 1}}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "seedbank.backup")
	var out bytes.Buffer
	if code := backupCmd([]string{"--out", file, "--cluster", src.ClusterAddr(), "--data", srcDir}, &out, &out); code != 0 {
		t.Fatalf("backup: %s", out.String())
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	newDir := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	if code := restoreCmd([]string{"--from", file, "--data", newDir, "--cluster", addr}, &out, &out); code != 0 {
		t.Fatalf("restore: %s", out.String())
	}
	if !strings.Contains(out.String(), "new cluster key") {
		t.Fatalf("restore did not report the new key: %s", out.String())
	}
	out.Reset()
	if code := restoreCmd([]string{"--from", file, "--data", newDir, "--cluster", addr}, &out, &out); code == 0 {
		t.Fatal("restored over an existing data dir")
	}
	cfg := loopbackConfig(newDir)
	cfg.ClusterAddr = addr
	dst := startTestNode(t, cfg)
	got, err := dst.Store().UserByName("carol")
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("user after restore: %+v %v", got, err)
	}
	gt, err := dst.Store().Torrent(h)
	if err != nil || gt.Name != "genome" {
		t.Fatalf("torrent after restore: %+v %v", gt, err)
	}
	if dst.Store().UserStats(5) != src.Store().UserStats(5) || dst.Store().TorrentStats(h) != src.Store().TorrentStats(h) {
		t.Fatal("stats differ after restore")
	}
	if _, ok := dst.Store().UserByPasskey(u.Passkey); !ok {
		t.Fatal("passkey does not work after restore")
	}
	if err := dst.Store().PutSetting(ctx, "after", "restore"); err != nil {
		t.Fatalf("restored cluster refuses writes: %v", err)
	}
}
