package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
)

// Writes. Each validates its input, returns a *ValidationError naming the
// field for bad input, one of the Err* values for a conflict with the state,
// ErrNoLeader when no quorum is reachable, and nil once the change is
// applied on this node.

// CreateUser adds u. Username and email (case-insensitive) and passkey must be
// unused: two nodes racing for the same name cannot both win.
func (s *Store) CreateUser(ctx context.Context, u model.User) error {
	return s.propose(ctx, &createUserCmd{User: u})
}

// UpdateUser replaces the user with u.ID; uniqueness is checked again.
func (s *Store) UpdateUser(ctx context.Context, u model.User) error {
	return s.propose(ctx, &updateUserCmd{User: u})
}

// PutTorrent registers a new torrent under all its swarm hashes.
func (s *Store) PutTorrent(ctx context.Context, t model.Torrent) error {
	return s.propose(ctx, &putTorrentCmd{Torrent: t})
}

// UpdateTorrent replaces a torrent's mutable fields (name, metadata, files
// listing); hashes, metainfo, uploader and creation time cannot change.
func (s *Store) UpdateTorrent(ctx context.Context, t model.Torrent) error {
	return s.propose(ctx, &updateTorrentCmd{Torrent: t})
}

// DeleteTorrent removes a torrent; its stats stop counting.
func (s *Store) DeleteTorrent(ctx context.Context, id model.InfoHash) error {
	return s.propose(ctx, &deleteTorrentCmd{ID: id})
}

// SetClientRules replaces the client whitelist. An empty list allows all clients.
func (s *Store) SetClientRules(ctx context.Context, rules []model.ClientRule) error {
	return s.propose(ctx, &setClientRulesCmd{Rules: rules})
}

// PutSetting sets one site setting.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	return s.propose(ctx, &putSettingCmd{Key: key, Value: value})
}

// CommitStats applies a node's stats batch exactly once: a batch whose Seq
// is not above the last applied for b.NodeID is accepted and ignored, so a
// retry after a timeout is safe. A node must submit its batches in order.
//
// The batch travels in the binary encoding (statsBatchCmd) once every
// member's build applies it (FeatureBinaryStats), else as JSON
// commit_stats, which every version reads: a mixed-version cluster keeps
// applying during a rolling upgrade.
func (s *Store) CommitStats(ctx context.Context, b model.StatsBatch) error {
	if !s.clusterHas(FeatureBinaryStats) {
		c := &commitStatsCmd{Batch: b}
		if err := c.validate(); err != nil {
			return err
		}
		return s.propose(ctx, c)
	}
	c, err := newStatsBatchCmd(b)
	if err != nil {
		return err
	}
	return s.propose(ctx, c)
}

// PutMember records a node's public URLs.
func (s *Store) PutMember(ctx context.Context, m model.Member) error {
	return s.propose(ctx, &putMemberCmd{Member: m})
}

// RemoveMember forgets a node's public URLs.
func (s *Store) RemoveMember(ctx context.Context, nodeID string) error {
	return s.propose(ctx, &removeMemberCmd{NodeID: nodeID})
}

// PutRecord stores value under (kind, key) in a replicated namespace for
// small things without a command of their own (invites, tokens, audit log
// entries, comments). With ifAbsent it fails with ErrRecordExists instead
// of overwriting, which makes it a replicated create-once.
func (s *Store) PutRecord(ctx context.Context, kind, key string, value []byte, ifAbsent bool) error {
	return s.propose(ctx, &putRecordCmd{Kind: kind, Key: key, Value: value, IfAbsent: ifAbsent})
}

// DeleteRecord removes (kind, key); ErrNotFound when absent.
func (s *Store) DeleteRecord(ctx context.Context, kind, key string) error {
	return s.propose(ctx, &deleteRecordCmd{Kind: kind, Key: key})
}

// Reads are local and see every write this node has applied.

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	return s.fsm.db.View(fn)
}

func (s *Store) userByKey(bucket []byte, key []byte) (model.User, error) {
	var u model.User
	err := s.view(func(tx *bolt.Tx) error {
		id := key
		if bucket != nil {
			id = tx.Bucket(bucket).Get(key)
			if id == nil {
				return ErrNotFound
			}
		}
		raw := tx.Bucket(bktUsers).Get(id)
		if raw == nil {
			return ErrNotFound
		}
		return json.Unmarshal(raw, &u)
	})
	return u, err
}

// User returns the user with id, or ErrNotFound.
func (s *Store) User(id uint64) (model.User, error) { return s.userByKey(nil, u64(id)) }

// UserByName looks a user up by username, case-insensitively.
func (s *Store) UserByName(name string) (model.User, error) {
	return s.userByKey(bktUserNames, lower(name))
}

// UserByEmail looks a user up by email, case-insensitively.
func (s *Store) UserByEmail(email string) (model.User, error) {
	return s.userByKey(bktUserEmails, lower(email))
}

// UserByPasskeyFull returns the whole user owning passkey.
func (s *Store) UserByPasskeyFull(passkey string) (model.User, error) {
	return s.userByKey(bktUserPasskeys, []byte(passkey))
}

// Users returns every user ordered by username.
func (s *Store) Users() ([]model.User, error) {
	var out []model.User
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktUsers).ForEach(func(_, v []byte) error {
			var u model.User
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Username) < strings.ToLower(out[j].Username) })
	return out, err
}

// UserCount returns the number of users.
func (s *Store) UserCount() int {
	n := 0
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Bucket(bktUsers).Stats().KeyN; return nil })
	return n
}

