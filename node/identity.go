package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/seedbank/seedbank/atomicfile"
	"github.com/seedbank/seedbank/clusterkey"
)

// identity is this node's record of who it is, kept in <data>/node.json.
// Its presence is what marks a directory as a seedbank data dir.
type identity struct {
	Format  string `json:"format"`
	NodeID  string `json:"node_id"`
	Created string `json:"created"`
}

const identityFormat = "seedbank-node-v1"

// loadIdentity reads or creates node.json. A non-empty directory without
// one is refused: it is not ours, and starting there could mix files.
func loadIdentity(dir, wantID string) (identity, bool, error) {
	path := filepath.Join(dir, "node.json")
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		var id identity
		if err := json.Unmarshal(raw, &id); err != nil || id.Format != identityFormat || id.NodeID == "" {
			return identity{}, false, fmt.Errorf("data dir %s: node.json is corrupt or not a seedbank node file", dir)
		}
		if wantID != "" && wantID != id.NodeID {
			return identity{}, false, fmt.Errorf("data dir %s belongs to node %q, not %q; use the matching --node-id or another --data", dir, id.NodeID, wantID)
		}
		return id, false, nil
	case errors.Is(err, os.ErrNotExist):
	default:
		return identity{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return identity{}, false, fmt.Errorf("read data dir %s: %w", dir, err)
	}
	if len(entries) > 0 {
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return identity{}, false, fmt.Errorf("data dir %s is not empty (%s) but has no node.json: not a seedbank data dir, refusing to start; choose an empty or new --data", dir, strings.Join(names, ", "))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return identity{}, false, fmt.Errorf("create data dir: %w", err)
	}
	id := identity{Format: identityFormat, NodeID: wantID, Created: time.Now().UTC().Format(time.RFC3339)}
	if id.NodeID == "" {
		host, _ := os.Hostname()
		host = sanitizeID(host)
		var b [3]byte
		_, _ = rand.Read(b[:])
		id.NodeID = host + "-" + hex.EncodeToString(b[:])
	}
	raw, _ = json.MarshalIndent(id, "", "  ")
	if err := atomicfile.Write(path, raw, 0o600); err != nil {
		return identity{}, false, err
	}
	return id, true, nil
}

func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
		if b.Len() >= 40 {
			break
		}
	}
	if b.Len() == 0 || !strings.ContainsAny(b.String()[:1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
		return "node"
	}
	return b.String()
}

// loadClusterKey returns the keys saved in the data dir, saving the one
// given (joining) or a new random one (bootstrapping) on first start. A
// given key must be one the file holds.
func loadClusterKey(dir, given string, joining bool) (ring clusterkey.Ring, created bool, err error) {
	ring, err = clusterkey.Read(dir)
	switch {
	case err == nil:
		if given != "" {
			k, perr := clusterkey.Parse(given)
			if perr != nil || ring.Index(k) < 0 {
				return ring, false, fmt.Errorf("--cluster-key is not among the keys saved in %s; this data dir belongs to another cluster (or the key was rotated out: drop --cluster-key, the file is what counts)", filepath.Join(dir, clusterkey.FileName))
			}
		}
		return ring, false, nil
	case !errors.Is(err, clusterkey.ErrNoFile):
		return ring, false, fmt.Errorf("data dir %s: %w", dir, err)
	}
	var k []byte
	if given == "" {
		if joining {
			return ring, false, errors.New("joining a cluster needs its join secret (--join-secret, shown to admins on the site's Cluster page) or its key (--cluster-key, in <data>/cluster.key on any member)")
		}
		if k, err = clusterkey.New(); err != nil {
			return ring, false, err
		}
		created = true
	} else if k, err = clusterkey.Parse(given); err != nil {
		return ring, false, err
	}
	ring = clusterkey.Ring{Keys: [][]byte{k}}
	if err := clusterkey.Write(dir, ring); err != nil {
		return ring, false, err
	}
	return ring, created, nil
}

func encodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
