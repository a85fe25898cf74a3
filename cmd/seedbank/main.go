// Command seedbank runs a node of the seedbank federated tracker and catalog.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seedbank/seedbank/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `seedbank: federated private BitTorrent tracker and catalog for scientific data

Usage:
  seedbank serve [flags]     start a node (no flags: a single-node cluster in ./data)
  seedbank demo              a three-node federation on 127.0.0.1 in one process (Ctrl-C stops it)
  seedbank user ...          create an admin, disable a user, reset a passkey
  seedbank backup --out FILE copy the replicated state of a running cluster to FILE
  seedbank restore --from FILE --data DIR
                             make DIR a new single-node cluster holding FILE's state
  seedbank key ...           list, add, use or remove cluster keys (key rotation)
  seedbank node remove ID    remove a node that is gone for good from the cluster
  seedbank version           print the version

Run 'seedbank serve --help' for every option.
`

func main() {
	node.Version = version
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], stdout, stderr)
	case "user":
		return userCmd(args[1:], os.Stdin, stdout, stderr)
	case "key":
		return keyCmd(args[1:], stdout, stderr)
	case "node":
		return nodeCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "seedbank", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "seedbank: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg := node.Default()
	fs := flag.NewFlagSet("seedbank serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	leaveOnStop := fs.Bool("leave-on-stop", os.Getenv("SEEDBANK_LEAVE_ON_STOP") == "true", "leave the cluster gracefully on SIGTERM/SIGINT (env SEEDBANK_LEAVE_ON_STOP=true)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: seedbank serve [flags]\n\nStarts a node. With no flags: a single-node cluster with its data in ./data,\nsite on http://127.0.0.1:8080, HTTP tracker on 127.0.0.1:6969, UDP tracker on\n127.0.0.1:6969, cluster port on 127.0.0.1:7000. Options come from defaults,\nthen --config FILE (TOML), then SEEDBANK_* env vars, then flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := node.Load(&cfg, fs, args, node.EnvLookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "seedbank serve: %v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	n, err := node.Start(startCtx, cfg, log)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "seedbank serve: %v\n", err)
		return 1
	}
	if n.NewClusterKey != "" {
		fmt.Fprintf(stdout, "New cluster created. Its key (also kept in %s/cluster.key):\n  %s\n", cfg.DataDir, n.NewClusterKey)
	}
	if n.NewJoinSecret != "" {
		fmt.Fprintf(stdout, "Join secret (shown once here; admins see and rotate it on the site's Cluster page):\n  %s\nAnother node joins with: seedbank serve --join %s --join-secret <secret>\n", n.NewJoinSecret, n.ClusterAddr())
	}
	fmt.Fprintf(stdout, "seedbank node %s is up\n  site:     %s\n  announce: %s/<passkey>/announce\n  cluster:  %s\n  gossip:   %s\n  health:   %s/healthz  %s/readyz  %s/metrics\n",
		n.ID(), n.SiteURL(), n.AnnounceURL(), n.ClusterAddr(), n.GossipAddr(), n.SiteURL(), n.SiteURL(), n.SiteURL())

	<-ctx.Done()
	log.Info("stopping")
	if *leaveOnStop {
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := n.Leave(lctx); err != nil {
			log.Error("leave", "err", err)
		}
		cancel()
	}
	if err := n.Close(); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
