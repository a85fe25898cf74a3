package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/seedbank/seedbank/node"
)

// backupCmd writes a consistent copy of the replicated state of a running
// cluster to a file.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seedbank backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to (required)")
	cluster := fs.String("cluster", envOr("SEEDBANK_CLUSTER", "127.0.0.1:7000"), "a member's cluster address (env SEEDBANK_CLUSTER)")
	data := fs.String("data", envOr("SEEDBANK_DATA", "data"), "read the cluster key from DIR/cluster.key")
	keyFlag := fs.String("cluster-key", os.Getenv("SEEDBANK_CLUSTER_KEY"), "the cluster key, base64 (env SEEDBANK_CLUSTER_KEY)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "seedbank backup: --out FILE is required")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "seedbank backup: %v\n", err); return 1 }
	client, err := dialCluster(*cluster, *keyFlag, *data)
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// Write beside the target and rename, so a failed backup never
	// replaces a good one.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".seedbank-backup-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	n, err := client.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, n)
	return 0
}

// restoreCmd prepares a new data dir from a backup.
func restoreCmd(args []string, stdout, stderr io.Writer) int {
	cfg := node.Default()
	fs := flag.NewFlagSet("seedbank restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "backup file written by seedbank backup (required)")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "new data directory to create (must be empty or absent)")
	fs.StringVar(&cfg.ClusterAddr, "cluster", cfg.ClusterAddr, "cluster address the restored node will serve on (IP:port)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "cluster address other nodes dial, when it differs from --cluster")
	fs.StringVar(&cfg.NodeID, "node-id", "", "node id (default: generated)")
	fs.StringVar(&cfg.ClusterKey, "cluster-key", os.Getenv("SEEDBANK_CLUSTER_KEY"), "cluster key for the new cluster (default: a new one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "seedbank restore: --from FILE is required")
		return 2
	}
	f, err := os.Open(*from)
	if err != nil {
		fmt.Fprintf(stderr, "seedbank restore: %v\n", err)
		return 1
	}
	defer f.Close()
	key, applied, err := node.RestoreBackup(cfg, f)
	if err != nil {
		fmt.Fprintf(stderr, "seedbank restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored state at index %d into %s\nstart it with: seedbank serve --data %s --cluster %s\n", applied, cfg.DataDir, cfg.DataDir, cfg.ClusterAddr)
	if key != "" {
		fmt.Fprintf(stdout, "new cluster key (also in %s/cluster.key):\n  %s\n", cfg.DataDir, key)
	}
	return 0
}
