package announce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/model/modeltest"

	bolt "go.etcd.io/bbolt"
)

func TestAccountingRules(t *testing.T) {
	cfg := Config{JumpSlack: 1000, MaxRate: 100}.WithDefaults()
	tor := model.TorrentRef{ID: model.InfoHash{9}, TotalSize: 5000}
	type step struct {
		up, down  uint64
		completed bool
		seeding   bool
		after     time.Duration // since the previous step
		peer      int
		want      sums // accumulated pending after the step
		snatch    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first announce is a baseline", []step{
			{up: 500, down: 700, want: sums{}},
			{up: 800, down: 900, after: time.Second, want: sums{up: 300, down: 200}},
		}},
		{"reset becomes the new baseline", []step{
			{up: 500, down: 500},
			{up: 600, down: 600, after: time.Second, want: sums{up: 100, down: 100}},
			{up: 10, down: 700, after: time.Second, want: sums{up: 100, down: 200}}, // upload reset, download counts
			{up: 50, down: 750, after: time.Second, want: sums{up: 140, down: 250}},
		}},
		{"same numbers count nothing", []step{
			{up: 5, down: 5},
			{up: 5, down: 5, after: time.Second},
			{up: 5, down: 5},
		}},
		{"download beyond torrent size is dropped", []step{
			{up: 0, down: 0},
			{up: 0, down: 6001, after: time.Hour, want: sums{}}, // > 5000 + 1000
			{up: 0, down: 7000, after: time.Hour, want: sums{down: 999}},
		}},
		{"rate cap", []step{
			{up: 0, down: 0},
			{up: 1101, down: 0, after: time.Second, want: sums{}}, // > 100*1 + 1000
			{up: 2301, down: 0, after: 2 * time.Second, want: sums{up: 1200}},
		}},
		{"snatch once per peer", []step{
			{down: 0},
			{down: 10, completed: true, after: time.Second, want: sums{down: 10, snatches: 1}, snatch: true},
			{down: 10, completed: true, after: time.Second, want: sums{down: 10, snatches: 1}},
			{down: 0, completed: true, peer: 1, want: sums{down: 10, snatches: 2}, snatch: true},
		}},
		{"leecher reaching left=0 is a snatch", []step{
			{down: 0},
			{down: 10, seeding: true, after: time.Second, want: sums{down: 10, snatches: 1}, snatch: true},
			{down: 10, seeding: true, completed: true, want: sums{down: 10, snatches: 1}},
			{down: 0, seeding: true, peer: 1, want: sums{down: 10, snatches: 1}}, // a seeder from the start
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccountant(&cfg, testLogger(t))
			now := time.Unix(1_700_000_000, 0)
			for i, s := range tc.steps {
				now = now.Add(s.after)
				r := report{user: 1, torrent: tor, peer: peerID(s.peer), up: s.up, down: s.down, completed: s.completed, seeding: s.seeding}
				if got := a.account(&r, now); got != s.snatch {
					t.Fatalf("step %d: snatch %v, want %v", i, got, s.snatch)
				}
				got := a.shard(tor.ID).counters.pending(sumKey{1, tor.ID})
				if got != s.want {
					t.Fatalf("step %d: pending %+v, want %+v", i, got, s.want)
				}
			}
		})
	}
}

func TestImportPeerCounters(t *testing.T) {
	cfg := Config{}.WithDefaults()
	a := newAccountant(&cfg, testLogger(t))
	tor := model.TorrentRef{ID: model.InfoHash{5}, TotalSize: 1 << 30}
	now := time.Unix(1_700_000_000, 0)
	pending := func() sums { return a.shard(tor.ID).counters.pending(sumKey{1, tor.ID}) }
	// No local counters: an import becomes the baseline.
	if !a.importCounters(PeerCounters{UserID: 1, Torrent: tor.ID, PeerID: peerID(1), Uploaded: 500, Updated: now.Unix()}, tor.TotalSize) {
		t.Fatal("import refused")
	}
	a.account(&report{user: 1, torrent: tor, peer: peerID(1), up: 650}, now.Add(time.Minute))
	if got := pending(); got.up != 150 {
		t.Fatalf("counted %d from the imported baseline, want 150", got.up)
	}
	// Newer local counters win over an older import.
	if a.importCounters(PeerCounters{UserID: 1, Torrent: tor.ID, PeerID: peerID(1), Uploaded: 600, Updated: now.Unix() + 30}, tor.TotalSize) {
		t.Fatal("older import accepted")
	}
	pc, ok := a.Counters(1, tor.ID, peerID(1))
	if !ok || pc.Uploaded != 650 || pc.Updated != now.Add(time.Minute).Unix() {
		t.Fatalf("Counters = %+v %v", pc, ok)
	}
	// Handoff: the counters stop counting here and come back once.
	ho, ok := a.handOff(tor.ID, peerID(1))
	if !ok || ho != pc {
		t.Fatalf("handOff = %+v %v, want %+v", ho, ok, pc)
	}
	if _, ok := a.handOff(tor.ID, peerID(1)); ok {
		t.Fatal("second handOff")
	}
	if _, ok := a.Counters(1, tor.ID, peerID(1)); ok {
		t.Fatal("handed-off counters still live")
	}
	// The client comes back later at 900: a baseline awaiting a handoff;
	// the other node hands over 800: the gap 650..800 was the other node's,
	// 800..900 is counted now.
	a.account(&report{user: 1, torrent: tor, peer: peerID(1), up: 900}, now.Add(10*time.Minute))
	if got := pending(); got.up != 150 {
		t.Fatalf("baseline counted: %+v", got)
	}
	if !a.importCounters(PeerCounters{UserID: 1, Torrent: tor.ID, PeerID: peerID(1), Uploaded: 800, Updated: now.Add(9 * time.Minute).Unix()}, tor.TotalSize) {
		t.Fatal("handoff refused")
	}
	if got := pending(); got.up != 250 {
		t.Fatalf("after handoff counted %d, want 250", got.up)
	}
}

