package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/seedbank/seedbank/clusterkey"
)

const keyUsage = `Usage: seedbank key COMMAND [--data DIR] [KEY]

Manage the node's cluster key file, <data>/cluster.key (the first key is the
one the node uses; the others it also accepts). Edits take effect when the
node restarts. Rotating the key, one node at a time (docs/OPERATIONS.md):
  1. seedbank key new                 print a new random key (once, on any machine)
  2. seedbank key add KEY             on every node, then restart it: all accept KEY
  3. seedbank key use KEY             on every node, then restart it: all use KEY
  4. seedbank key remove OLD          on every node, then restart it: OLD is refused

Commands:
  list          show the keys' fingerprints, the one in use first
  new           print a new random key (does not change any file)
  add KEY       accept KEY besides the key in use
  use KEY       use KEY (added if missing); the old one stays accepted
  remove KEY    stop accepting KEY (not the one in use)

Flags:
  --data DIR    the node's data dir (default ./data, env SEEDBANK_DATA)
`

func keyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, keyUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("seedbank key "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := envOr("SEEDBANK_DATA", "data")
	fs.StringVar(&dataDir, "data", dataDir, "the node's data dir")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := runKey(sub, dataDir, fs.Args(), stdout); err != nil {
		fmt.Fprintf(stderr, "seedbank key %s: %v\n", sub, err)
		return 1
	}
	return 0
}

func runKey(sub, dataDir string, args []string, stdout io.Writer) error {
	if sub == "new" {
		k, err := clusterkey.New()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, clusterkey.Encode(k))
		return nil
	}
	ring, err := clusterkey.Read(dataDir)
	if err != nil {
		return err
	}
	if sub == "list" {
		for i, k := range ring.Keys {
			role := "accepted"
			if i == 0 {
				role = "in use"
			}
			fmt.Fprintf(stdout, "%s  %s\n", clusterkey.Fingerprint(k), role)
		}
		return nil
	}
	if len(args) != 1 {
		return errors.New("give exactly one KEY (base64, as printed by 'seedbank key new')")
	}
	k, err := clusterkey.Parse(args[0])
	if err != nil {
		return err
	}
	at := ring.Index(k)
	switch sub {
	case "add":
		if at >= 0 {
			fmt.Fprintf(stdout, "key %s is already in %s; nothing changed\n", clusterkey.Fingerprint(k), dataDir)
			return nil
		}
		ring.Keys = append(ring.Keys, k)
	case "use":
		if at == 0 {
			fmt.Fprintf(stdout, "key %s is already in use; nothing changed\n", clusterkey.Fingerprint(k))
			return nil
		}
		if at > 0 {
			ring.Keys = append(ring.Keys[:at], ring.Keys[at+1:]...)
		}
		ring.Keys = append([][]byte{k}, ring.Keys...)
	case "remove":
		switch {
		case at < 0:
			return fmt.Errorf("key %s is not in %s", clusterkey.Fingerprint(k), dataDir)
		case at == 0:
			return errors.New("this is the key in use: 'seedbank key use' another key first")
		}
		ring.Keys = append(ring.Keys[:at], ring.Keys[at+1:]...)
	default:
		return fmt.Errorf("unknown command %q (list, new, add, use, remove)", sub)
	}
	if err := clusterkey.Write(dataDir, ring); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s now holds:\n", dataDir+"/"+clusterkey.FileName)
	for i, k := range ring.Keys {
		role := "accepted"
		if i == 0 {
			role = "in use"
		}
		fmt.Fprintf(stdout, "  %s  %s\n", clusterkey.Fingerprint(k), role)
	}
	fmt.Fprintln(stdout, "Restart the node to apply.")
	return nil
}