// Torrent returns the torrent with primary or alias hash h, or ErrNotFound.
func (s *Store) Torrent(h model.InfoHash) (model.Torrent, error) {
	var t model.Torrent
	err := s.view(func(tx *bolt.Tx) error {
		key := h[:]
		if a := tx.Bucket(bktTorrentAlias).Get(key); a != nil {
			key = a
		}
		raw := tx.Bucket(bktTorrents).Get(key)
		if raw == nil {
			return ErrNotFound
		}
		return json.Unmarshal(raw, &t)
	})
	return t, err
}

// ForEachTorrent calls fn for every torrent in hash order; an error stops it.
func (s *Store) ForEachTorrent(fn func(model.Torrent) error) error {
	return s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktTorrents).ForEach(func(_, v []byte) error {
			var t model.Torrent
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode torrent: %w", err)
			}
			return fn(t)
		})
	})
}

// TorrentCount returns the number of torrents.
func (s *Store) TorrentCount() int {
	n := 0
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Bucket(bktTorrents).Stats().KeyN; return nil })
	return n
}

// UserStats returns a user's cumulative transfer counters.
func (s *Store) UserStats(id uint64) model.Stats {
	var st model.Stats
	_ = s.view(func(tx *bolt.Tx) error { st = decodeStats(tx.Bucket(bktUserStats).Get(u64(id))); return nil })
	return st
}

// TorrentStats returns a torrent's cumulative transfer counters.
func (s *Store) TorrentStats(id model.InfoHash) model.Stats {
	var st model.Stats
	_ = s.view(func(tx *bolt.Tx) error { st = decodeStats(tx.Bucket(bktTorrentStats).Get(id[:])); return nil })
	return st
}

// TorrentSnatches sets snatches[i] to the cumulative snatches of ids[i]
// (0 for a torrent without stats), all read in one transaction: cheaper
// than TorrentStats per torrent when many are wanted (the search index's
// counter refresh).
func (s *Store) TorrentSnatches(ids []model.InfoHash, snatches []int) {
	_ = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktTorrentStats)
		for i, id := range ids {
			snatches[i] = int(decodeStats(b.Get(id[:])).Snatches)
		}
		return nil
	})
}

// LastStatsSeq returns the last stats batch sequence applied for nodeID, so
// a node that lost its local queue continues above it.
func (s *Store) LastStatsSeq(nodeID string) uint64 {
	var n uint64
	_ = s.view(func(tx *bolt.Tx) error { n = getU64(tx.Bucket(bktStatsSeq).Get([]byte(nodeID))); return nil })
	return n
}

// Setting returns one site setting.
func (s *Store) Setting(key string) (string, bool) {
	var v []byte
	_ = s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bktSettings).Get([]byte(key)); b != nil {
			v = bytes.Clone(b)
		}
		return nil
	})
	return string(v), v != nil
}

// Settings returns every site setting.
func (s *Store) Settings() map[string]string {
	out := map[string]string{}
	_ = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktSettings).ForEach(func(k, v []byte) error { out[string(k)] = string(v); return nil })
	})
	return out
}

// ClientRules returns the whitelist ordered by prefix.
func (s *Store) ClientRules() []model.ClientRule {
	var out []model.ClientRule
	_ = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktClientRules).ForEach(func(k, v []byte) error {
			out = append(out, model.ClientRule{Prefix: string(k), Name: string(v)})
			return nil
		})
	})
	return out
}

// Members returns the recorded cluster members ordered by node id.
func (s *Store) Members() []model.Member {
	var out []model.Member
	_ = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMembers).ForEach(func(_, v []byte) error {
			var m model.Member
			if err := json.Unmarshal(v, &m); err == nil {
				out = append(out, m)
			}
			return nil
		})
	})
	return out
}

// Record returns the value stored under (kind, key), or ErrNotFound.
func (s *Store) Record(kind, key string) ([]byte, error) {
	var v []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktRecords).Bucket([]byte(kind))
		if b == nil {
			return ErrNotFound
		}
		raw := b.Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		v = bytes.Clone(raw)
		return nil
	})
	return v, err
}

// KV is one record.
type KV struct {
	Key   string
	Value []byte
}

// Records returns the records of kind whose key starts with prefix, in key order.
func (s *Store) Records(kind, prefix string) ([]KV, error) {
	var out []KV
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktRecords).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, KV{Key: string(k), Value: bytes.Clone(v)})
		}
		return nil
	})
	return out, err
}

// Hot-path lookups: memory only, no locks held across calls, no I/O.

// UserByPasskey returns the owner of passkey.
func (s *Store) UserByPasskey(passkey string) (model.UserRef, bool) {
	return s.fsm.idx.Load().userByPasskey(passkey)
}

// TorrentGeneration returns a number that changes (after the fact) whenever
// the answers of TorrentByHash, UserByPasskey or ClientAllowed may have
// changed; never 0. The tracker keeps a swarm's torrent beside it and looks
// it up again only when the number moved.
func (s *Store) TorrentGeneration() uint64 { return s.fsm.idxGen.Load() }

// TorrentByHash returns the torrent a v1 hash or truncated v2 hash belongs to.
func (s *Store) TorrentByHash(h model.InfoHash) (model.TorrentRef, bool) {
	return s.fsm.idx.Load().torrentByHash(h)
}

// ClientAllowed reports whether peerID starts with a whitelisted prefix.
// With no rules set every client is allowed.
func (s *Store) ClientAllowed(peerID []byte) bool { return s.fsm.idx.Load().clientAllowed(peerID) }