// TestFailoverBetweenNodes: a client moves from node A to node B and back,
// with the handoffs a gossip layer would deliver, and also announces to
// both in turn; the totals are exact.
func TestFailoverBetweenNodes(t *testing.T) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("t", 1<<30)
	sc := newFakeCommitter()
	a := newTestTracker(t, reg, sc, func(c *Config) { c.NodeID = "node-a" })
	b := newTestTracker(t, reg, sc, func(c *Config) { c.NodeID = "node-b" })
	nodes := map[string]*Tracker{"node-a": a, "node-b": b}
	// gossip: every PeerPut on one node is delivered to the other, and a
	// handoff goes back to the node that took the peer.
	var mu sync.Mutex
	var queue []func()
	for name, tr := range nodes {
		tr.Peers().SetObserver(func(e PeerEvent) {
			if e.Kind != PeerPut {
				return
			}
			mu.Lock()
			queue = append(queue, func() {
				for other, o := range nodes {
					if other == name {
						continue
					}
					if pc, ok := o.PutRemotePeer(name, e.Swarm, e.Peer); ok {
						nodes[name].ImportPeerCounters(pc)
					}
				}
			})
			mu.Unlock()
		})
	}
	deliver := func() {
		mu.Lock()
		q := queue
		queue = nil
		mu.Unlock()
		for _, f := range q {
			f()
		}
	}
	var up uint64
	send := func(tr *Tracker, event string) {
		up += 1000
		announceVia(t, tr, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 1, up: up, event: event})
		deliver()
	}
	up = 5000 // a client that already uploaded elsewhere before: its first numbers are a baseline
	announceVia(t, a, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 1, up: up, event: "started"})
	deliver()
	send(a, "")        // +1000 at A
	send(b, "started") // moves to B: +1000 counted through the handoff
	send(b, "")
	send(a, "") // back to A
	for range 3 {
		send(a, "")
		send(b, "") // announcing to both in turn
	}
	for _, tr := range nodes {
		if err := tr.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := sc.snapshot()[sumKey{1, ih}].up, up-5000; got != want {
		t.Fatalf("total uploaded %d, want %d", got, want)
	}
}

// downQueueFixture is a tracker of node n1 on a queue file in a temporary
// directory, with one user and one torrent, whose committer is down.
type downQueueFixture struct {
	reg  *fakeRegistry
	pk   string
	ih   model.InfoHash
	path string
	sc   *fakeCommitter
	cfg  Config
	tr   *Tracker
}

