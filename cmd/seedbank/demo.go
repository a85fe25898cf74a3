package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/node"
)

// demoCmd starts a three-node cluster on 127.0.0.1 in this process, each
// node with its own data dir and ports, creates an admin, prints the three
// site URLs and runs until Ctrl-C, then stops all three.
func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seedbank demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "demo-data", "parent folder of the three nodes' data dirs")
	base := fs.Int("port", 8080, "first site port; node i uses port+i for its site, 6969+i for the tracker, 7000+i for the cluster port, 7946+i for gossip")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	keyFile := filepath.Join(*dir, "cluster.key")
	key, err := os.ReadFile(keyFile)
	if err != nil {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		key = []byte(base64.StdEncoding.EncodeToString(k))
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			fmt.Fprintf(stderr, "seedbank demo: %v\n", err)
			return 1
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			fmt.Fprintf(stderr, "seedbank demo: %v\n", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var nodes []*node.Node
	defer func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			if err := nodes[i].Close(); err != nil {
				fmt.Fprintf(stderr, "stop node %d: %v\n", i+1, err)
			}
		}
	}()
	for i := 0; i < 3; i++ {
		cfg := node.Default()
		cfg.DataDir = filepath.Join(*dir, fmt.Sprintf("node%d", i+1))
		cfg.NodeID = fmt.Sprintf("node%d", i+1)
		cfg.Institution = fmt.Sprintf("Demo lab %d", i+1)
		cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", *base+i)
		cfg.TrackerAddr = fmt.Sprintf("127.0.0.1:%d", 6969+i)
		cfg.UDPAddr = cfg.TrackerAddr
		cfg.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", 7000+i)
		cfg.Gossip = fmt.Sprintf("127.0.0.1:%d", 7946+i)
		cfg.ClusterKey = string(key)
		cfg.AnnounceInterval = time.Minute
		if i > 0 {
			cfg.Join = []string{"127.0.0.1:7000"}
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := node.Start(sctx, cfg, log)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "seedbank demo: node %d: %v\n", i+1, err)
			return 1
		}
		nodes = append(nodes, n)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = nodes[0].Store().WaitForLeader(wctx)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "seedbank demo: %v\n", err)
		return 1
	}
	if _, err := nodes[0].Store().UserByName("admin"); err != nil {
		password, err := auth.NewCode(12)
		if err == nil {
			err = createDemoAdmin(ctx, nodes[0], password)
		}
		if err != nil {
			fmt.Fprintf(stderr, "seedbank demo: create admin: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "admin account: admin / %s (also in %s)\n", password, filepath.Join(*dir, "admin-password"))
		_ = os.WriteFile(filepath.Join(*dir, "admin-password"), []byte(password+"\n"), 0o600)
	} else {
		fmt.Fprintf(stdout, "admin account: admin (password in %s)\n", filepath.Join(*dir, "admin-password"))
	}
	fmt.Fprintln(stdout, "three-node seedbank federation on 127.0.0.1:")
	for _, n := range nodes {
		fmt.Fprintf(stdout, "  %s  site %s  announce %s/<passkey>/announce\n", n.ID(), n.SiteURL(), n.AnnounceURL())
	}
	fmt.Fprintln(stdout, "Ctrl-C stops all three.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return 0
}

func createDemoAdmin(ctx context.Context, n *node.Node, password string) error {
	hash, err := auth.HashPassword(password, auth.DefaultParams)
	if err != nil {
		return err
	}
	id, err := auth.NewID()
	if err != nil {
		return err
	}
	pk, err := auth.NewPasskey()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return n.Store().CreateUser(wctx, model.User{ID: id, Username: "admin", Email: "admin@demo.invalid", PasswordHash: hash,
		Passkey: pk, Role: model.RoleAdmin, Enabled: true, Created: time.Now().UnixMilli(),
		Extra: map[string]string{"email_confirmed": "1"}})
}
