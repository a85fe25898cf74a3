package raftstore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
)

func testFSM(t *testing.T) *fsm {
	t.Helper()
	f, err := newFSM(filepath.Join(t.TempDir(), "state.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return f
}

// applyAll applies commands as consecutive log entries and returns each result error.
func applyAll(t *testing.T, f *fsm, cmds ...command) []error {
	t.Helper()
	logs := make([]*raft.Log, len(cmds))
	start := f.applied.Load() + 1
	for i, c := range cmds {
		data, err := encodeCommand(c)
		if err != nil {
			t.Fatalf("encode %s: %v", c.typeName(), err)
		}
		logs[i] = &raft.Log{Index: start + uint64(i), Type: raft.LogCommand, Data: data}
	}
	out := make([]error, len(cmds))
	for i, r := range f.ApplyBatch(logs) {
		out[i] = r.(*applyResult).Err
	}
	return out
}

func mustApply(t *testing.T, f *fsm, cmds ...command) {
	t.Helper()
	for i, err := range applyAll(t, f, cmds...) {
		if err != nil {
			t.Fatalf("apply %s: %v", cmds[i].typeName(), err)
		}
	}
}

// dump renders every bucket's keys and values in order: two FSMs with equal
// dumps hold the same state.
func dump(t *testing.T, f *fsm) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := f.db.View(func(tx *bolt.Tx) error {
		var walk func(prefix string, b *bolt.Bucket) error
		walk = func(prefix string, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return walk(prefix+string(k)+"/", b.Bucket(k))
				}
				fmt.Fprintf(&buf, "%s%x=%x\n", prefix, k, v)
				return nil
			})
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name)+"/", b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestApplyUsersAndUniqueness(t *testing.T) {
	f := testFSM(t)
	mustApply(t, f, &createUserCmd{User: goodUser(1, "alice")})

	dupName := goodUser(2, "ALICE")
	dupEmail := goodUser(3, "carol")
	dupEmail.Email = "Alice@Example.org"
	dupKey := goodUser(4, "dave")
	dupKey.Passkey = passkeyFor(1)
	dupID := goodUser(1, "erin")
	errs := applyAll(t, f, &createUserCmd{User: dupName}, &createUserCmd{User: dupEmail},
		&createUserCmd{User: dupKey}, &createUserCmd{User: dupID}, &updateUserCmd{User: goodUser(99, "ghost")})
	want := []error{ErrUsernameTaken, ErrEmailTaken, ErrPasskeyTaken, ErrRecordExists, ErrNotFound}
	for i := range want {
		if !errors.Is(errs[i], want[i]) {
			t.Errorf("case %d: got %v, want %v", i, errs[i], want[i])
		}
	}
	mustApply(t, f, &createUserCmd{User: goodUser(1, "alice")}) // identical retry: no-op
	if r, ok := f.idx.Load().userByPasskey(passkeyFor(2)); ok {
		t.Fatalf("refused user indexed: %+v", r)
	}

	// Update: rename, new passkey, disable; old keys are freed.
	u := goodUser(1, "alice2")
	u.Passkey = passkeyFor(0xbeef)
	u.Enabled = false
	mustApply(t, f, &updateUserCmd{User: u})
	if _, ok := f.idx.Load().userByPasskey(passkeyFor(1)); ok {
		t.Fatal("old passkey still works after reset")
	}
	if r, ok := f.idx.Load().userByPasskey(passkeyFor(0xbeef)); !ok || r.Enabled {
		t.Fatalf("new passkey: %+v %v", r, ok)
	}
	mustApply(t, f, &createUserCmd{User: goodUser(2, "alice")}) // old name is free again
	u.Created++
	if errs := applyAll(t, f, &updateUserCmd{User: u}); !errors.Is(errs[0], ErrImmutableField) {
		t.Fatalf("created changed: %v", errs[0])
	}
}

func TestApplyTorrentsHybridAndDelete(t *testing.T) {
	f := testFSM(t)
	tr := goodTorrent(1)
	tr.InfoHashV2 = strings.Repeat("ab", 32)
	mustApply(t, f, &putTorrentCmd{Torrent: tr})
	var v2 model.InfoHash
	copy(v2[:], bytes.Repeat([]byte{0xab}, 20))
	for _, h := range []model.InfoHash{tr.ID, v2} {
		ref, ok := f.idx.Load().torrentByHash(h)
		if !ok || ref.ID != tr.ID || ref.TotalSize != 15 {
			t.Fatalf("hash %s: %+v %v", h, ref, ok)
		}
	}
	// Registering a torrent whose v1 hash equals an existing alias fails.
	other := goodTorrent(0xab)
	sameHash := tr
	sameHash.Name = "another upload of the same data"
	if errs := applyAll(t, f, &putTorrentCmd{Torrent: sameHash}, &putTorrentCmd{Torrent: other}); !errors.Is(errs[0], ErrTorrentExists) || !errors.Is(errs[1], ErrTorrentExists) {
		t.Fatalf("duplicates: %v", errs)
	}
	// The identical create applied again (a retried proposal) is a no-op.
	before := dump(t, f)
	mustApply(t, f, &putTorrentCmd{Torrent: tr})
	if !bytes.Equal(before[bytes.Index(before, []byte("torrent")):], dump(t, f)[bytes.Index(before, []byte("torrent")):]) {
		t.Fatal("retried create changed torrents")
	}
	upd := tr
	upd.Name = "renamed"
	upd.Metadata = map[string]string{"organism": "Escherichia coli"}
	mustApply(t, f, &updateTorrentCmd{Torrent: upd})
	bad := upd
	bad.Metainfo = []byte("other")
	if errs := applyAll(t, f, &updateTorrentCmd{Torrent: bad}); !errors.Is(errs[0], ErrImmutableField) {
		t.Fatalf("metainfo change: %v", errs[0])
	}
	mustApply(t, f, &deleteTorrentCmd{ID: tr.ID})
	if _, ok := f.idx.Load().torrentByHash(v2); ok {
		t.Fatal("alias survives delete")
	}
	if errs := applyAll(t, f, &deleteTorrentCmd{ID: tr.ID}); !errors.Is(errs[0], ErrNotFound) {
		t.Fatalf("double delete: %v", errs[0])
	}
}

func TestApplyStatsExactlyOnce(t *testing.T) {
	f := testFSM(t)
	mustApply(t, f, &putTorrentCmd{Torrent: goodTorrent(1)})
	d := model.StatsDelta{UserID: 1, Torrent: model.InfoHash(bytes.Repeat([]byte{1}, 20)), Uploaded: 100, Downloaded: 40, Snatches: 1}
	b1 := model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{d}}
	b2 := model.StatsBatch{NodeID: "n1", Seq: 2, Deltas: []model.StatsDelta{d}}
	other := model.StatsBatch{NodeID: "n2", Seq: 1, Deltas: []model.StatsDelta{d}}
	// b1 twice (a retry), b2, b1 again late, another node's seq 1.
	mustApply(t, f, &commitStatsCmd{Batch: b1}, &commitStatsCmd{Batch: b1}, &commitStatsCmd{Batch: b2},
		&commitStatsCmd{Batch: b1}, &commitStatsCmd{Batch: other})
	var us, ts model.Stats
	_ = f.db.View(func(tx *bolt.Tx) error {
		us = decodeStats(tx.Bucket(bktUserStats).Get(u64(1)))
		ts = decodeStats(tx.Bucket(bktTorrentStats).Get(d.Torrent[:]))
		return nil
	})
	want := model.Stats{Uploaded: 300, Downloaded: 120, Snatches: 3}
	if us != want || ts != want {
		t.Fatalf("user %+v torrent %+v, want %+v", us, ts, want)
	}
}