func newDownQueueFixture(t *testing.T) downQueueFixture {
	t.Helper()
	q := downQueueFixture{reg: newFakeRegistry(), sc: newFakeCommitter()}
	q.pk = q.reg.addUser(1, true)
	q.ih = q.reg.addTorrent("t", 1<<30)
	q.path = filepath.Join(t.TempDir(), "q.db")
	q.sc.down.Store(true)
	q.cfg = Config{NodeID: "n1", QueuePath: q.path, CommitTimeout: 50 * time.Millisecond}
	tr, err := New(q.cfg, q.reg, q.sc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	q.tr = tr
	return q
}

func TestQueueRestartResendsSameSeq(t *testing.T) {
	q := newDownQueueFixture(t)
	reg, pk, ih, path, sc, cfg, tr := q.reg, q.pk, q.ih, q.path, q.sc, q.cfg, q.tr
	var err error
	for i := range 3 {
		announceVia(t, tr, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, up: uint64(i * 10)})
		err := tr.Flush(context.Background())
		if i == 0 && err != nil { // a baseline only: counters saved, no batch
			t.Fatal(err)
		}
		if i > 0 && err == nil {
			t.Fatal("Flush succeeded with the leader down")
		}
	}
	if n, _ := tr.PendingBatches(); n != 2 {
		t.Fatalf("pending %d, want 2", n)
	}
	first, _, _ := tr.queue.oldest()
	if err := tr.Close(); err == nil {
		t.Fatal("Close reported success with uncommitted batches")
	}

	// Another node id must not adopt the file.
	if _, err := New(Config{NodeID: "n2", QueuePath: path}, reg, sc, nil); !errors.Is(err, ErrQueueNodeMismatch) {
		t.Fatalf("foreign node opened the queue: %v", err)
	}

	sc.down.Store(false)
	tr, err = New(cfg, reg, sc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	waitFor(t, "pending batches committed", func() bool { n, _ := tr.PendingBatches(); return n == 0 })
	cancel()
	<-done
	if err := tr.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.seen["n1"][first.Seq] || !sc.seen["n1"][first.Seq+1] || sc.outOfOrd != 0 {
		t.Fatalf("applied seqs %v (first %d), out of order %d", sc.seen["n1"], first.Seq, sc.outOfOrd)
	}
	if got := sc.totals[sumKey{1, ih}]; got.up != 20 {
		t.Fatalf("total up %d, want 20", got.up)
	}
	if first.Seq < uint64(time.Now().Add(-time.Hour).UnixMicro()) {
		t.Fatalf("first seq %d is not time-based", first.Seq)
	}
}

// simPeer is one simulated BitTorrent client session.
type simPeer struct {
	user     uint64
	pk       string
	hash     model.InfoHash // the hash it announces (either of a hybrid)
	torrent  model.InfoHash // TorrentRef.ID
	id       [20]byte
	up, down uint64
	started  bool
	done     bool
	dual     bool // announces over IPv4 and IPv6
	epoch    int  // the tracker run it last announced to
	addr4    string
	addr6    string
}

// TestStatsExactUnderChaos drives thousands of announces from many peers
// with random client restarts (counter resets, new peer ids), dual-stack
// double announces and hybrid torrents; a CommitStats that applies but times
// out once; a leader outage; and a crash in the middle (no flush, queue
// reopened). The committed totals must equal the true transfers exactly.
func TestStatsExactUnderChaos(t *testing.T) {
	reg := newFakeRegistry()
	const users, peersN, goroutines = 12, 240, 8
	var pks []string
	for u := range users {
		pks = append(pks, reg.addUser(uint64(u+1), true))
	}
	type tor struct{ id, alt model.InfoHash }
	var tors []tor
	for i := range 4 {
		h := reg.addTorrent(fmt.Sprintf("plain-%d", i), 1<<40)
		tors = append(tors, tor{h, h})
	}
	for i := range 2 {
		v1, v2 := reg.addHybrid(fmt.Sprintf("hybrid-%d", i), 1<<40)
		tors = append(tors, tor{v1, v2})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	peers := make([]*simPeer, peersN)
	for i := range peers {
		u := rng.IntN(users)
		tr := tors[rng.IntN(len(tors))]
		h := tr.id
		if rng.IntN(2) == 0 {
			h = tr.alt
		}
		peers[i] = &simPeer{
			user: uint64(u + 1), pk: pks[u], hash: h, torrent: tr.id, id: peerID(i),
			dual:  i%5 == 0,
			addr4: fmt.Sprintf("10.%d.%d.1:6881", i/200, i%200),
			addr6: fmt.Sprintf("[2001:db8::%x]:6881", i+1),
		}
	}
	var (
		truthMu sync.Mutex
		truth   = map[sumKey]sums{}
		nextID  = peersN
		epoch   = 1  // tracker run; a peer restarts only after announcing to the current run
		quiet   bool // no client restarts (the unflushed window before the crash)
	)
	sc := newFakeCommitter()
	sc.timeoutsAfterApply = 1
	path := filepath.Join(t.TempDir(), "queue.db")
	cfg := Config{
		NodeID: "node-a", QueuePath: path,
		FlushInterval: 15 * time.Millisecond, CommitTimeout: 80 * time.Millisecond,
		RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond,
	}

	// step makes peer p do one thing and records the true transfer.
	step := func(t *testing.T, tr *Tracker, p *simPeer, rng *rand.Rand) {
		a := ann{ih: p.hash, id: p.id, port: 6881, left: 1}
		// A client restart right after a tracker crash would lose the
		// crashed run's unflushed deltas of that peer (see stats.go); the
		// simulation lets a peer restart only once it announced to this run.
		canRestart := p.epoch == epoch && !quiet
		p.epoch = epoch
		switch r := rng.IntN(100); {
		case !p.started:
			a.event = "started"
			p.started = true
		case r < 3 && canRestart: // client restart, same peer id: counters from zero
			p.up, p.down = 0, 0
			a.event = "started"
		case r < 5 && canRestart: // client restart with a new peer id
			truthMu.Lock()
			p.id = peerID(nextID)
			nextID++
			truthMu.Unlock()
			p.up, p.down, p.done = 0, 0, false
			a.id, a.event = p.id, "started"
		default:
			du, dd := uint64(rng.IntN(1<<20)), uint64(rng.IntN(1<<20))
			p.up += du
			p.down += dd
			snatch := uint64(0)
			if !p.done && rng.IntN(20) == 0 {
				a.event, p.done, snatch = "completed", true, 1
			}
			truthMu.Lock()
			k := sumKey{p.user, p.torrent}
			s := truth[k]
			s.up += du
			s.down += dd
			s.snatches += snatch
			truth[k] = s
			truthMu.Unlock()
		}
		a.up, a.down = p.up, p.down
		if p.done {
			a.left = 0
		}
		m := announceVia(t, tr, p.addr4, p.pk, a)
		if r := failure(m); r != "" {
			t.Fatalf("announce failed: %s", r)
		}
		if p.dual { // the same report again over IPv6
			a.event = ""
			announceVia(t, tr, p.addr6, p.pk, a)
		}
	}
	phase := func(t *testing.T, tr *Tracker, steps int, seed uint64, mid func()) {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(seed, uint64(g)))
				for i := range steps / goroutines {
					p := peers[g+goroutines*rng.IntN(peersN/goroutines)] // each goroutine owns its peers
					step(t, tr, p, rng)
					if g == 0 && i == steps/goroutines/2 && mid != nil {
						mid()
					}
				}
			})
		}
		wg.Wait()
	}

	// Phase 1: run, with the leader going down halfway, then crash.
	// The counter log is compacted whenever it is 2x the live counters.
	tr, err := New(cfg, reg, sc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr.queue.compactMin = 20
	ctx := context.Background()
	go tr.Run(ctx)
	phase(t, tr, 3000, 10, func() {
		waitFor(t, "first commit timed out and retried", func() bool {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			return sc.dups > 0
		})
		sc.down.Store(true)
	})
	waitFor(t, "batches queued while the leader is down", func() bool { n, _ := tr.PendingBatches(); return n > 0 })
	// The last flush before the crash, then announces that only live in
	// memory when the node dies. Their deltas are recovered from the
	// persisted counters at the peers' next announces, unless a client
	// resets its counters before that (the documented loss), which the
	// simulation avoids.
	// Make that flush a compaction for sure (others happen when they do).
	tr.queue.mu.Lock()
	for i := range tr.queue.logRecords {
		tr.queue.logRecords[i] = 1 << 30
	}
	tr.queue.mu.Unlock()
	if err := tr.flush(); err != nil {
		t.Fatal(err)
	}
	quiet = true
	for i := range 40 {
		step(t, tr, peers[i], rng)
	}
	pendingAtCrash, _ := tr.PendingBatches()
	tr.queue.mu.Lock()
	compactions := tr.queue.compactions
	tr.queue.mu.Unlock()
	if compactions == 0 {
		t.Fatal("no counter log compaction before the crash")
	}
	unflushed := 0
	for i := range tr.acct.shards {
		sh := &tr.acct.shards[i]
		sh.mu.Lock()
		unflushed += len(sh.counters.spill)
		for _, r := range sh.counters.recs {
			if r.unf.deltas() != (sums{}) {
				unflushed++
			}
		}
		sh.mu.Unlock()
	}
	crash(tr)
	t.Logf("crash with %d batches queued, %d unflushed deltas in memory, %d counter log compactions", pendingAtCrash, unflushed, compactions)

	// Phase 2: restart on the same queue, leader back.
	epoch++
	quiet = false
	sc.down.Store(false)
	tr, err = New(cfg, reg, sc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tr.queue.compactMin = 20
	runCtx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- tr.Run(runCtx) }()
	phase(t, tr, 3000, 20, nil)
	cancel()
	<-runDone
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := tr.PendingBatches(); n != 0 {
		t.Fatalf("%d batches still pending", n)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	got := sc.snapshot()
	truthMu.Lock()
	defer truthMu.Unlock()
	for k, want := range truth {
		if want == (sums{}) {
			delete(truth, k)
		}
	}
	if len(got) != len(truth) {
		t.Errorf("committed %d (user, torrent) totals, want %d", len(got), len(truth))
	}
	var total sums
	for k, want := range truth {
		if got[k] != want {
			t.Errorf("user %d torrent %x: committed %+v, true %+v", k.user, k.torrent[:4], got[k], want)
		}
		total.up += want.up
		total.down += want.down
		total.snatches += want.snatches
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.outOfOrd != 0 {
		t.Errorf("%d batches arrived out of order", sc.outOfOrd)
	}
	t.Logf("true totals %+v over %d keys; %d commit calls, %d duplicate seqs, %d pending at crash",
		total, len(truth), sc.calls, sc.dups, pendingAtCrash)
}

func TestCloseCommits(t *testing.T) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("t", 1<<30)
	sc := newFakeCommitter()
	tr := newTestTracker(t, reg, sc, nil)
	announceVia(t, tr, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 1})
	announceVia(t, tr, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 0, up: 7, down: 9, event: "completed"})
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if got := sc.snapshot()[sumKey{1, ih}]; got != (sums{up: 7, down: 9, snatches: 1}) {
		t.Fatalf("committed %+v", got)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Run(context.Background()); err == nil {
		t.Fatal("Run after Close accepted")
	}
}

