// Package announce is seedbank's private BitTorrent tracker: HTTP (BEP 3, 7,
// 23, 48) and UDP (BEP 15, 41) announce and scrape, an in-memory sharded peer
// store that the gossip layer extends with peers of other nodes, and exact
// ratio accounting flushed as idempotent stats batches through a local bbolt
// queue.
//
// The announce hot path reads only the Registry (in-memory indexes kept by
// the replicated state) and local memory; it never waits on raft, the
// network or the disk.
package announce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// Registry answers the announce path's questions about replicated state. Its
// methods are called on every announce: they must be in-memory, fast and safe
// for concurrent use.
type Registry interface {
	// UserByPasskey returns the owner of passkey (32 lowercase hex chars;
	// false for any other string, which the tracker checks only then).
	// passkey may point into a reused buffer: it is valid only during the
	// call, and an implementation that keeps it must copy it.
	UserByPasskey(passkey string) (model.UserRef, bool)
	// TorrentByHash returns the torrent announced under h. Both the v1 hash
	// and the truncated v2 hash of a hybrid torrent map to the same
	// TorrentRef.ID.
	TorrentByHash(h model.InfoHash) (model.TorrentRef, bool)
	// ClientAllowed reports whether peerID matches the client whitelist.
	ClientAllowed(peerID []byte) bool
}

// TorrentGenerations is what a Registry may also implement so the tracker
// can skip most torrent lookups: TorrentGeneration returns a number, never
// 0, that changes after every change of what TorrentByHash answers. The
// tracker keeps the TorrentRef of a swarm in the swarm, with the number it
// was looked up under, and looks it up again only once the number moved.
// The swarm is read anyway, so an announce reads one table instead of two.
type TorrentGenerations interface {
	TorrentGeneration() uint64
}

// Errors an announce or scrape can fail with. Their text is what the client
// shows its user.
var (
	ErrUnknownPasskey      = errors.New("unknown passkey: download the .torrent file again from the site")
	ErrDisabledAccount     = errors.New("your account is disabled")
	ErrUnregisteredTorrent = errors.New("this torrent is not registered with this tracker")
	ErrClientNotAllowed    = errors.New("your BitTorrent client is not on this tracker's allowed list")
	ErrMalformedPasskey    = errors.New("the passkey in the announce URL is malformed: download the .torrent file again from the site")
)

// ParamError is a missing or malformed request parameter.
type ParamError struct {
	Param  string // the parameter's name, e.g. "info_hash"
	Reason string
}

func (e *ParamError) Error() string { return "parameter " + e.Param + ": " + e.Reason }

// SwarmStats are the live numbers of one torrent on this node.
type SwarmStats struct {
	Seeders  int // local and remote peers with nothing left to download
	Leechers int // local and remote peers still downloading
	// Snatches are the completed downloads this node saw since it started;
	// the replicated per-torrent stats hold the cluster's total.
	Snatches int
}

// Tracker serves announces and scrapes and accounts transfer stats. Create it
// with New, serve with Handler and ServeUDP, run its background loops with
// Run, and end it with Close. All methods are safe for concurrent use.
type Tracker struct {
	cfg    Config
	reg    Registry
	gens   TorrentGenerations // reg, if it implements it; else nil
	commit StatsCommitter
	log    *slog.Logger
	debug  bool

	counters resultCounters

	peers *PeerStore
	acct  *accountant
	queue *statsQueue
	conns connIDs
	now   func() time.Time // time.Now; tests replace it

	states  sync.Pool     // *announceState
	wake    chan struct{} // a batch was queued
	flushMu sync.Mutex    // one flush at a time
	// putScratch backs a flush's counter puts, reused from flush to flush
	// (guarded by flushMu).
	putScratch []byte
	commits    chan struct{} // semaphore: one committer at a time

	lifeMu  sync.Mutex
	running sync.WaitGroup
	started bool
	closed  bool
	stopCtx context.Context
	stop    context.CancelFunc
}

