// Package node wires one seedbank node: identity and keys in the data dir,
// the replicated store, the site and tracker listeners, and their start and
// stop order.
package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/clusterkey"
	"github.com/seedbank/seedbank/gossip"
	"github.com/seedbank/seedbank/metrics"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
	"github.com/seedbank/seedbank/search"
	"github.com/seedbank/seedbank/web"
)

// Node is one running seedbank node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	id    string
	store *raftstore.Store

	httpLn    net.Listener
	httpSrv   *http.Server
	trackerLn net.Listener
	udpConn   *net.UDPConn
	tracker   *announce.Tracker
	gossip    *gossip.Gossip
	site      *web.Server
	metrics   *metrics.Metrics
	search    *search.Index
	// snatched holds the torrents applied stats batches gave snatches,
	// until the search index's counter refresh takes them.
	snatchedMu sync.Mutex
	snatched   map[model.InfoHash]struct{}
	// writeObserver forwards write latencies to metrics once they exist.
	writeObserver atomic.Pointer[metrics.Metrics]
	wg            sync.WaitGroup
	cancel        context.CancelFunc
	stopOnce      sync.Once

	// NewClusterKey is set when this start created the cluster key, so the
	// caller can print it once.
	NewClusterKey string
	// NewJoinSecret is set when this start bootstrapped the cluster and made
	// its join secret, so the caller can print it once.
	NewJoinSecret string
}

// Start opens the data dir, starts raft and the listeners, and returns once
// the node serves. ctx bounds the start (a join waits for the cluster).
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	id, _, err := loadIdentity(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	given := cfg.ClusterKey
	if given == "" && cfg.JoinSecret != "" && len(cfg.Join) > 0 && !fileExists(filepath.Join(cfg.DataDir, "cluster.key")) {
		k, err := fetchClusterKey(ctx, cfg.Join, cfg.JoinSecret, log)
		if err != nil {
			return nil, err
		}
		given = base64.StdEncoding.EncodeToString(k)
	}
	key, created, err := loadClusterKey(cfg.DataDir, given, len(cfg.Join) > 0)
	if err != nil {
		return nil, err
	}
	log = log.With("node", id.NodeID)
	n := &Node{cfg: cfg, log: log, id: id.NodeID}
	if created {
		n.NewClusterKey = clusterkey.Encode(key.Primary())
	}

	if err := n.listen(); err != nil {
		return nil, err
	}
	// The search index opens first so it sees every applied change; it
	// reads the store once the store exists (SetSource below).
	n.search, err = search.Open(filepath.Join(cfg.DataDir, "search"), nil, search.Options{
		NotFound:        raftstore.ErrNotFound,
		Logger:          log,
		Counters:        n.swarmCounters,
		CountersBatch:   n.swarmCountersBatch,
		CountersChanged: n.countersChanged,
	})
	if err != nil {
		n.closeListeners()
		return nil, fmt.Errorf("search index: %w", err)
	}
	n.store, err = raftstore.Open(ctx, raftstore.Config{
		NodeID:            id.NodeID,
		Dir:               cfg.DataDir,
		BindAddr:          cfg.ClusterAddr,
		AdvertiseAddr:     cfg.Advertise,
		ClusterKey:        key.Primary(),
		AcceptKeys:        key.Accepted(),
		Join:              cfg.Join,
		SnapshotThreshold: cfg.SnapshotThreshold,
		ApplyTimeout:      cfg.ApplyTimeout,
		Logger:            log,
		OnApply: func(c raftstore.Change) {
			n.search.Follow(c.Index, c.Type, c.Torrents)
			n.noteSnatched(c.Snatched)
		},
		OnWrite: func(d time.Duration, err error) {
			if m := n.writeObserver.Load(); m != nil {
				m.ObserveWrite(d, err)
			}
		},
		HeartbeatTimeout:   cfg.RaftHeartbeatTimeout,
		ElectionTimeout:    cfg.RaftElectionTimeout,
		LeaderLeaseTimeout: cfg.RaftLeaderLeaseTimeout,
		Dial:               n.hooks().ClusterDial,
	})
	if err != nil {
		n.closeListeners()
		n.search.Close()
		return nil, err
	}
	if err := n.startServices(key); err != nil {
		n.closeListeners()
		n.store.Close()
		n.search.Close()
		return nil, err
	}
	if created {
		// A new cluster: make its join secret now, so it can be printed
		// with the key.
		if err := n.store.WaitForLeader(ctx); err != nil {
			n.Close()
			return nil, fmt.Errorf("new cluster elects no leader: %w", err)
		}
		secret, made, err := n.store.EnsureJoinSecret(ctx)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("make the join secret: %w", err)
		}
		if made {
			n.NewJoinSecret = secret
		}
	}
	return n, nil
}