func TestApplySkipsAlreadyAppliedEntries(t *testing.T) {
	f := testFSM(t)
	data, _ := encodeCommand(&commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 5,
		Deltas: []model.StatsDelta{{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: 10}}}})
	l := &raft.Log{Index: 10, Type: raft.LogCommand, Data: data}
	f.ApplyBatch([]*raft.Log{l})
	// Replaying the same index (as raft does after a restart) changes nothing,
	// even for a command that is not idempotent by itself.
	data2, _ := encodeCommand(&putRecordCmd{Kind: "k", Key: "x", Value: []byte("1"), IfAbsent: true})
	before := dump(t, f)
	res := f.ApplyBatch([]*raft.Log{{Index: 9, Type: raft.LogCommand, Data: data2}, l})
	if !bytes.Equal(before, dump(t, f)) {
		t.Fatal("replayed entries changed state")
	}
	for _, r := range res {
		if r.(*applyResult).Err != nil {
			t.Fatal(r)
		}
	}
	if f.applied.Load() != 10 {
		t.Fatalf("applied = %d", f.applied.Load())
	}
}

func TestApplyRecordsSettingsMembersRules(t *testing.T) {
	f := testFSM(t)
	mustApply(t, f,
		&putRecordCmd{Kind: "invite", Key: "a", Value: []byte("1"), IfAbsent: true},
		&putSettingCmd{Key: "registration", Value: "invite"},
		&putMemberCmd{Member: model.Member{NodeID: "n1", ClusterAddr: "127.0.0.1:1"}},
		&setClientRulesCmd{Rules: []model.ClientRule{{Prefix: "-TR", Name: "Transmission"}, {Prefix: "A2-", Name: "aria2"}}},
	)
	if errs := applyAll(t, f, &putRecordCmd{Kind: "invite", Key: "a", Value: []byte("2"), IfAbsent: true}, &deleteRecordCmd{Kind: "invite", Key: "zz"}); !errors.Is(errs[0], ErrRecordExists) || !errors.Is(errs[1], ErrNotFound) {
		t.Fatalf("records: %v", errs)
	}
	ix := f.idx.Load()
	if !ix.clientAllowed([]byte("-TR3000-abcdefghijkl")) || !ix.clientAllowed([]byte("A2-1-36-0-abcdefghij")) || ix.clientAllowed([]byte("-XX0100-abcdefghijkl")) || ix.clientAllowed([]byte("-T")) {
		t.Fatal("whitelist wrong")
	}
	mustApply(t, f, &setClientRulesCmd{})
	if !f.idx.Load().clientAllowed([]byte("-XX0100-abcdefghijkl")) {
		t.Fatal("empty whitelist must allow all")
	}
}

