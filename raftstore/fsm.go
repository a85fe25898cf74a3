package raftstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/seedbank/seedbank/boltwide"
	"github.com/seedbank/seedbank/model"
)

// Bucket names of the FSM's bbolt state file.
var (
	bktMeta         = []byte("meta")
	bktUsers        = []byte("users")
	bktUserNames    = []byte("user_names")
	bktUserEmails   = []byte("user_emails")
	bktUserPasskeys = []byte("user_passkeys")
	bktTorrents     = []byte("torrents")
	bktTorrentAlias = []byte("torrent_alias")
	bktClientRules  = []byte("client_rules")
	bktSettings     = []byte("settings")
	bktUserStats    = []byte("user_stats")
	bktTorrentStats = []byte("torrent_stats")
	bktStatsSeq     = []byte("stats_seq")
	bktMembers      = []byte("members")
	bktRecords      = []byte("records")

	allBuckets = [][]byte{bktMeta, bktUsers, bktUserNames, bktUserEmails, bktUserPasskeys,
		bktTorrents, bktTorrentAlias, bktClientRules, bktSettings, bktUserStats,
		bktTorrentStats, bktStatsSeq, bktMembers, bktRecords}

	keyAppliedIndex = []byte("applied_index")
	keyFormat       = []byte("format")
)

// stateFormat identifies the layout of the state file; a file with another
// value was written by an incompatible version or another program.
const stateFormat = "seedbank-state-v1"

// Apply errors: deterministic outcomes of a valid command that conflicts with
// the state. They are returned to the caller that proposed the command.
var (
	ErrNotFound       = errors.New("not found")
	ErrUsernameTaken  = errors.New("username is taken")
	ErrEmailTaken     = errors.New("email is already registered")
	ErrPasskeyTaken   = errors.New("passkey is already in use")
	ErrTorrentExists  = errors.New("torrent is already registered")
	ErrRecordExists   = errors.New("record already exists")
	ErrImmutableField = errors.New("field cannot be changed")
)

// applyErrors maps the stable codes used over the forwarding channel to errors.
var applyErrors = map[string]error{
	"not_found":       ErrNotFound,
	"username_taken":  ErrUsernameTaken,
	"email_taken":     ErrEmailTaken,
	"passkey_taken":   ErrPasskeyTaken,
	"torrent_exists":  ErrTorrentExists,
	"record_exists":   ErrRecordExists,
	"immutable_field": ErrImmutableField,
	"newer_command":   ErrNewerCommand,
}

func applyErrorCode(err error) string {
	for code, e := range applyErrors {
		if errors.Is(err, e) {
			return code
		}
	}
	return ""
}

// applyResult is what FSM apply returns for one entry.
type applyResult struct {
	Err error
}

// fsm applies commands to a bbolt file and keeps the hot-path indexes.
// Apply is deterministic: it reads nothing but the command and the file.
type fsm struct {
	path string
	log  *slog.Logger

	mu sync.RWMutex // guards db swaps during Restore
	db *bolt.DB

	applied atomic.Uint64
	idx     atomic.Pointer[indexes]
	// idxGen changes after every change of the indexes (never 0), so the
	// tracker knows when a torrent lookup it kept may be stale.
	idxGen atomic.Uint64
	// halted is set when an entry from a newer version stopped applying.
	halted atomic.Pointer[haltState]

	// appliedCh is closed and replaced whenever applied advances, so
	// waiters for an index need no polling.
	waitMu    sync.Mutex
	appliedCh chan struct{}

	// stats holds buffers reused by stats batch applies; used only inside
	// the write transaction of ApplyBatch.
	stats statsBuffers

	// onApply, when set, is told about each applied entry's changes after
	// commit (for example to feed a search index). It must not block.
	onApply func(Change)
}

// Change describes what one applied entry changed, for observers.
type Change struct {
	Index    uint64
	Type     string
	Torrents []model.InfoHash
	Users    []uint64
	// Snatched lists the torrents whose snatch count a stats batch raised.
	Snatched []model.InfoHash
}

func openStateDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         2 * time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType, // no scan of all free pages per allocation
		InitialMmapSize: 256 << 20,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("state file %s is locked by another process (is another seedbank running on this data dir?)", path)
		}
		return nil, fmt.Errorf("open state file %s (corrupt or not a seedbank state file): %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if meta != nil {
			if f := meta.Get(keyFormat); f != nil && string(f) != stateFormat {
				return fmt.Errorf("state file %s has format %q, this version reads %q", path, f, stateFormat)
			}
		} else if tx.Bucket(bktUsers) == nil && nonEmpty(tx) {
			return fmt.Errorf("state file %s is a bbolt file of another program", path)
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return tx.Bucket(bktMeta).Put(keyFormat, []byte(stateFormat))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func nonEmpty(tx *bolt.Tx) bool {
	found := false
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { found = true; return nil })
	return found
}

func newFSM(path string, log *slog.Logger) (*fsm, error) {
	db, err := openStateDB(path)
	if err != nil {
		return nil, err
	}
	f := &fsm{path: path, log: log, db: db, appliedCh: make(chan struct{})}
	if err := f.reload(); err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
}

// reload reads the applied index and rebuilds the in-memory indexes.
func (f *fsm) reload() error {
	idx, applied, err := buildIndexes(f.db)
	if err != nil {
		return fmt.Errorf("rebuild indexes from %s: %w", f.path, err)
	}
	f.idx.Store(idx)
	f.idxGen.Add(1)
	f.setApplied(applied)
	return nil
}

func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.db.Close()
}

func (f *fsm) setApplied(i uint64) {
	f.applied.Store(i)
	f.waitMu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.waitMu.Unlock()
}

// appliedWait returns the applied index and a channel closed when it changes.
func (f *fsm) appliedWait() (uint64, <-chan struct{}) {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	return f.applied.Load(), f.appliedCh
}

// Apply implements raft.FSM for a single entry.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: all entries in one bbolt
// transaction, so one fsync covers the batch. Entries at or below the stored
// applied index were applied before a restart and are skipped.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	results := make([]interface{}, len(logs))
	if err := f.haltErr(); err != nil {
		for i := range results {
			results[i] = &applyResult{Err: err}
		}
		return results
	}
	var changes []Change
	var idxOps []func(*indexes)
	last := f.applied.Load()
	err := boltwide.Update(f.db, func(tx *bolt.Tx) error {
		f.stats.startTx()
		for i, l := range logs {
			if l.Index <= last {
				results[i] = &applyResult{}
				continue
			}
			last = l.Index
			if l.Type != raft.LogCommand {
				results[i] = &applyResult{}
				continue
			}
			c, err := decodeCommandInto(l.Data, &f.stats)
			if errors.Is(err, ErrNewerCommand) {
				// Nodes of different versions would not decode these
				// bytes alike: stop applying here, before this entry,
				// and wait for the upgrade (see halt).
				f.halt(l.Index, err)
				last = l.Index - 1
				for j := i; j < len(logs); j++ {
					results[j] = &applyResult{Err: f.haltErr()}
				}
				break
			}
			if err != nil {
				// Every node of this version decodes the same bytes the
				// same way, so refusing here is deterministic.
				f.log.Error("refusing log entry", "index", l.Index, "err", err)
				results[i] = &applyResult{Err: err}
				continue
			}
			a := &applier{tx: tx, stats: &f.stats, change: Change{Index: l.Index, Type: c.typeName()}}
			aerr := a.apply(c)
			if aerr != nil {
				// Roll back only this entry's writes: apply checks
				// before it writes, so a failed entry wrote nothing.
				results[i] = &applyResult{Err: aerr}
				continue
			}
			results[i] = &applyResult{}
			idxOps = append(idxOps, a.idxOps...)
			changes = append(changes, a.change)
		}
		return tx.Bucket(bktMeta).Put(keyAppliedIndex, u64(last))
	})
	if err != nil {
		// A failed commit means the disk is gone; continuing would make
		// this node's state diverge from the log. Stop hard.
		panic(fmt.Sprintf("raftstore: commit to %s failed: %v", f.path, err))
	}
	if len(idxOps) > 0 {
		f.idx.Load().update(func(ix *indexes) {
			for _, op := range idxOps {
				op(ix)
			}
		})
		f.idxGen.Add(1) // after the change: a reader of the new number sees it
	}
	f.setApplied(last)
	if f.onApply != nil {
		for _, c := range changes {
			f.onApply(c)
		}
	}
	return results
}