// fetchClusterKey asks the members at addrs for the cluster key, proving
// the join secret; the first that answers wins.
func fetchClusterKey(ctx context.Context, addrs []string, secret string, log *slog.Logger) ([]byte, error) {
	var errs []error
	for _, a := range addrs {
		k, err := raftstore.FetchClusterKey(ctx, a, secret)
		if err == nil {
			log.Info("fetched the cluster key with the join secret", "from", a)
			return k, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
	}
	return nil, fmt.Errorf("fetch the cluster key with --join-secret: %w", errors.Join(errs...))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// listen binds every listener first, so ports chosen by the kernel (":0")
// are known before the URLs are recorded.
func (n *Node) listen() error {
	var err error
	if n.httpLn, err = net.Listen("tcp", n.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("site listener on %s: %w", n.cfg.HTTPAddr, err)
	}
	if n.trackerLn, err = announce.ListenTCP(context.Background(), n.cfg.TrackerAddr); err != nil {
		n.closeListeners()
		return fmt.Errorf("tracker listener on %s: %w", n.cfg.TrackerAddr, err)
	}
	if n.cfg.UDPAddr != "" {
		addr, err := net.ResolveUDPAddr("udp", n.cfg.UDPAddr)
		if err != nil {
			n.closeListeners()
			return fmt.Errorf("udp tracker address %s: %w", n.cfg.UDPAddr, err)
		}
		if n.udpConn, err = net.ListenUDP("udp", addr); err != nil {
			n.closeListeners()
			return fmt.Errorf("udp tracker listener on %s: %w", n.cfg.UDPAddr, err)
		}
	}
	// memberlist binds the gossip port itself, later; a port in use found
	// only then would leave this node joined to raft but not running.
	if err := checkGossipPort(n.gossipBind()); err != nil {
		n.closeListeners()
		return err
	}
	return nil
}

// checkGossipPort reports whether addr can be bound for TCP and UDP now.
func checkGossipPort(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gossip port %s (set it with --gossip): %w", addr, err)
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("gossip port %s (set it with --gossip): %w", addr, err)
	}
	pc.Close()
	return nil
}

func (n *Node) closeListeners() {
	if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.trackerLn != nil {
		n.trackerLn.Close()
	}
	if n.udpConn != nil {
		n.udpConn.Close()
	}
}

// startServices starts the tracker, the site and the background loops.
func (n *Node) startServices(keys clusterkey.Ring) error {
	clusterKey := keys.Primary()
	cfg := n.cfg
	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, netip.MustParsePrefix(p)) // validated in Config.Validate
	}
	var err error
	// The store is the tracker's registry; its generation lets the
	// tracker skip most torrent lookups.
	var _ announce.TorrentGenerations = n.store
	n.tracker, err = announce.New(announce.Config{
		NodeID:         n.id,
		QueuePath:      filepath.Join(cfg.DataDir, "stats-queue.db"),
		Interval:       cfg.AnnounceInterval,
		MinInterval:    min(cfg.AnnounceInterval, time.Minute),
		FlushInterval:  cfg.StatsFlush,
		TrustedProxies: proxies,
	}, n.store, n.store, n.log)
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	n.search.SetSource(n.store)
	n.site, err = web.New(web.Config{
		SiteName:          cfg.SiteName,
		Source:            cfg.Source,
		Search:            n.search,
		Swarm:             swarmAdapter{n.tracker},
		BaseURL:           n.SiteURL(),
		SessionKey:        deriveKey(clusterKey, "seedbank session key v1"),
		AcceptSessionKeys: acceptedSessionKeys(keys),
		TLS:               cfg.TLS,
		TrustProxyHeaders: len(proxies) > 0,
		TrustedProxies:    proxies,
		SMTP: web.SMTPConfig{
			Host: cfg.SMTPHost, Port: int(cfg.SMTPPort), From: cfg.SMTPFrom,
			Username: cfg.SMTPUser, Password: cfg.SMTPPassword,
		},
		Cluster: clusterView{n},
		StoreErrors: web.StoreErrors{
			NotFound:      raftstore.ErrNotFound,
			UsernameTaken: raftstore.ErrUsernameTaken,
			EmailTaken:    raftstore.ErrEmailTaken,
			RecordExists:  raftstore.ErrRecordExists,
			NoLeader:      raftstore.ErrNoLeader,
			TorrentExists: raftstore.ErrTorrentExists,
		},
	}, webStore{n.store}, n.log)
	if err != nil {
		n.tracker.Close()
		return fmt.Errorf("site: %w", err)
	}
	if err := n.startGossip(keys); err != nil {
		n.tracker.Close()
		return err
	}

	n.metrics = n.newMetrics()
	n.writeObserver.Store(n.metrics)

	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.httpSrv = newServer(n.metrics.Instrument("site", n.siteHandler()))
	n.goRun("site server", func() error { return serveHTTP(n.httpSrv, n.httpLn) })
	// The tracker's own HTTP server (announce/httpserve.go); it stops with runCtx.
	n.goRun("tracker server", func() error {
		return n.tracker.ServeTCP(runCtx, n.trackerLn, announce.ServeOptions{
			Observe: func(code int, d time.Duration) { n.metrics.ObserveHTTP("tracker", code, d) },
		})
	})
	if n.udpConn != nil {
		n.goRun("udp tracker", func() error { return n.tracker.ServeUDP(runCtx, n.udpConn) })
	}
	n.goRun("tracker loops", func() error { return n.tracker.Run(runCtx) })
	n.goRun("member registration", func() error { n.registerMember(runCtx); return nil })
	n.goRun("cluster loop", func() error { n.clusterLoop(runCtx); return nil })
	return nil
}

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func serveHTTP(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// goRun runs fn in the background until Close, logging an unexpected error.
func (n *Node) goRun(name string, fn func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
			n.log.Error(name+" stopped", "err", err)
		}
	}()
}