// New opens the stats queue at cfg.QueuePath, restores the peers' last
// counters from it and returns a Tracker. Batches left in the queue by a
// previous run are committed by Run, in Seq order, before any new batch.
// A nil log discards logs.
func New(cfg Config, reg Registry, sc StatsCommitter, log *slog.Logger) (*Tracker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil || sc == nil {
		return nil, errors.New("announce: Registry and StatsCommitter are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "announce")
	now := time.Now()
	q, err := openStatsQueue(cfg.QueuePath, cfg.NodeID, now)
	if err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	gens, _ := reg.(TorrentGenerations)
	t := &Tracker{
		cfg:     cfg,
		reg:     reg,
		gens:    gens,
		commit:  sc,
		log:     log,
		peers:   NewPeerStore(cfg.PeerTTL, cfg.RemotePeerTTL),
		acct:    newAccountant(&cfg, log),
		queue:   q,
		now:     time.Now,
		wake:    make(chan struct{}, 1),
		commits: make(chan struct{}, 1),
	}
	if err := t.conns.init(); err != nil {
		q.close()
		return nil, fmt.Errorf("announce: %w", err)
	}
	// Checked once: per-announce debug logging must cost nothing when off.
	t.debug = log.Enabled(context.Background(), slog.LevelDebug)
	t.stopCtx, t.stop = context.WithCancel(context.Background())
	var expired []counterKey
	cut := now.Add(-cfg.CounterTTL).Unix()
	err = q.loadCounters(func(k counterKey, c counterRec) {
		t.acct.load(k, c)
	}, t.acct.unload)
	if err == nil {
		expired = t.acct.expire(cut)
		if q.hasLegacy() {
			// Counters in an older format: rewrite them all into the
			// per-shard logs at once (expired ones left out).
			f := t.acct.take(0, numStatsShards, everyShard, nil, nil) // before any announce: no pacing
			f.dropLegacy = true
			_, err = q.append(&f, nil)
		} else {
			err = q.deleteCounters(expired)
		}
	}
	loaded := t.acct.count()
	if err != nil {
		q.close()
		return nil, fmt.Errorf("announce: restore peer counters: %w", err)
	}
	pending, _ := q.pending()
	log.Info("tracker opened", "node_id", cfg.NodeID, "queue", cfg.QueuePath,
		"peer_counters", loaded, "expired_counters", len(expired), "pending_batches", pending)
	return t, nil
}

// Config returns the effective configuration, defaults filled in.
func (t *Tracker) Config() Config { return t.cfg }

// Peers returns the peer store, for the gossip layer.
func (t *Tracker) Peers() *PeerStore { return t.peers }

// ChangedSwarms appends to dst the swarms whose seeder count changed since
// the last call (see PeerStore.ChangedSwarms).
func (t *Tracker) ChangedSwarms(dst []model.InfoHash) []model.InfoHash {
	return t.peers.ChangedSwarms(dst)
}

// SwarmStats returns the live numbers of the torrent announced under h
// (either hash of a hybrid torrent), or false if h is not registered.
func (t *Tracker) SwarmStats(h model.InfoHash) (SwarmStats, bool) {
	ref, ok := t.reg.TorrentByHash(h)
	if !ok {
		return SwarmStats{}, false
	}
	s, l, n := t.peers.Counts(ref.ID)
	return SwarmStats{Seeders: s, Leechers: l, Snatches: n}, true
}

// PutRemotePeer records that node origin serves peer p in swarm (a
// TorrentRef.ID), as learned from gossip: PeerStore.PutRemote plus the
// counter handoff. If this node holds live counters of that peer, it stops
// counting from them and returns them (ok true): the gossip layer must
// deliver them to origin's ImportPeerCounters, which then counts what the
// client transferred between its last announce here and its first there.
// A peer that was local here becomes origin's (the client moved).
func (t *Tracker) PutRemotePeer(origin string, swarm model.InfoHash, p Peer) (handoff PeerCounters, ok bool) {
	if origin == "" || origin == t.cfg.NodeID {
		return PeerCounters{}, false
	}
	t.peers.PutRemote(origin, swarm, p)
	return t.acct.handOff(swarm, p.ID)
}

// PeerCounters returns the last cumulative counters a peer reported to this
// node for torrent (a TorrentRef.ID), unless they were handed off.
func (t *Tracker) PeerCounters(userID uint64, torrent model.InfoHash, peerID [20]byte) (PeerCounters, bool) {
	return t.acct.Counters(userID, torrent, peerID)
}

// ImportPeerCounters applies counters handed off by another node (see
// PutRemotePeer) and reports whether they changed anything. If this node
// took the peer's first announce here as a baseline, the gap between pc and
// that baseline is counted now; if this node has no live counters of the
// peer, or older ones, pc becomes the baseline; newer local counters win.
// Together with PutRemotePeer this makes a failover neither lost nor counted
// twice.
func (t *Tracker) ImportPeerCounters(pc PeerCounters) bool {
	var size int64
	if ref, ok := t.reg.TorrentByHash(pc.Torrent); ok {
		size = ref.TotalSize
	}
	return t.acct.importCounters(pc, size)
}

// PendingBatches returns the number of stats batches queued but not yet
// committed.
func (t *Tracker) PendingBatches() (int, error) {
	n, err := t.queue.pending()
	if err != nil {
		return 0, fmt.Errorf("announce: count pending batches: %w", err)
	}
	return n, nil
}

// StatsLag is how long the stats queue has not been empty: zero when every
// flushed batch is committed, growing while the cluster cannot take them.
func (t *Tracker) StatsLag() time.Duration {
	n, err := t.queue.pending()
	if err != nil || n == 0 {
		return 0
	}
	last := t.counters.lastEmpty.Load()
	if last == 0 {
		return 0
	}
	return t.now().Sub(time.Unix(0, last))
}

// Handler returns the HTTP tracker: GET .../<passkey>/announce and
// .../<passkey>/scrape.
func (t *Tracker) Handler() http.Handler { return httpHandler{t} }

// Run sweeps expired peers and counters, flushes stats every FlushInterval
// and commits queued batches in Seq order, retrying with backoff. It returns
// nil when ctx is done or Close is called, and an error if called twice or
// after Close.
func (t *Tracker) Run(ctx context.Context) error {
	t.lifeMu.Lock()
	if t.started || t.closed {
		t.lifeMu.Unlock()
		return errors.New("announce: Run called twice or after Close")
	}
	t.started = true
	t.running.Add(1)
	t.lifeMu.Unlock()
	defer t.running.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.stopCtx, cancel)
	defer stop()

	var wg sync.WaitGroup
	wg.Go(func() { t.sweepLoop(ctx) })
	wg.Go(func() { t.flushLoop(ctx) })
	wg.Go(func() { t.commitLoop(ctx) })
	wg.Wait()
	return nil
}

// Close stops Run, flushes the accumulated stats to the queue, tries for up
// to CloseTimeout to commit the queued batches and closes the queue. Batches
// it could not commit are committed by the next run. Call it after the
// listeners have stopped; announces after Close are not accounted.
func (t *Tracker) Close() error {
	t.lifeMu.Lock()
	if t.closed {
		t.lifeMu.Unlock()
		return nil
	}
	t.closed = true
	t.lifeMu.Unlock()
	t.stop()
	t.running.Wait()

	var errs []error
	if err := t.flush(); err != nil {
		errs = append(errs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.CloseTimeout)
	if err := t.commitPending(ctx); err != nil {
		errs = append(errs, err)
	}
	cancel()
	if err := t.queue.close(); err != nil {
		errs = append(errs, fmt.Errorf("close stats queue: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("announce: close: %w", err)
	}
	return nil
}

// Flush turns the stats accumulated so far into a queued batch and commits
// every queued batch, waiting for CommitStats as long as ctx allows.
func (t *Tracker) Flush(ctx context.Context) error {
	if err := t.flush(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	if err := t.commitPending(ctx); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}

// flush moves all the accumulated deltas and changed counters into the
// queue in one transaction.
func (t *Tracker) flush() error { return t.flushShards(0, numStatsShards) }

// flushShards moves the accumulated deltas and changed counters of the
// accountant's shards [lo, hi) into the queue in one transaction. On
// failure they go back to the accountant for the next try.
func (t *Tracker) flushShards(lo, hi int) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	// One pacer for the whole flush: each part of it is short, but taken
	// together they held a core for 4-6 ms at a time (trace, BENCHMARKS.md).
	pc := pace.New(0)
	f := t.acct.take(lo, hi, t.queue.wantsCompaction, t.putScratch, pc)
	defer func() {
		// Keep a slice's worth for the next flush, not a compaction's.
		if cap(f.scratch) <= maxKeptScratch {
			t.putScratch = f.scratch[:0]
		} else {
			t.putScratch = nil
		}
	}()
	if f.empty() {
		return nil
	}
	seq, err := t.queue.append(&f, pc)
	if err != nil {
		t.acct.restore(f)
		return fmt.Errorf("flush stats: %w", err)
	}
	if t.debug {
		full := 0
		for i := range f.parts {
			if f.parts[i].full {
				full++
			}
		}
		t.log.Debug("stats flushed", "shards", fmt.Sprintf("%d-%d", lo, hi-1), "seq", seq,
			"deltas", len(f.deltas), "counters", f.counters(), "compacted_shards", full)
	}
	if seq != 0 {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// maxKeptScratch bounds the bytes of counter puts kept for reuse between
// flushes (about 76,000 counters).
const maxKeptScratch = 8 << 20

// flushSliced is the periodic flush: FlushSlices slices of the shards, one
// queue transaction (and batch) each, FlushSpread/FlushSlices apart. A
// flush of everything at once took about a second of CPU at 60,000
// announces/s and delayed the answers queued behind it by hundreds of ms
// (BENCHMARKS.md); slices let the announce loops run in between. It
// returns early when ctx is done; the rest waits for the next flush.
func (t *Tracker) flushSliced(ctx context.Context) {
	per := numStatsShards / t.cfg.FlushSlices
	pause := t.cfg.FlushSpread / time.Duration(t.cfg.FlushSlices)
	var timer *time.Timer
	for lo := 0; lo < numStatsShards; lo += per {
		if lo > 0 && pause > 0 {
			if timer == nil {
				timer = time.NewTimer(pause)
				defer timer.Stop()
			} else {
				timer.Reset(pause)
			}
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if err := t.flushShards(lo, lo+per); err != nil {
			t.log.Error("stats flush failed; deltas kept for the next flush", "err", err, "shards", fmt.Sprintf("%d-%d", lo, lo+per-1))
		}
	}
}

// commitPending commits queued batches oldest first until the queue is empty
// or a commit fails. Each CommitStats call gets at most CommitTimeout.
func (t *Tracker) commitPending(ctx context.Context) error {
	select {
	case t.commits <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("commit stats: %w", ctx.Err())
	}
	defer func() { <-t.commits }()
	for {
		b, ok, err := t.queue.oldest()
		if err != nil {
			return fmt.Errorf("commit stats: %w", err)
		}
		if !ok {
			t.counters.lastEmpty.Store(t.now().UnixNano())
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, t.cfg.CommitTimeout)
		err = t.commit.CommitStats(cctx, b)
		cancel()
		if err != nil {
			return fmt.Errorf("commit stats batch %d: %w", b.Seq, err)
		}
		t.queue.committed(b.Seq)
		t.log.Debug("stats batch committed", "seq", b.Seq, "deltas", len(b.Deltas))
	}
}

func (t *Tracker) flushLoop(ctx context.Context) {
	tick := time.NewTicker(t.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.flushSliced(ctx)
		}
	}
}

func (t *Tracker) commitLoop(ctx context.Context) {
	backoff := t.cfg.RetryMin
	for {
		err := t.commitPending(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = t.cfg.RetryMin
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
			}
			continue
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, t.cfg.RetryMax)
		pending, _ := t.queue.pending()
		t.log.Warn("stats commit failed; retrying", "err", err, "retry_in", wait, "pending_batches", pending)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

func (t *Tracker) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(t.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.sweep()
		}
	}
}

// sweep removes expired peers and forgets expired counters.
func (t *Tracker) sweep() {
	now := t.now()
	peers := t.peers.Sweep(now)
	counters := t.acct.sweep(now)
	if peers > 0 || counters > 0 {
		t.log.Debug("swept", "peers", peers, "counters", counters)
	}
}