// Snapshot implements raft.FSM. The snapshot is a consistent read
// transaction of the state file, streamed by Persist on another goroutine.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.haltErr(); err != nil {
		// raft would label the snapshot with entries this FSM did not
		// apply and then drop them from the log.
		return nil, fmt.Errorf("no snapshot while halted: %w", err)
	}
	f.mu.RLock()
	tx, err := f.db.Begin(false)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	return &fsmSnapshot{tx: tx}, nil
}

type fsmSnapshot struct {
	tx   *bolt.Tx
	once sync.Once
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {
	s.once.Do(func() { _ = s.tx.Rollback() })
}

// Restore implements raft.FSM: it replaces the state file atomically with the
// snapshot's bytes and rebuilds the indexes.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.haltErr(); err != nil {
		return fmt.Errorf("no restore while halted: %w", err)
	}
	tmp := f.path + ".restore"
	if err := writeFileSync(tmp, rc); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Check the snapshot opens as a state file before replacing ours.
	check, err := openStateDB(tmp)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: snapshot is not a valid state file: %w", err)
	}
	check.Close()

	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("restore: close state: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("restore: replace state: %w", err)
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, err := openStateDB(f.path)
	if err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	f.db = db
	if err := f.reload(); err != nil {
		return err
	}
	f.log.Info("restored state from snapshot", "applied_index", f.applied.Load())
	if f.onApply != nil {
		f.onApply(Change{Index: f.applied.Load(), Type: "restore"})
	}
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		os.Remove(path)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// applier applies one command inside a transaction. Every method checks all
// its conditions before the first write, so a refused command writes nothing.
type applier struct {
	tx     *bolt.Tx
	stats  *statsBuffers // nil: allocate
	idxOps []func(*indexes)
	change Change
}

func (a *applier) apply(c command) error {
	switch c := c.(type) {
	case *createUserCmd:
		return a.putUser(&c.User, true)
	case *createUserAdminIfFirstCmd:
		return a.applyAdminIfFirst(c)
	case *updateUserCmd:
		return a.putUser(&c.User, false)
	case *putTorrentCmd:
		return a.putTorrent(&c.Torrent, true)
	case *updateTorrentCmd:
		return a.putTorrent(&c.Torrent, false)
	case *deleteTorrentCmd:
		return a.deleteTorrent(c.ID)
	case *setClientRulesCmd:
		return a.setClientRules(c.Rules)
	case *putSettingCmd:
		return a.tx.Bucket(bktSettings).Put([]byte(c.Key), []byte(c.Value))
	case *commitStatsCmd:
		// The JSON form of older nodes: same meaning, applied the same way.
		return a.commitStatsBatch(groupStats(&c.Batch))
	case *statsBatchCmd:
		return a.commitStatsBatch(c)
	case *putMemberCmd:
		v, err := json.Marshal(c.Member)
		if err != nil {
			return err
		}
		return a.tx.Bucket(bktMembers).Put([]byte(c.Member.NodeID), v)
	case *removeMemberCmd:
		return a.tx.Bucket(bktMembers).Delete([]byte(c.NodeID))
	case *putRecordCmd:
		b, err := a.tx.Bucket(bktRecords).CreateBucketIfNotExists([]byte(c.Kind))
		if err != nil {
			return err
		}
		if cur := b.Get([]byte(c.Key)); c.IfAbsent && cur != nil {
			if bytes.Equal(cur, c.Value) {
				return nil // a retried create
			}
			return ErrRecordExists
		}
		return b.Put([]byte(c.Key), c.Value)
	case *deleteRecordCmd:
		b := a.tx.Bucket(bktRecords).Bucket([]byte(c.Kind))
		if b == nil || b.Get([]byte(c.Key)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(c.Key))
	}
	return fmt.Errorf("no apply for %T: %w", c, ErrUnknownCommand)
}

func lower(s string) []byte { return []byte(strings.ToLower(s)) }

func (a *applier) putUser(u *model.User, create bool) error {
	users := a.tx.Bucket(bktUsers)
	names := a.tx.Bucket(bktUserNames)
	emails := a.tx.Bucket(bktUserEmails)
	passkeys := a.tx.Bucket(bktUserPasskeys)
	id := u64(u.ID)
	var old *model.User
	// Validation accepts only this form; checked again before any write
	// because the index needs it.
	newKey, ok := parsePasskey(u.Passkey)
	if !ok {
		return invalid("user.passkey", "must be 32 lowercase hex digits")
	}
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if cur := users.Get(id); cur != nil {
		if create {
			// The same create applied again (a retry after an ambiguous
			// failure such as lost leadership) is a no-op success.
			if bytes.Equal(cur, raw) {
				return nil
			}
			// Ids are random 64-bit numbers; a clash is a retryable conflict.
			return fmt.Errorf("user id %d: %w", u.ID, ErrRecordExists)
		}
		old = new(model.User)
		if err := json.Unmarshal(cur, old); err != nil {
			return fmt.Errorf("decode user %d: %w", u.ID, err)
		}
	} else if !create {
		return fmt.Errorf("user %d: %w", u.ID, ErrNotFound)
	}
	taken := func(b *bolt.Bucket, key []byte) bool {
		v := b.Get(key)
		return v != nil && !bytes.Equal(v, id)
	}
	if taken(names, lower(u.Username)) {
		return ErrUsernameTaken
	}
	if taken(emails, lower(u.Email)) {
		return ErrEmailTaken
	}
	if taken(passkeys, []byte(u.Passkey)) {
		return ErrPasskeyTaken
	}
	if old != nil && old.Created != u.Created {
		return fmt.Errorf("user.created: %w", ErrImmutableField)
	}
	if old != nil {
		if err := names.Delete(lower(old.Username)); err != nil {
			return err
		}
		if err := emails.Delete(lower(old.Email)); err != nil {
			return err
		}
		if err := passkeys.Delete([]byte(old.Passkey)); err != nil {
			return err
		}
	}
	if err := names.Put(lower(u.Username), id); err != nil {
		return err
	}
	if err := emails.Put(lower(u.Email), id); err != nil {
		return err
	}
	if err := passkeys.Put([]byte(u.Passkey), id); err != nil {
		return err
	}
	if err := users.Put(id, raw); err != nil {
		return err
	}
	ref := model.UserRef{ID: u.ID, Enabled: u.Enabled}
	var oldKey *passkeyKey
	if old != nil {
		if k, ok := parsePasskey(old.Passkey); ok {
			oldKey = &k
		}
	}
	a.idxOps = append(a.idxOps, func(ix *indexes) {
		if oldKey != nil {
			delete(ix.passkeys, *oldKey)
		}
		ix.passkeys[newKey] = ref
	})
	a.change.Users = append(a.change.Users, u.ID)
	return nil
}

func (a *applier) putTorrent(t *model.Torrent, create bool) error {
	torrents := a.tx.Bucket(bktTorrents)
	alias := a.tx.Bucket(bktTorrentAlias)
	id := t.ID[:]
	hashes := t.SwarmHashes()
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if create {
		if cur := torrents.Get(id); cur != nil && bytes.Equal(cur, raw) {
			return nil // a retried create
		}
		for _, h := range hashes {
			if torrents.Get(h[:]) != nil || alias.Get(h[:]) != nil {
				return fmt.Errorf("%s: %w", h, ErrTorrentExists)
			}
		}
	} else {
		raw := torrents.Get(id)
		if raw == nil {
			return fmt.Errorf("torrent %s: %w", t.ID, ErrNotFound)
		}
		var old model.Torrent
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("decode torrent %s: %w", t.ID, err)
		}
		if old.InfoHashV1 != t.InfoHashV1 || old.InfoHashV2 != t.InfoHashV2 || !bytes.Equal(old.Metainfo, t.Metainfo) {
			return fmt.Errorf("torrent hashes and metainfo: %w", ErrImmutableField)
		}
		if old.Created != t.Created || old.Uploader != t.Uploader {
			return fmt.Errorf("torrent created and uploader: %w", ErrImmutableField)
		}
	}
	if err := torrents.Put(id, raw); err != nil {
		return err
	}
	for _, h := range hashes[1:] {
		if err := alias.Put(h[:], id); err != nil {
			return err
		}
	}
	ref := model.TorrentRef{ID: t.ID, TotalSize: t.TotalSize}
	a.idxOps = append(a.idxOps, func(ix *indexes) {
		for _, h := range hashes {
			ix.torrents[h] = ref
		}
	})
	a.change.Torrents = append(a.change.Torrents, t.ID)
	return nil
}

