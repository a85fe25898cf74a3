// Package node wires one seedbank node: identity and keys in the data dir,
// the replicated store, the site and tracker listeners, and their start and
// stop order.
package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore"
)

// Node is one running seedbank node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	id    string
	store *raftstore.Store

	httpLn   net.Listener
	httpSrv  *http.Server
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	stopOnce sync.Once

	// NewClusterKey is set when this start created the cluster key, so the
	// caller can print it once.
	NewClusterKey string
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
	key, created, err := loadClusterKey(cfg.DataDir, cfg.ClusterKey, len(cfg.Join) > 0)
	if err != nil {
		return nil, err
	}
	log = log.With("node", id.NodeID)
	n := &Node{cfg: cfg, log: log, id: id.NodeID}
	if created {
		n.NewClusterKey = base64.StdEncoding.EncodeToString(key)
	}

	n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("site listener on %s: %w", cfg.HTTPAddr, err)
	}
	n.store, err = raftstore.Open(ctx, raftstore.Config{
		NodeID:            id.NodeID,
		Dir:               cfg.DataDir,
		BindAddr:          cfg.ClusterAddr,
		AdvertiseAddr:     cfg.Advertise,
		ClusterKey:        key,
		Join:              cfg.Join,
		SnapshotThreshold: cfg.SnapshotThreshold,
		ApplyTimeout:      cfg.ApplyTimeout,
		Logger:            log,
	})
	if err != nil {
		n.httpLn.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel

	n.httpSrv = &http.Server{
		Handler:           n.siteHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("site server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		n.registerMember(runCtx)
	}()
	return n, nil
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
	return "http://" + n.cfg.TrackerAddr
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
	}
	if n.cfg.UDPAddr != "" {
		m.UDPAnnounceURL = n.cfg.UDPURL
		if m.UDPAnnounceURL == "" {
			m.UDPAnnounceURL = "udp://" + n.cfg.UDPAddr
		}
	}
	return m
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
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "seedbank node %s\n", n.id)
	})
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

// Close stops serving and closes the store. It does not leave the cluster.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		n.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		if e := n.httpSrv.Shutdown(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("stop site: %w", e))
		}
		n.wg.Wait()
		if e := n.store.Close(); e != nil {
			err = errors.Join(err, e)
		}
	})
	return err
}

// Leave removes this node from the cluster: its member record first (while
// it can still reach the leader), then its raft membership, handing
// leadership over if it leads.
func (n *Node) Leave(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	err := n.store.RemoveMember(rctx, n.id)
	cancel()
	if err != nil {
		n.log.Warn("remove member record", "err", err)
	}
	if err := n.store.Leave(ctx); err != nil {
		return fmt.Errorf("leave cluster: %w", err)
	}
	return nil
}