func TestConfig(t *testing.T) {
	c := Config{NodeID: "n", QueuePath: "q"}.WithDefaults()
	if c.Interval != 30*time.Minute || c.MinInterval != time.Minute || c.PeerTTL != time.Hour ||
		c.NumWantDefault != 50 || c.NumWantMax != 200 || c.FlushInterval != 10*time.Second || c.CounterTTL != 6*time.Hour ||
		c.FlushSlices != 64 || c.FlushSpread != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Config{
		{QueuePath: "q"},
		{NodeID: "n"},
		{NodeID: "n", QueuePath: "q", Interval: time.Minute, MinInterval: time.Hour},
		{NodeID: "n", QueuePath: "q", Interval: time.Hour, PeerTTL: time.Minute},
		{NodeID: "n", QueuePath: "q", NumWantDefault: 300},
		{NodeID: "n", QueuePath: "q", FlushSlices: 3},
		{NodeID: "n", QueuePath: "q", FlushSlices: 128},
		{NodeID: "n", QueuePath: "q", FlushInterval: time.Second, FlushSpread: time.Second},
	} {
		c := bad.WithDefaults()
		if err := c.validate(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := New(Config{NodeID: "n", QueuePath: filepath.Join(t.TempDir(), "q")}, nil, nil, nil); err == nil {
		t.Error("New accepted nil Registry")
	}
}

func TestCounterCodec(t *testing.T) {
	for _, c := range []counterRec{
		{},
		{up: 1, down: 2, updated: 3, completed: true},
		{up: ^uint64(0), down: 5, updated: -1, handedOff: true},
		{up: 7, down: 8, updated: 9, recon: true, reconUp: 10, reconDown: 11, reconAt: 12, completed: true},
	} {
		if got := decodeCounterVal(encodeCounterVal(c)); got != c {
			t.Errorf("round trip %+v -> %+v", c, got)
		}
	}
}

// A flush with more deltas than one batch may carry is split into
// consecutive batches, each committed once; nothing is lost.
func TestLargeFlushSplitsIntoBatches(t *testing.T) {
	dir := t.TempDir()
	q, err := openStatsQueue(filepath.Join(dir, "q.db"), "n1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer q.db.Close()
	var f flushSet
	var want uint64
	for i := 0; i < maxDeltasPerBatch*2+5; i++ {
		f.deltas = append(f.deltas, model.StatsDelta{UserID: uint64(i + 1), Torrent: model.InfoHash{1}, Uploaded: 3})
		want += 3
	}
	if _, err := q.append(&f, nil); err != nil {
		t.Fatal(err)
	}
	var got uint64
	var batches int
	var lastSeq uint64
	for {
		b, ok, err := q.oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if len(b.Deltas) > maxDeltasPerBatch || (lastSeq != 0 && b.Seq != lastSeq+1) {
			t.Fatalf("batch %d: %d deltas after seq %d", b.Seq, len(b.Deltas), lastSeq)
		}
		lastSeq = b.Seq
		for _, d := range b.Deltas {
			got += d.Uploaded
		}
		batches++
		q.committed(b.Seq)
	}
	if batches != 3 || got != want {
		t.Fatalf("%d batches carrying %d bytes, want 3 and %d", batches, got, want)
	}
}

// Committed batches leave the file with the next append or at close, not
// one transaction each; until then they are neither pending nor given out
// again, and after a crash before their deletion they are given out again
// (the replicated state applies each Seq once).
func TestCommittedBatchesDeletedLazily(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := openStatsQueue(path, "n1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	appendOne := func(up uint64) uint64 {
		t.Helper()
		f := flushSet{deltas: []model.StatsDelta{{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: up}}}
		seq, err := q.append(&f, nil)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	inFile := func() int {
		t.Helper()
		n := 0
		if err := q.db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket(bucketBatches).Stats().KeyN
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	oldest := func() uint64 {
		t.Helper()
		b, ok, err := q.oldest()
		if err != nil || !ok {
			t.Fatalf("oldest: %v %v", ok, err)
		}
		return b.Seq
	}
	s1, s2, s3 := appendOne(1), appendOne(2), appendOne(3)
	q.committed(oldest())
	q.committed(oldest())
	if n, _ := q.pending(); n != 1 || inFile() != 3 || oldest() != s3 {
		t.Fatalf("after committing %d and %d: %d pending, %d in the file, oldest %d; want 1, 3, %d", s1, s2, n, inFile(), oldest(), s3)
	}
	s4 := appendOne(4)
	if n, _ := q.pending(); n != 2 || inFile() != 2 || oldest() != s3 {
		t.Fatalf("after the next append: %d pending, %d in the file, oldest %d; want 2, 2, %d", n, inFile(), oldest(), s3)
	}
	// A crash (no close) after committing s3: it comes back.
	q.committed(s3)
	q.db.Close()
	if q, err = openStatsQueue(path, "n1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.pending(); n != 2 || oldest() != s3 {
		t.Fatalf("after a crash: %d pending, oldest %d; want 2, %d", n, oldest(), s3)
	}
	// A clean close deletes what was committed.
	q.committed(s3)
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if q, err = openStatsQueue(path, "n1", time.Now()); err != nil {
		t.Fatal(err)
	}
	defer q.close()
	if n, _ := q.pending(); n != 1 || inFile() != 1 || oldest() != s4 {
		t.Fatalf("after close and reopen: %d pending, %d in the file, oldest %d; want 1, 1, %d", n, inFile(), oldest(), s4)
	}
}

// The per-shard counter logs replay to the same counters after a restart,
// across segments, deletions and a compaction of one shard, after the
// counters in the two older formats.
func TestCounterLogReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := openStatsQueue(path, "n1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[counterKey]counterRec{}
	const manyRecords = 10_000 // a few thousand segments
	// Keys 0-19,999 are all in shard 5 (several segments); the rest spread.
	key := func(i int) counterKey {
		h := model.InfoHash{byte(i), byte(i >> 8), byte(i >> 16)}
		if i < 2*manyRecords {
			h[0] = 5
		}
		return counterKey{user: uint64(i%7 + 1), torrent: h, peer: peerID(i)}
	}
	// Counters in both older formats: one key per counter, then the
	// global log, which replaces it.
	legacy, legacy2 := key(99_999), key(99_998)
	err = q.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCounters).Put(appendCounterKey(nil, legacy), encodeCounterVal(counterRec{up: 5, updated: 1})); err != nil {
			return err
		}
		seg := append([]byte{logPut}, appendCounterKey(nil, legacy)...)
		seg = appendCounterVal(seg, counterRec{up: 6, updated: 2})
		seg = append(seg, logPut)
		seg = appendCounterKey(seg, legacy2)
		seg = appendCounterVal(seg, counterRec{up: 7, updated: 2})
		return tx.Bucket(bucketCounterLog).Put(be64(0), seg)
	})
	if err != nil {
		t.Fatal(err)
	}
	want[legacy] = counterRec{up: 6, updated: 2}
	want[legacy2] = counterRec{up: 7, updated: 2}
	load := func() map[counterKey]counterRec {
		t.Helper()
		got := map[counterKey]counterRec{}
		err := q.loadCounters(func(k counterKey, c counterRec) { got[k] = c }, func(k counterKey) { delete(got, k) })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	reopen := func() {
		t.Helper()
		q.close()
		if q, err = openStatsQueue(path, "n1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// parts groups puts and dels by shard, as take does, and counts shard
	// 5's records.
	recs5 := 0
	parts := func(puts []counterPut, dels []counterKey) []logPart {
		var ps [numStatsShards]logPart
		for _, p := range puts {
			i := shardOf(p.k.torrent)
			ps[i].shard = i
			ps[i].addPut(p.k, p.c)
		}
		for _, k := range dels {
			i := shardOf(k.torrent)
			ps[i].shard, ps[i].dels = i, append(ps[i].dels, k)
		}
		var out []logPart
		for i := range ps {
			if !ps[i].empty() {
				out = append(out, ps[i])
			}
		}
		recs5 += ps[5].nputs() + len(ps[5].dels)
		return out
	}
	// Two flushes: many puts (several segments in shard 5), then updates
	// and deletes, one of them of a legacy counter.
	var puts []counterPut
	for i := range 2*manyRecords + 200 {
		c := counterRec{up: uint64(i), down: 2 * uint64(i), updated: int64(i), leeching: i%2 == 0}
		puts = append(puts, counterPut{key(i), c})
		want[key(i)] = c
	}
	f := flushSet{deltas: []model.StatsDelta{{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: 3}}, parts: parts(puts, nil)}
	if _, err := q.append(&f, nil); err != nil {
		t.Fatal(err)
	}
	puts = nil
	var dels []counterKey
	for i := 2*manyRecords - 150; i < 2*manyRecords+150; i += 3 {
		c := counterRec{up: 1e9 + uint64(i), updated: 7, completed: true}
		puts = append(puts, counterPut{key(i), c})
		want[key(i)] = c
		dels = append(dels, key(i+1))
		delete(want, key(i+1))
	}
	dels = append(dels, legacy)
	delete(want, legacy)
	f = flushSet{parts: parts(puts, dels)}
	if _, err := q.append(&f, nil); err != nil {
		t.Fatal(err)
	}
	reopen()
	if got := load(); !maps.Equal(got, want) {
		t.Fatalf("after restart: %d counters, want %d", len(got), len(want))
	}
	if q.legacyRecords != 3 || q.logRecords[5] != recs5 || recs5 < 2*manyRecords+100 {
		t.Fatalf("log records: %d legacy, %d in shard 5", q.legacyRecords, q.logRecords[5])
	}
	live5 := 0
	for k := range want {
		if shardOf(k.torrent) == 5 {
			live5++
		}
	}
	if q.wantsCompaction(5, live5) {
		t.Fatal("compaction wanted with the log shorter than twice the live counters")
	}
	if !q.wantsCompaction(5, live5/3) {
		t.Fatal("no compaction wanted with the log 3 times the live counters")
	}
	if q.wantsCompaction(6, 0) {
		t.Fatal("compaction wanted below the minimum length")
	}
	// A compaction of shard 5 rewrites its live counters alone and leaves
	// the other shards' logs; deltas still queue.
	full := logPart{shard: 5, full: true}
	for k, c := range want {
		if shardOf(k.torrent) == 5 {
			full.addPut(k, c)
		}
	}
	f = flushSet{deltas: []model.StatsDelta{{UserID: 2, Torrent: model.InfoHash{2}, Uploaded: 4}}, parts: []logPart{full}}
	if _, err := q.append(&f, nil); err != nil {
		t.Fatal(err)
	}
	reopen()
	if got := load(); !maps.Equal(got, want) || q.logRecords[5] != live5 {
		t.Fatalf("after compaction: %d counters (want %d), %d log records in shard 5 (want %d)", len(got), len(want), q.logRecords[5], live5)
	}
	if n, _ := q.pending(); n != 2 {
		t.Fatalf("%d batches pending, want 2", n)
	}
	q.close()
}

// A tracker opened on a queue with counters in an older format rewrites
// them into the per-shard logs at start and drops the old ones; the
// counters survive that and the next restart.
func TestLegacyCountersMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := openStatsQueue(path, "n1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	want := map[counterKey]counterRec{}
	err = q.db.Update(func(tx *bolt.Tx) error {
		var seg []byte
		for i := range 300 {
			k := counterKey{user: uint64(i%5 + 1), torrent: model.InfoHash{byte(i), 1}, peer: peerID(i)}
			c := counterRec{up: uint64(i) << 20, down: 7, updated: now, leeching: true}
			if i%2 == 0 {
				if err := tx.Bucket(bucketCounters).Put(appendCounterKey(nil, k), encodeCounterVal(c)); err != nil {
					return err
				}
			} else {
				seg = append(seg, logPut)
				seg = appendCounterKey(seg, k)
				seg = appendCounterVal(seg, c)
			}
			want[k] = c
		}
		// One expired counter: left out of the rewrite.
		old := counterKey{user: 9, torrent: model.InfoHash{3}, peer: peerID(1)}
		seg = append(seg, logPut)
		seg = appendCounterKey(seg, old)
		seg = appendCounterVal(seg, counterRec{up: 1, updated: 1})
		return tx.Bucket(bucketCounterLog).Put(be64(0), seg)
	})
	if err != nil {
		t.Fatal(err)
	}
	q.close()

	counters := func(tr *Tracker) map[counterKey]counterRec {
		got := map[counterKey]counterRec{}
		for i := range tr.acct.shards {
			tr.acct.shards[i].counters.each(func(k counterKey, c counterRec) bool {
				c.restored = false
				got[k] = c
				return true
			})
		}
		return got
	}
	for run := range 2 {
		tr := newTestTracker(t, newFakeRegistry(), newFakeCommitter(), func(c *Config) { c.QueuePath = path; c.NodeID = "n1" })
		if got := counters(tr); !maps.Equal(got, want) {
			t.Fatalf("run %d: %d counters restored, want %d", run, len(got), len(want))
		}
		err := tr.queue.db.View(func(tx *bolt.Tx) error {
			if n := tx.Bucket(bucketCounters).Stats().KeyN + tx.Bucket(bucketCounterLog).Stats().KeyN; n != 0 {
				return fmt.Errorf("%d keys left in the old formats", n)
			}
			if tx.Bucket(bucketShardLog).Stats().KeyN == 0 {
				return errors.New("nothing in the per-shard logs")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchCodec(t *testing.T) {
	b := model.StatsBatch{NodeID: "node-7", Seq: 1<<40 + 3, Deltas: []model.StatsDelta{
		{UserID: 1, Torrent: model.InfoHash{1, 2, 3}, Uploaded: 10, Downloaded: 20, Snatches: 1},
		{UserID: ^uint64(0), Torrent: model.InfoHash{19: 9}, Uploaded: ^uint64(0), Downloaded: 0, Snatches: 1 << 20},
	}}
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{"binary": encodeBatch(b), "json (older queue files)": js} {
		got, err := decodeBatch(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.NodeID != b.NodeID || got.Seq != b.Seq || !slices.Equal(got.Deltas, b.Deltas) {
			t.Fatalf("%s: %+v, want %+v", name, got, b)
		}
	}
	empty := model.StatsBatch{NodeID: "n", Seq: 1}
	if got, err := decodeBatch(encodeBatch(empty)); err != nil || got.NodeID != "n" || got.Seq != 1 || len(got.Deltas) != 0 {
		t.Fatalf("empty batch: %+v %v", got, err)
	}
	good := encodeBatch(b)
	for name, v := range map[string][]byte{
		"empty":        nil,
		"unknown form": append([]byte{9}, good[1:]...),
		"cut short":    good[:len(good)-1],
		"header only":  good[:9],
		"long node id": append(bytes.Clone(good[:9]), 200, 'x'),
	} {
		if _, err := decodeBatch(v); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// A queue file written before the binary batch form (JSON batches) is
// read and committed by this version.
func TestQueueCommitsOlderJSONBatches(t *testing.T) {
	q := newDownQueueFixture(t)
	reg, pk, ih, path, sc, cfg, tr := q.reg, q.pk, q.ih, q.path, q.sc, q.cfg, q.tr
	var err error
	for i := range 2 {
		announceVia(t, tr, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, up: uint64(i * 70)})
		_ = tr.Flush(context.Background())
	}
	_ = tr.Close()
	// Rewrite the pending batch as an older version stored it.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	err = db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketBatches)
		return bk.ForEach(func(k, v []byte) error {
			b, err := decodeBatch(v)
			if err != nil {
				return err
			}
			js, err := json.Marshal(b)
			if err != nil {
				return err
			}
			rewritten++
			return bk.Put(k, js)
		})
	})
	db.Close()
	if err != nil || rewritten != 1 {
		t.Fatalf("rewrite as JSON: %v (%d batches)", err, rewritten)
	}
	sc.down.Store(false)
	tr, err = New(cfg, reg, sc, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if got := sc.totals[sumKey{1, ih}]; got.up != 70 {
		t.Fatalf("total up %d, want 70", got.up)
	}
}

// TestCountersHintFollowsRecords: the peer store remembers where each peer's
// counters are; after the accountant moves records (a forgotten peer's slot
// is filled by the last one), the stale place is detected, the delta is
// still counted exactly once and the peer remembers the new place.
func TestCountersHintFollowsRecords(t *testing.T) {
	f := newHTTPFixture(t, nil)
	send := func(id int, up uint64) {
		t.Helper()
		req := announceRequest{infoHash: f.ih, peerID: peerID(id), addr: netip.MustParseAddr("192.0.2.1"),
			port: uint16(6000 + id), uploaded: up, left: 1, numWant: -1, family: family4}
		if _, _, err := f.tr.announce(f.pk, &req, nil); err != nil {
			t.Fatal(err)
		}
	}
	hint := func(id int) (remembered, actual int32) {
		t.Helper()
		ps := f.tr.peers.shard(f.ih)
		ps.mu.Lock()
		sw := ps.get(f.ih)
		remembered = sw.peers[sw.find(peerID(id))].counters
		ps.mu.Unlock()
		sh := f.tr.acct.shard(f.ih)
		sh.mu.Lock()
		actual = sh.counters.find(counterKey{1, f.ih, peerID(id)}, -1)
		sh.mu.Unlock()
		return remembered, actual
	}
	for id := range 3 {
		send(id, 1000)
		if r, a := hint(id); r != a || a < 0 {
			t.Fatalf("peer %d: remembered %d, counters at %d", id, r, a)
		}
	}
	sh := f.tr.acct.shard(f.ih)
	sh.mu.Lock()
	sh.counters.del(counterKey{1, f.ih, peerID(0)}) // moves peer 2's record
	sh.mu.Unlock()
	if r, a := hint(2); r == a {
		t.Fatalf("peer 2's record did not move (at %d)", a)
	}
	send(2, 1300)
	if r, a := hint(2); r != a {
		t.Fatalf("peer 2: remembered %d, counters at %d", r, a)
	}
	if got := sh.counters.pending(sumKey{1, f.ih}); got.up != 300 {
		t.Fatalf("pending upload %d, want 300", got.up)
	}
}

// A periodic flush goes in FlushSlices slices, each its own batch of the
// slice's shards, FlushSpread/FlushSlices apart; announces accounted
// between slices are counted once; a cancelled flush leaves the rest for
// the next one.
func TestFlushInSlices(t *testing.T) { testFlushInSlices(t) }

// The same on one P, where each queue commit gets a second P (pace.Widen)
// while announces go on: the stats come out the same and the process is
// left with one P.
func TestFlushInSlicesOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	testFlushInSlices(t)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after the flushes: %d Ps, want 1", n)
	}
}

func testFlushInSlices(t *testing.T) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	var hashes []model.InfoHash
	for i := range 300 {
		hashes = append(hashes, reg.addTorrent(fmt.Sprintf("t%d", i), 1<<30))
	}
	sc := newFakeCommitter()
	tr := newTestTracker(t, reg, sc, func(c *Config) {
		c.FlushInterval, c.FlushSlices, c.FlushSpread = time.Hour, 4, 80*time.Millisecond
	})
	truth := map[sumKey]sums{}
	up := uint64(0)
	announceAll := func() {
		up += 1000
		for i, ih := range hashes {
			announceVia(t, tr, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(i), port: 1, up: up})
			if up > 1000 {
				truth[sumKey{1, ih}] = sums{up: up - 1000}
			}
		}
	}
	announceAll() // baselines
	announceAll()
	start := time.Now()
	var during sync.WaitGroup
	during.Go(func() {
		time.Sleep(30 * time.Millisecond) // between slices
		announceAll()
	})
	tr.flushSliced(context.Background())
	during.Wait()
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("4 slices 20ms apart took %v", d)
	}
	var seqs []uint64
	for {
		b, ok, err := tr.queue.oldest()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		slice := -1
		for _, d := range b.Deltas {
			s := shardOf(d.Torrent) / (numStatsShards / 4)
			if slice != -1 && s != slice {
				t.Fatalf("batch %d holds deltas of slices %d and %d", b.Seq, slice, s)
			}
			slice = s
		}
		seqs = append(seqs, b.Seq)
		if err := sc.CommitStats(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		tr.queue.committed(b.Seq)
	}
	if len(seqs) < 4 || !slices.IsSorted(seqs) {
		t.Fatalf("batches %v: want at least one a slice, in order", seqs)
	}
	// A flush cancelled before its second slice leaves the rest in memory.
	announceAll()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr.flushSliced(ctx)
	if n, _ := tr.PendingBatches(); n != 1 {
		t.Fatalf("cancelled flush queued %d batches, want 1", n)
	}
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sc.snapshot(); !maps.Equal(got, truth) {
		t.Fatalf("committed %d sums, want %d (equal: %v)", len(got), len(truth), maps.Equal(got, truth))
	}
}

// counterPut is one counter for the log tests to write.
type counterPut struct {
	k counterKey
	c counterRec
}

// TestRestoreAfterFailedFlush: a flush that could not persist puts its
// deltas and counters back (restore). The next flush must carry the same
// deltas, plus what was counted in between, and every counter again.
func TestRestoreAfterFailedFlush(t *testing.T) {
	cfg := Config{}.WithDefaults()
	a := newAccountant(&cfg, testLogger(t))
	now := time.Unix(1_700_000_000, 0)
	tor := func(i int) model.TorrentRef {
		return model.TorrentRef{ID: model.InfoHash{byte(i), byte(i * 7)}, TotalSize: 1 << 40}
	}
	// 300 peers in 100 torrents, the 3 peers of a torrent under one of 2
	// users (so their deltas add up); each announces a baseline and then
	// 1000 more up and 10 more down; one peer of each torrent completes.
	for round := range 2 {
		for i := range 300 {
			r := report{user: uint64(i%2 + 1), torrent: tor(i % 100), peer: peerID(i), up: uint64(round * 1000), down: uint64(round * 10), completed: round == 1 && i < 100}
			a.account(&r, now.Add(time.Duration(round)*time.Minute))
		}
	}
	first := a.take(0, numStatsShards, nil, nil, nil)
	if len(first.deltas) != 100 || first.counters() != 300 {
		t.Fatalf("first take: %d deltas, %d counters; want 100 and 300", len(first.deltas), first.counters())
	}
	for _, d := range first.deltas {
		if d.Uploaded != 3000 || d.Downloaded != 30 || d.Snatches != 1 {
			t.Fatalf("first take: delta %+v, want 3000 up, 30 down, 1 snatch", d)
		}
	}
	keys := func(f flushSet) map[counterKey]bool {
		m := map[counterKey]bool{}
		for _, p := range f.parts {
			for i := range p.nputs() {
				m[p.putKey(i)] = true
			}
		}
		return m
	}
	// The flush fails; meanwhile peer 5 announces 1 more byte up.
	a.account(&report{user: 2, torrent: tor(5), peer: peerID(5), up: 1001, down: 10}, now.Add(2*time.Minute))
	a.restore(first)
	second := a.take(0, numStatsShards, nil, nil, nil)
	want := slices.Clone(first.deltas)
	for i := range want {
		if want[i].UserID == 2 && want[i].Torrent == tor(5).ID {
			want[i].Uploaded++
		}
	}
	if !slices.Equal(second.deltas, want) {
		t.Fatalf("after restore: deltas\n%v\nwant\n%v", second.deltas, want)
	}
	if got, wantKeys := keys(second), keys(first); !maps.Equal(got, wantKeys) {
		t.Fatalf("after restore: %d counters taken, want the %d of the failed flush", len(got), len(wantKeys))
	}
	var snatches uint64
	for _, d := range second.deltas {
		snatches += d.Snatches
	}
	if snatches != 100 {
		t.Fatalf("%d snatches, want 100", snatches)
	}
	if third := a.take(0, numStatsShards, nil, nil, nil); !third.empty() {
		t.Fatalf("a third take found %d deltas, %d counters", len(third.deltas), third.counters())
	}
}

// TestSumDeltasMatchesReference: sumDeltas gives what sorting the deltas
// by (user, torrent) and adding up equal pairs gives, for batches with
// repeated pairs, hashes that share their first 8 bytes, and users that
// come in any order.
func TestSumDeltasMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		n := rng.IntN(300)
		ds := make([]model.StatsDelta, n)
		for i := range ds {
			d := &ds[i]
			d.UserID = uint64(rng.IntN(8))
			d.Torrent[0] = byte(rng.IntN(2)) // 8-byte prefixes collide often
			d.Torrent[19] = byte(rng.IntN(6))
			d.Uploaded, d.Downloaded, d.Snatches = rng.Uint64N(1000), rng.Uint64N(1000), rng.Uint64N(2)
		}
		ref := modeltest.SumDeltas(ds)
		if got := sumDeltas(ds); !slices.Equal(got, ref) {
			t.Fatalf("round %d (%d deltas): got %v, want %v", round, n, got, ref)
		}
	}
}
