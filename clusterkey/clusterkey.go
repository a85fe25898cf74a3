// Package clusterkey reads and writes a node's cluster key file,
// <data>/cluster.key: base64 keys, one per line. The first is the primary
// key: the node proves it when it dials other nodes, encrypts gossip with a
// key derived from it and signs sessions with one. Further lines are keys
// it also accepts from others, so the cluster key can be rotated one node
// at a time (docs/OPERATIONS.md).
package clusterkey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/seedbank/seedbank/atomicfile"
)

// FileName is the key file's name in a data dir.
const FileName = "cluster.key"

// Ring is a node's keys, the primary first.
type Ring struct {
	Keys [][]byte
}

// Primary is the key the node uses.
func (r Ring) Primary() []byte { return r.Keys[0] }

// Accepted are the other keys the node accepts.
func (r Ring) Accepted() [][]byte { return r.Keys[1:] }

// Index returns k's position in the ring, -1 when absent.
func (r Ring) Index(k []byte) int {
	for i, have := range r.Keys {
		if bytes.Equal(have, k) {
			return i
		}
	}
	return -1
}

// Parse decodes one base64 key of 16, 24 or 32 bytes.
func Parse(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("cluster key is not base64: %w", err)
	}
	if len(k) != 16 && len(k) != 24 && len(k) != 32 {
		return nil, fmt.Errorf("cluster key must decode to 16, 24 or 32 bytes, got %d", len(k))
	}
	return k, nil
}

// Encode is a key as written in the file and given to --cluster-key.
func Encode(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// New returns a random 32-byte key.
func New() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate cluster key: %w", err)
	}
	return k, nil
}

// Fingerprint names a key without revealing it.
func Fingerprint(k []byte) string {
	s := sha256.Sum256(append([]byte("seedbank key fingerprint\x00"), k...))
	return hex.EncodeToString(s[:6])
}

// ErrNoFile means the data dir has no key file yet.
var ErrNoFile = errors.New("no cluster key file")

// Read loads the ring in dir. Blank lines and lines starting with # are
// ignored.
func Read(dir string) (Ring, error) {
	path := filepath.Join(dir, FileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Ring{}, fmt.Errorf("%s: %w", path, ErrNoFile)
	}
	if err != nil {
		return Ring{}, fmt.Errorf("read %s: %w", path, err)
	}
	var r Ring
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := Parse(line)
		if err != nil {
			return Ring{}, fmt.Errorf("%s line %d is corrupt: %w", path, n+1, err)
		}
		if r.Index(k) < 0 {
			r.Keys = append(r.Keys, k)
		}
	}
	if len(r.Keys) == 0 {
		return Ring{}, fmt.Errorf("%s holds no key", path)
	}
	return r, nil
}

// Write saves the ring in dir atomically, readable by the owner only.
func Write(dir string, r Ring) error {
	if len(r.Keys) == 0 {
		return errors.New("refusing to write an empty cluster key file")
	}
	var b strings.Builder
	for _, k := range r.Keys {
		b.WriteString(Encode(k))
		b.WriteByte('\n')
	}
	return atomicfile.Write(filepath.Join(dir, FileName), []byte(b.String()), 0o600)
}