func (a *applier) deleteTorrent(h model.InfoHash) error {
	torrents := a.tx.Bucket(bktTorrents)
	raw := torrents.Get(h[:])
	if raw == nil {
		return fmt.Errorf("torrent %s: %w", h, ErrNotFound)
	}
	var t model.Torrent
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("decode torrent %s: %w", h, err)
	}
	hashes := t.SwarmHashes()
	for _, x := range hashes[1:] {
		if err := a.tx.Bucket(bktTorrentAlias).Delete(x[:]); err != nil {
			return err
		}
	}
	if err := torrents.Delete(h[:]); err != nil {
		return err
	}
	a.idxOps = append(a.idxOps, func(ix *indexes) {
		for _, x := range hashes {
			delete(ix.torrents, x)
		}
	})
	a.change.Torrents = append(a.change.Torrents, h)
	return nil
}

func (a *applier) setClientRules(rules []model.ClientRule) error {
	b := a.tx.Bucket(bktClientRules)
	var keys [][]byte
	if err := b.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil }); err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	for _, r := range rules {
		if err := b.Put([]byte(r.Prefix), []byte(r.Name)); err != nil {
			return err
		}
	}
	prefixes := make([]string, len(rules))
	for i, r := range rules {
		prefixes[i] = r.Prefix
	}
	a.idxOps = append(a.idxOps, func(ix *indexes) { ix.setRules(prefixes) })
	return nil
}

