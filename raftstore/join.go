package raftstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// The join secret lets a new node fetch the cluster key from any member, so
// an operator hands out a short-lived, rotatable secret instead of the key
// itself. It lives in the replicated state (record cluster/join-secret), is
// made when a cluster is bootstrapped, shown to admins, and replaced by
// RotateJoinSecret; the old one stops working as soon as the rotation is
// applied on the member a joiner asks.

const (
	recordKindCluster = "cluster"
	recordJoinSecret  = "join-secret"
)

// JoinSecret returns the current join secret, or "" when there is none.
func (s *Store) JoinSecret() string {
	v, err := s.Record(recordKindCluster, recordJoinSecret)
	if err != nil {
		return ""
	}
	return string(v)
}

// EnsureJoinSecret makes a join secret if the cluster has none and returns
// the current one; created reports whether this call made it.
func (s *Store) EnsureJoinSecret(ctx context.Context) (secret string, created bool, err error) {
	if cur := s.JoinSecret(); cur != "" {
		return cur, false, nil
	}
	fresh, err := newJoinSecret()
	if err != nil {
		return "", false, err
	}
	err = s.PutRecord(ctx, recordKindCluster, recordJoinSecret, []byte(fresh), true)
	switch {
	case err == nil:
		return fresh, true, nil
	case errors.Is(err, ErrRecordExists):
		return s.JoinSecret(), false, nil
	default:
		return "", false, fmt.Errorf("store join secret: %w", err)
	}
}

// RotateJoinSecret replaces the join secret with a new random one and
// returns it.
func (s *Store) RotateJoinSecret(ctx context.Context) (string, error) {
	fresh, err := newJoinSecret()
	if err != nil {
		return "", err
	}
	if err := s.PutRecord(ctx, recordKindCluster, recordJoinSecret, []byte(fresh), false); err != nil {
		return "", fmt.Errorf("store join secret: %w", err)
	}
	return fresh, nil
}

func newJoinSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate join secret: %w", err)
	}
	return "sbj_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// FetchClusterKey asks the member at addr (its cluster address) for the
// cluster key, proving the join secret. Both sides prove the secret, so a
// node that does not hold it cannot pose as the cluster either.
func FetchClusterKey(ctx context.Context, addr, secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("empty join secret")
	}
	m, err := newClusterMux(nil, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := m.dialKey(ctx, addr, streamJoin, joinKey(secret), ErrJoinSecret)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, fmt.Errorf("read cluster key from %s: %w", addr, err)
	}
	size := binary.BigEndian.Uint16(n[:])
	if size != 16 && size != 24 && size != 32 {
		return nil, fmt.Errorf("cluster key from %s has %d bytes", addr, size)
	}
	key := make([]byte, size)
	if _, err := io.ReadFull(c, key); err != nil {
		return nil, fmt.Errorf("read cluster key from %s: %w", addr, err)
	}
	return key, nil
}
