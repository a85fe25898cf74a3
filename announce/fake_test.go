package announce

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/model"
)

// fakeRegistry is an in-memory Registry.
type fakeRegistry struct {
	mu       sync.RWMutex
	users    map[string]model.UserRef
	torrents map[model.InfoHash]model.TorrentRef
	prefixes []string
	// gen is the TorrentGeneration, moved by every change; torrentLookups
	// counts TorrentByHash calls.
	gen            atomic.Uint64
	torrentLookups atomic.Int64
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{
		users:    map[string]model.UserRef{},
		torrents: map[model.InfoHash]model.TorrentRef{},
		prefixes: []string{"-qB", "-TR", "-AR", "-lt", "-DE"},
	}
}

func (r *fakeRegistry) TorrentGeneration() uint64 { return r.gen.Load() + 1 }

func (r *fakeRegistry) UserByPasskey(pk string) (model.UserRef, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u, ok := r.users[pk]
	return u, ok
}

func (r *fakeRegistry) TorrentByHash(h model.InfoHash) (model.TorrentRef, bool) {
	r.torrentLookups.Add(1)
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.torrents[h]
	return t, ok
}

func (r *fakeRegistry) ClientAllowed(id []byte) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.prefixes {
		if bytes.HasPrefix(id, []byte(p)) {
			return true
		}
	}
	return false
}

// addUser registers a user and returns its passkey.
func (r *fakeRegistry) addUser(id uint64, enabled bool) string {
	pk := fmt.Sprintf("%032x", id*0x9e3779b97f4a7c15)
	r.mu.Lock()
	r.users[pk] = model.UserRef{ID: id, Enabled: enabled}
	r.mu.Unlock()
	r.gen.Add(1)
	return pk
}

// addTorrent registers a v1 torrent and returns its hash.
func (r *fakeRegistry) addTorrent(name string, size int64) model.InfoHash {
	h := model.InfoHash(sha1.Sum([]byte(name)))
	r.mu.Lock()
	r.torrents[h] = model.TorrentRef{ID: h, TotalSize: size}
	r.mu.Unlock()
	r.gen.Add(1)
	return h
}

// removeTorrent unregisters the hashes hs.
func (r *fakeRegistry) removeTorrent(hs ...model.InfoHash) {
	r.mu.Lock()
	for _, h := range hs {
		delete(r.torrents, h)
	}
	r.mu.Unlock()
	r.gen.Add(1)
}

// addHybrid registers a hybrid torrent and returns its v1 and truncated v2 hashes.
func (r *fakeRegistry) addHybrid(name string, size int64) (v1, v2 model.InfoHash) {
	v1 = r.addTorrent(name, size)
	sum := sha256.Sum256([]byte(name))
	copy(v2[:], sum[:20])
	r.mu.Lock()
	r.torrents[v2] = model.TorrentRef{ID: v1, TotalSize: size}
	r.mu.Unlock()
	r.gen.Add(1)
	return v1, v2
}

// fakeCommitter applies batches like the FSM: a node's batch applies only if
// its Seq is above the last applied one. It records misuse.
type fakeCommitter struct {
	mu       sync.Mutex
	last     map[string]uint64
	seen     map[string]map[uint64]bool
	totals   map[sumKey]sums
	calls    int
	dups     int
	outOfOrd int
	// timeoutsAfterApply: that many calls apply the batch, then wait for the
	// caller's deadline and fail, as a leader that applied but answered late.
	timeoutsAfterApply int
	down               atomic.Bool // fail every call without applying
}

func newFakeCommitter() *fakeCommitter {
	return &fakeCommitter{last: map[string]uint64{}, seen: map[string]map[uint64]bool{}, totals: map[sumKey]sums{}}
}

func (f *fakeCommitter) CommitStats(ctx context.Context, b model.StatsBatch) error {
	if f.down.Load() {
		return fmt.Errorf("leader unavailable")
	}
	f.mu.Lock()
	f.calls++
	if f.seen[b.NodeID] == nil {
		f.seen[b.NodeID] = map[uint64]bool{}
	}
	switch {
	case f.seen[b.NodeID][b.Seq]:
		f.dups++
	case b.Seq < f.last[b.NodeID]:
		f.outOfOrd++ // would be lost by the real FSM
	default:
		f.seen[b.NodeID][b.Seq] = true
		f.last[b.NodeID] = b.Seq
		for _, d := range b.Deltas {
			k := sumKey{d.UserID, d.Torrent}
			s := f.totals[k]
			s.up += d.Uploaded
			s.down += d.Downloaded
			s.snatches += d.Snatches
			f.totals[k] = s
		}
	}
	late := f.timeoutsAfterApply > 0
	if late {
		f.timeoutsAfterApply--
	}
	f.mu.Unlock()
	if late {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeCommitter) snapshot() map[sumKey]sums {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[sumKey]sums, len(f.totals))
	for k, v := range f.totals {
		if v != (sums{}) {
			out[k] = v
		}
	}
	return out
}

// testLogger writes warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// useClock makes tr and its peer store read c.
func useClock(tr *Tracker, c *testClock) {
	tr.now = c.now
	tr.peers.clock = c.now
}

// newTestTracker returns a tracker with a queue in a temp dir; the test
// closes it. mod may change the config.
func newTestTracker(t testing.TB, reg Registry, sc StatsCommitter, mod func(*Config)) *Tracker {
	t.Helper()
	cfg := Config{NodeID: "node-a", QueuePath: filepath.Join(t.TempDir(), "queue.db")}
	if mod != nil {
		mod(&cfg)
	}
	log := testLogger(t)
	if _, fuzz := t.(*testing.F); fuzz {
		log = nil // a fuzz target may not log through f
	}
	tr, err := New(cfg, reg, sc, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// peerID returns a whitelisted 20-byte peer id.
func peerID(n int) [20]byte {
	var id [20]byte
	copy(id[:], fmt.Sprintf("-qB4520-%012d", n))
	return id
}

// decodeDict decodes a bencoded dict, failing on unordered keys.
func decodeDict(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := bencode.NewDecoder(bytes.NewReader(b))
	d.SetFailOnUnorderedKeys(true)
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	if d.BytesParsed() != len(b) {
		t.Fatalf("trailing bytes after dict in %q", b)
	}
	return m
}

// crash stops tr's loops and closes its queue without flushing, as a killed
// process would leave it.
func crash(tr *Tracker) {
	tr.lifeMu.Lock()
	tr.closed = true
	tr.lifeMu.Unlock()
	tr.stop()
	tr.running.Wait()
	tr.queue.close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