// randomCommands makes a log with many conflicts, so apply's outcomes depend on order.
func randomCommands(r *rand.Rand, n int) []command {
	var out []command
	for i := 0; i < n; i++ {
		id := uint64(r.IntN(30) + 1)
		switch r.IntN(8) {
		case 0, 1:
			u := goodUser(id, fmt.Sprintf("user%d", r.IntN(20)))
			u.Passkey = passkeyFor(uint64(r.IntN(40) + 1))
			out = append(out, &createUserCmd{User: u})
		case 2:
			u := goodUser(id, fmt.Sprintf("user%d", r.IntN(20)))
			u.Enabled = r.IntN(2) == 0
			out = append(out, &updateUserCmd{User: u})
		case 3:
			out = append(out, &putTorrentCmd{Torrent: goodTorrent(byte(r.IntN(10) + 1))})
		case 4:
			out = append(out, &deleteTorrentCmd{ID: goodTorrent(byte(r.IntN(10) + 1)).ID})
		case 5:
			out = append(out, &commitStatsCmd{Batch: model.StatsBatch{NodeID: fmt.Sprintf("n%d", r.IntN(3)), Seq: uint64(r.IntN(20) + 1),
				Deltas: []model.StatsDelta{{UserID: id, Torrent: goodTorrent(byte(r.IntN(10) + 1)).ID, Uploaded: uint64(r.IntN(1000)), Downloaded: uint64(r.IntN(1000)), Snatches: uint64(r.IntN(2))}}}})
		case 6:
			out = append(out, &putRecordCmd{Kind: "invite", Key: fmt.Sprint(r.IntN(10)), Value: []byte{byte(i)}, IfAbsent: r.IntN(2) == 0})
		case 7:
			out = append(out, &putSettingCmd{Key: fmt.Sprint("s", r.IntN(5)), Value: fmt.Sprint(i)})
		}
	}
	return out
}