func decodeStats(b []byte) model.Stats {
	if len(b) != 24 {
		return model.Stats{}
	}
	return model.Stats{
		Uploaded:   binary.BigEndian.Uint64(b[0:]),
		Downloaded: binary.BigEndian.Uint64(b[8:]),
		Snatches:   binary.BigEndian.Uint64(b[16:]),
	}
}

// halt stops this FSM applying at log entry index, which this build cannot
// decode. The applied index stays below it and snapshots are refused, so
// after an upgrade and restart the node replays the entry from its raft
// log and carries on; until then it serves what it has (reads may be stale,
// /readyz says why).
func (f *fsm) halt(index uint64, err error) {
	h := &haltState{index: index, err: fmt.Errorf("stopped applying at log entry %d: %w; upgrade this node and restart it", index, err)}
	if f.halted.CompareAndSwap(nil, h) {
		// Wake WaitApplied callers: they will not see the index now.
		f.waitMu.Lock()
		close(f.appliedCh)
		f.appliedCh = make(chan struct{})
		f.waitMu.Unlock()
		f.log.Error("this node cannot apply a log entry written by a newer seedbank: applying is stopped so its state cannot diverge; upgrade this node and restart it",
			"index", index, "err", err)
	}
}

type haltState struct {
	index uint64
	err   error
}

// haltErr is the reason applying stopped, or nil.
func (f *fsm) haltErr() error {
	if h := f.halted.Load(); h != nil {
		return h.err
	}
	return nil
}
