package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// A backup is the FSM's state file as of one applied index: every user,
// torrent, stat, setting, member and record. It is streamed over the
// cluster port (stream kind 'B') after an 8-byte length, so a cut-off
// transfer is detected.

// serveBackup writes a consistent copy of the state file to c.
func (s *Store) serveBackup(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Minute))
	err := s.view(func(tx *bolt.Tx) error {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(tx.Size()))
		if _, err := c.Write(n[:]); err != nil {
			return err
		}
		_, err := tx.WriteTo(c)
		return err
	})
	if err != nil {
		s.log.Warn("backup stream failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	s.log.Info("backup sent", "remote", c.RemoteAddr().String(), "applied_index", s.AppliedIndex())
}

// Backup streams a consistent copy of the replicated state from the first
// member that answers into w, and returns its size.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var last error
	for _, a := range c.addrs {
		conn, err := c.rpc.mux.dial(ctx, a, streamBackup)
		if err != nil {
			last = err
			if errors.Is(err, ErrClusterAuth) {
				return 0, err
			}
			continue
		}
		n, err := readBackup(ctx, conn, w)
		conn.Close()
		return n, err
	}
	return 0, fmt.Errorf("backup: no member answered: %w", last)
}

func readBackup(ctx context.Context, conn net.Conn, w io.Writer) (int64, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return 0, fmt.Errorf("backup: read size: %w", err)
	}
	size := int64(binary.BigEndian.Uint64(hdr[:]))
	n, err := io.Copy(w, io.LimitReader(conn, size))
	if err != nil {
		return n, fmt.Errorf("backup: copy: %w", err)
	}
	if n != size {
		return n, fmt.Errorf("backup: stream ended after %d of %d bytes", n, size)
	}
	return n, nil
}

// RestoreDataDir makes dir the data of a new single-node cluster holding the
// backup's state: state.db is the backup, and raft gets a snapshot at the
// backup's applied index whose configuration is this node alone, so raft
// starts from it without replaying or bootstrapping. dir must not hold raft
// state already. Further nodes join the restored node as usual.
func RestoreDataDir(dir, nodeID, clusterAddr string, backup io.Reader) (uint64, error) {
	if !nodeIDRe.MatchString(nodeID) {
		return 0, fmt.Errorf("node id %q is not valid", nodeID)
	}
	raftDir := filepath.Join(dir, "raft")
	if _, err := os.Stat(filepath.Join(raftDir, "raft.db")); err == nil {
		return 0, fmt.Errorf("restore: %s already holds raft state; restore into a new data dir", dir)
	}
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	statePath := filepath.Join(dir, "state.db")
	if err := writeFileSync(statePath, backup); err != nil {
		return 0, fmt.Errorf("restore: write state: %w", err)
	}
	db, err := openStateDB(statePath)
	if err != nil {
		os.Remove(statePath)
		return 0, fmt.Errorf("restore: the backup is not a seedbank state file: %w", err)
	}
	var applied uint64
	_ = db.View(func(tx *bolt.Tx) error {
		applied = getU64(tx.Bucket(bktMeta).Get(keyAppliedIndex))
		return nil
	})
	if applied == 0 {
		db.Close()
		return 0, errors.New("restore: the backup has no applied index")
	}

	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, newHCLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		db.Close()
		return 0, fmt.Errorf("restore: snapshot store: %w", err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(clusterAddr))
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(nodeID), Address: raft.ServerAddress(clusterAddr), Suffrage: raft.Voter}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, applied, 1, conf, applied, trans)
	if err != nil {
		db.Close()
		return 0, fmt.Errorf("restore: create snapshot: %w", err)
	}
	err = db.View(func(tx *bolt.Tx) error { _, err := tx.WriteTo(sink); return err })
	db.Close()
	if err != nil {
		sink.Cancel()
		return 0, fmt.Errorf("restore: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return 0, fmt.Errorf("restore: close snapshot: %w", err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		return 0, fmt.Errorf("restore: create raft log: %w", err)
	}
	defer logs.Close()
	// Terms must not go backwards from the snapshot's.
	if err := logs.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	return applied, nil
}