// Replaying one log on two FSMs, in different batch sizes, gives the same state.
func TestReplayIsDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewPCG(seed, seed))
		cmds := randomCommands(r, 400)
		a, b := testFSM(t), testFSM(t)
		mustNotFail := func(f *fsm, batch int) {
			for i := 0; i < len(cmds); i += batch {
				applyAll(t, f, cmds[i:min(i+batch, len(cmds))]...)
			}
		}
		mustNotFail(a, 1)
		mustNotFail(b, 37)
		da, db := dump(t, a), dump(t, b)
		if !bytes.Equal(da, db) {
			t.Fatalf("seed %d: states differ", seed)
		}
		if len(da) < 1000 {
			t.Fatalf("seed %d: suspiciously small state (%d bytes)", seed, len(da))
		}
	}
}

type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := testFSM(t)
	cmds := randomCommands(rand.New(rand.NewPCG(9, 9)), 300)
	applyAll(t, src, cmds...)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot began are not in it.
	applyAll(t, src, &putSettingCmd{Key: "after", Value: "x"})
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := testFSM(t)
	applyAll(t, dst, &putSettingCmd{Key: "stale", Value: "gone"})
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	// Compare against src as it was at the snapshot: drop the later write.
	ref := testFSM(t)
	applyAll(t, ref, cmds...)
	if !bytes.Equal(dump(t, ref), dump(t, dst)) {
		t.Fatal("restored state differs from snapshot source")
	}
	if dst.applied.Load() != uint64(len(cmds)) {
		t.Fatalf("applied after restore = %d, want %d", dst.applied.Load(), len(cmds))
	}
	if len(ref.idx.Load().passkeys) == 0 {
		t.Fatal("no passkeys to compare")
	}
	for k, v := range ref.idx.Load().passkeys {
		if got, ok := dst.idx.Load().userByPasskey(hex.EncodeToString(k[:])); !ok || got != v {
			t.Fatalf("index not rebuilt for %x", k)
		}
	}
	// A garbage snapshot is refused and the state is kept.
	before := dump(t, dst)
	if err := dst.Restore(io.NopCloser(strings.NewReader("not a bolt file"))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
	if !bytes.Equal(before, dump(t, dst)) {
		t.Fatal("failed restore changed state")
	}
}

func TestOpenRefusesForeignStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("something_else")); return err })
	db.Close()
	if _, err := newFSM(path, slog.Default()); err == nil || !strings.Contains(err.Error(), "another program") {
		t.Fatalf("foreign bbolt file: %v", err)
	}
}

// TestParsePasskey: the passkey index takes exactly the stored form (32
// lowercase hex digits); anything else is not a passkey.
func TestParsePasskey(t *testing.T) {
	good := "0123456789abcdef0fedcba987654321"
	k, ok := parsePasskey(good)
	if !ok || hex.EncodeToString(k[:]) != good {
		t.Fatalf("parsePasskey(%q) = %x %v", good, k, ok)
	}
	for _, bad := range []string{"", good[:31], good + "0", "0123456789ABCDEF0fedcba987654321", "0123456789abcdeg0fedcba987654321", "0123456789abcdef0fedcba98765432/", "0123456789abcdef0fedcba98765432:"} {
		if _, ok := parsePasskey(bad); ok {
			t.Errorf("parsePasskey(%q) accepted", bad)
		}
	}
}
