package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/seedbank/seedbank/node"
)

const nodeUsage = `Usage: seedbank node remove NODE-ID [flags]

Remove a node that is gone for good from a running cluster, through any
member's cluster port: from raft, from the member records (new .torrent files
stop listing its announce URL) and from gossip. The leader does this by
itself for a node dead past --dead-node-grace; this is for not waiting. A
node that should leave while it runs stops with --leave-on-stop instead.

Flags:
  --cluster ADDR      a member's cluster address (default 127.0.0.1:7000, env SEEDBANK_CLUSTER)
  --data DIR          read the cluster key from DIR/cluster.key (default ./data)
  --cluster-key KEY   the cluster key, base64 (env SEEDBANK_CLUSTER_KEY)
`

func nodeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "remove" {
		fmt.Fprint(stderr, nodeUsage)
		return 2
	}
	fs := flag.NewFlagSet("seedbank node remove", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nodeUsage) }
	cf := addClusterFlags(fs)
	ids, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return 2
	}
	if len(ids) != 1 {
		fmt.Fprint(stderr, "seedbank node remove: give exactly one NODE-ID\n\n"+nodeUsage)
		return 2
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "seedbank node remove: %v\n", err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := node.RemoveFromCluster(ctx, c, ids[0]); err != nil {
		fmt.Fprintf(stderr, "seedbank node remove: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed %s from the cluster\n", ids[0])
	return 0
}
