package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/clusterkey"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
)

const userUsage = `Usage: seedbank user <command> [flags]

Manage accounts on a running cluster through any member's cluster port.

Commands:
  create --name NAME --email EMAIL [--role member|moderator|admin]
                                           create an account (default role member);
                                           the password is read from
                                           SEEDBANK_ADMIN_PASSWORD or stdin
  create-admin --name NAME --email EMAIL   create --role admin
  disable NAME                             disable an account and end its sessions
  enable NAME                              enable an account again
  reset-passkey NAME                       give an account a new passkey; the old
                                           one stops working on every node

Flags (every command):
  --cluster ADDR      a member's cluster address (default 127.0.0.1:7000, env SEEDBANK_CLUSTER)
  --data DIR          read the cluster key from DIR/cluster.key (default ./data)
  --cluster-key KEY   the cluster key, base64 (env SEEDBANK_CLUSTER_KEY)
`

func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, userUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("seedbank user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, userUsage) }
	cf := addClusterFlags(fs)
	name := fs.String("name", "", "")
	role := fs.String("role", "member", "")
	email := fs.String("email", "", "")
	// Accept flags before and after the user name.
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "seedbank user %s: %v\n", sub, err)
		return 1
	}
	client, err := cf.dial()
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	switch sub {
	case "create", "create-admin":
		if sub == "create-admin" {
			*role = string(model.RoleAdmin)
		}
		if !model.Role(*role).Valid() {
			return fail(fmt.Errorf("role: %q is not member, moderator or admin", *role))
		}
		if *name == "" || *email == "" || len(positional) != 0 {
			fmt.Fprint(stderr, userUsage)
			return 2
		}
		password := os.Getenv("SEEDBANK_ADMIN_PASSWORD")
		if password == "" {
			fmt.Fprint(stderr, "password: ")
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fail(fmt.Errorf("read password: %w", err))
			}
			password = strings.TrimRight(line, "\r\n")
		}
		if len(password) < 10 {
			return fail(errors.New("password: must be at least 10 characters"))
		}
		hash, err := auth.HashPassword(password, auth.DefaultParams)
		if err != nil {
			return fail(err)
		}
		id, err := auth.NewID()
		if err != nil {
			return fail(err)
		}
		pk, err := auth.NewPasskey()
		if err != nil {
			return fail(err)
		}
		u := model.User{ID: id, Username: *name, Email: *email, PasswordHash: hash, Passkey: pk,
			Role: model.Role(*role), Enabled: true, Created: time.Now().UnixMilli(),
			Extra: map[string]string{"email_confirmed": "1"}}
		if err := client.CreateUser(ctx, u); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created %s %s\n", u.Role, u.Username)
		return 0
	case "disable", "enable", "reset-passkey":
		if len(positional) != 1 {
			fmt.Fprint(stderr, userUsage)
			return 2
		}
		u, err := client.UserByName(ctx, positional[0])
		if err != nil {
			if errors.Is(err, raftstore.ErrNotFound) {
				return fail(fmt.Errorf("no user named %q", positional[0]))
			}
			return fail(err)
		}
		switch sub {
		case "disable":
			u.Enabled = false
			u.SessionEpoch++
		case "enable":
			u.Enabled = true
		case "reset-passkey":
			if u.Passkey, err = auth.NewPasskey(); err != nil {
				return fail(err)
			}
		}
		if err := client.UpdateUser(ctx, u); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s: done for %s\n", sub, u.Username)
		return 0
	default:
		fmt.Fprintf(stderr, "seedbank user: unknown command %q\n\n%s", sub, userUsage)
		return 2
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// dialCluster returns a client for the members in the comma-separated
// cluster list, with the key given or read from the data dir.
// clusterFlags are the flags of every command that talks to a running
// cluster through a member's cluster port.
type clusterFlags struct{ cluster, data, key *string }

func addClusterFlags(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		cluster: fs.String("cluster", envOr("SEEDBANK_CLUSTER", "127.0.0.1:7000"), ""),
		data:    fs.String("data", envOr("SEEDBANK_DATA", "data"), ""),
		key:     fs.String("cluster-key", os.Getenv("SEEDBANK_CLUSTER_KEY"), ""),
	}
}

func (c clusterFlags) dial() (*raftstore.Client, error) {
	return dialCluster(*c.cluster, *c.key, *c.data)
}

// parseInterleaved parses args with flags before, between and after the
// positional arguments, and returns those.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func dialCluster(cluster, key, dataDir string) (*raftstore.Client, error) {
	k, err := clusterKey(key, dataDir)
	if err != nil {
		return nil, err
	}
	return raftstore.NewClient(strings.Split(cluster, ","), k, nil)
}

func clusterKey(given, dataDir string) ([]byte, error) {
	if given != "" {
		return clusterkey.Parse(given)
	}
	ring, err := clusterkey.Read(dataDir)
	if err != nil {
		return nil, fmt.Errorf("no --cluster-key, and %w", err)
	}
	return ring.Primary(), nil
}