// deriveKey makes a purpose-specific key from the cluster key, so a leaked
// session key does not expose the cluster key.
// acceptedSessionKeys are the session keys of the other keys in the ring,
// so a session signed by a node using one of them stays valid here.
func acceptedSessionKeys(keys clusterkey.Ring) [][]byte {
	var out [][]byte
	for _, k := range keys.Accepted() {
		out = append(out, deriveKey(k, "seedbank session key v1"))
	}
	return out
}

func deriveKey(clusterKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, clusterKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// swarmCounters gives the search index live seeders and snatches.
func (n *Node) swarmCounters(h model.InfoHash) (seeders, snatches int) {
	if n.tracker != nil {
		if st, ok := n.tracker.SwarmStats(h); ok {
			seeders = st.Seeders
		}
	}
	if n.store != nil {
		snatches = int(n.store.TorrentStats(h).Snatches)
	}
	return seeders, snatches
}

// noteSnatched remembers torrents whose snatch count moved, for
// countersChanged.
func (n *Node) noteSnatched(hs []model.InfoHash) {
	if len(hs) == 0 {
		return
	}
	n.snatchedMu.Lock()
	defer n.snatchedMu.Unlock()
	if n.snatched == nil {
		n.snatched = map[model.InfoHash]struct{}{}
	}
	for _, h := range hs {
		n.snatched[h] = struct{}{}
	}
}

// countersChanged appends the torrents whose seeders or snatches moved since
// its last call: the search index refreshes only those.
func (n *Node) countersChanged(dst []model.InfoHash) []model.InfoHash {
	if n.tracker != nil {
		dst = n.tracker.ChangedSwarms(dst)
	}
	n.snatchedMu.Lock()
	defer n.snatchedMu.Unlock()
	for h := range n.snatched {
		dst = append(dst, h)
	}
	n.snatched = nil
	return dst
}

// swarmCountersBatch is swarmCounters for many torrents, with their
// snatches read in one store transaction.
func (n *Node) swarmCountersBatch(hs []model.InfoHash, seeders, snatches []int) {
	for i, h := range hs {
		seeders[i], snatches[i] = 0, 0
		if n.tracker != nil {
			if st, ok := n.tracker.SwarmStats(h); ok {
				seeders[i] = st.Seeders
			}
		}
	}
	if n.store != nil {
		n.store.TorrentSnatches(hs, snatches)
	}
}

// swarmAdapter gives the site the tracker's live swarm numbers.
type swarmAdapter struct{ t *announce.Tracker }

func (a swarmAdapter) SwarmStats(h model.InfoHash) (seeders, leechers, snatches int, ok bool) {
	st, ok := a.t.SwarmStats(h)
	return st.Seeders, st.Leechers, st.Snatches, ok
}

// webStore adapts raftstore to the site's optional record listing.
type webStore struct{ *raftstore.Store }

func (s webStore) ListRecords(kind, prefix string) ([]web.KV, error) {
	kvs, err := s.Records(kind, prefix)
	out := make([]web.KV, len(kvs))
	for i, kv := range kvs {
		out[i] = web.KV{Key: kv.Key, Value: kv.Value}
	}
	return out, err
}

// ID returns the node id.
func (n *Node) ID() string { return n.id }

// Store returns the replicated store.
func (n *Node) Store() *raftstore.Store { return n.store }

// SiteURL is the public URL of the web site.
func (n *Node) SiteURL() string {
	if n.cfg.SiteURL != "" {
		return n.cfg.SiteURL
	}
	return "http://" + n.httpLn.Addr().String()
}

// AnnounceURL is the public base URL of the HTTP tracker.
func (n *Node) AnnounceURL() string {
	if n.cfg.AnnounceURL != "" {
		return n.cfg.AnnounceURL
	}
	return "http://" + n.trackerLn.Addr().String()
}

// HTTPAddr is the bound site address.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// ClusterAddr is the advertised cluster address.
func (n *Node) ClusterAddr() string { return n.store.Addr() }

// member is what this node records about itself in the replicated state.
func (n *Node) member() model.Member {
	m := model.Member{
		NodeID:      n.id,
		SiteURL:     n.SiteURL(),
		AnnounceURL: n.AnnounceURL(),
		Institution: n.cfg.Institution,
		ClusterAddr: n.store.Addr(),
		Features:    raftstore.Features,
	}
	m.UDPAnnounceURL = n.UDPAnnounceURL()
	return m
}

// UDPAnnounceURL is the base of this node's UDP tracker URLs (a .torrent
// gets it plus "/<passkey>/announce"), or "" without a UDP tracker.
func (n *Node) UDPAnnounceURL() string {
	if n.udpConn == nil {
		return ""
	}
	if n.cfg.UDPURL != "" {
		return n.cfg.UDPURL
	}
	return "udp://" + n.udpConn.LocalAddr().String()
}

// registerMember writes this node's public URLs into the replicated state
// once a leader is reachable, retrying until it succeeds or the node stops.
func (n *Node) registerMember(ctx context.Context) {
	want := n.member()
	for attempt := 0; ; attempt++ {
		for _, m := range n.store.Members() {
			if m == want {
				return
			}
		}
		wctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		err := n.store.PutMember(wctx, want)
		cancel()
		if err == nil {
			n.log.Info("registered member URLs", "site", want.SiteURL, "announce", want.AnnounceURL)
			return
		}
		n.log.Warn("register member URLs", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

func (n *Node) siteHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	mux.Handle("GET /metrics", n.metricsHandler())
	mux.Handle("/", n.site.Handler())
	return mux
}

// readyz answers 200 when a leader is known and this node has applied what
// it knows is committed, else 503; the body says which.
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	ok, why := n.store.Ready()
	_, leader := n.store.Leader()
	body := map[string]any{
		"ready":         ok,
		"reason":        why,
		"node_id":       n.id,
		"version":       Version,
		"raft_state":    n.store.State(),
		"leader":        leader,
		"applied_index": n.store.AppliedIndex(),
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Close stops serving, flushes what the tracker holds and closes the store.
// It does not leave the cluster.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		if e := n.httpSrv.Shutdown(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("stop http: %w", e))
		}
		n.cancel()
		if n.udpConn != nil {
			n.udpConn.Close()
		}
		n.wg.Wait()
		// Gossip stops before the tracker, so no handoff lands in a closed
		// tracker; the others see this node fail (Leave announces it).
		if e := n.gossip.Close(); e != nil {
			n.log.Warn("gossip close", "err", e)
		}
		// Pending stats stay in the local queue if the cluster is not
		// reachable now; the next start sends them.
		if e := n.tracker.Close(); e != nil {
			n.log.Warn("tracker close", "err", e)
		}
		if e := n.store.Close(); e != nil {
			err = errors.Join(err, e)
		}
		if e := n.search.Close(); e != nil {
			err = errors.Join(err, fmt.Errorf("close search index: %w", e))
		}
	})
	return err
}

// Tracker returns the node's tracker.
func (n *Node) Tracker() *announce.Tracker { return n.tracker }

// Leave removes this node from the cluster: its member record and gossip
// address first (while it can still reach the leader), then its raft
// membership, handing leadership over if it leads, and last its gossip
// membership, so the others drop its peers at once. Close the node after.
func (n *Node) Leave(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	err := n.store.RemoveMember(rctx, n.id)
	if err == nil {
		if e := n.store.DeleteRecord(rctx, gossipRecordKind, n.id); e != nil && !errors.Is(e, raftstore.ErrNotFound) {
			err = e
		}
	}
	cancel()
	if err != nil {
		n.log.Warn("remove member record", "err", err)
	}
	if err := n.store.Leave(ctx); err != nil {
		return fmt.Errorf("leave cluster: %w", err)
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if err := n.gossip.Leave(timeout); err != nil {
		n.log.Warn("gossip leave", "err", err)
	}
	return nil
}
