package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/node"
)

// The user subcommands change accounts on a running node through its
// cluster port, with the key read from the data dir.
func TestUserCommandsOnRunningNode(t *testing.T) {
	cfg := node.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr, cfg.TrackerAddr, cfg.UDPAddr, cfg.ClusterAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Store().WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEEDBANK_ADMIN_PASSWORD", "")
	run := func(stdin string, args ...string) (int, string) {
		var out bytes.Buffer
		code := userCmd(append(args, "--cluster", n.ClusterAddr(), "--data", cfg.DataDir), strings.NewReader(stdin), &out, &out)
		return code, out.String()
	}
	if code, out := run("correct horse battery\n", "create-admin", "--name", "root", "--email", "root@example.org"); code != 0 {
		t.Fatalf("create-admin: %d %s", code, out)
	}
	u, err := n.Store().UserByName("root")
	if err != nil || u.Role != "admin" || !u.Enabled {
		t.Fatalf("admin: %+v %v", u, err)
	}
	if ok, _ := auth.VerifyPassword("correct horse battery", u.PasswordHash); !ok {
		t.Fatal("password not stored as given")
	}
	if code, out := run("member password 1\n", "create", "--name", "dana", "--email", "dana@example.org"); code != 0 {
		t.Fatalf("create: %d %s", code, out)
	}
	if d, err := n.Store().UserByName("dana"); err != nil || d.Role != "member" {
		t.Fatalf("member: %+v %v", d, err)
	}
	if code, _ := run("member password 1\n", "create", "--name", "erin", "--email", "erin@example.org", "--role", "king"); code == 0 {
		t.Fatal("unknown role accepted")
	}
	if code, out := run("", "reset-passkey", "root"); code != 0 {
		t.Fatalf("reset-passkey: %d %s", code, out)
	}
	if _, ok := n.Store().UserByPasskey(u.Passkey); ok {
		t.Fatal("old passkey still works")
	}
	if code, out := run("", "disable", "root"); code != 0 {
		t.Fatalf("disable: %d %s", code, out)
	}
	got, _ := n.Store().UserByName("root")
	if got.Enabled || got.SessionEpoch != u.SessionEpoch+1 {
		t.Fatalf("disable did not stick: %+v", got)
	}
	for _, bad := range [][]string{{"disable", "nobody"}, {"create-admin", "--name", "x y", "--email", "a@b.org"}, {"frob"}} {
		code, out := run("long enough password\n", bad...)
		if code == 0 || out == "" {
			t.Errorf("%v: exit %d %q", bad, code, out)
		}
	}
	// A wrong key is refused by the cluster.
	var out bytes.Buffer
	if code := userCmd([]string{"disable", "root", "--cluster", n.ClusterAddr(), "--cluster-key", "c2VlZGJhbmstd3Jvbmcta2V5LTMyLWJ5dGVzISEhISE="}, nil, &out, &out); code == 0 || !strings.Contains(out.String(), "cluster") {
		t.Fatalf("wrong key: %s", out.String())
	}
}
