// Package gossip runs seedbank's membership and peer-swarm replication on
// hashicorp/memberlist: which nodes are alive, their public URLs (node
// metadata), and the live peers each node's tracker serves.
//
// Every node is the origin of the peers that announce to it. It sends the
// changes of its local peers (new, moved, became a seeder, stopped, expired)
// straight to every live member, at most one batch per BatchInterval (the
// first change after a quiet spell goes at once): one UDP packet when the
// batch fits MaxPacket, else one TCP message. Direct sends reach every member
// in one hop with one copy each, where memberlist's broadcast queue would
// pick random targets per gossip round and need several rounds and copies.
//
// A periodic re-announce that changes nothing sends nothing: a remote peer
// lives as long as its origin is alive in memberlist, and is dropped when
// memberlist declares the origin dead or left. Batches carry a per-origin incarnation and sequence number; a
// receiver that sees a gap, a new incarnation, or a digest (a count and hash
// of the origin's peer set, sent after a burst and in memberlist's push-pull)
// that differs from its copy pulls the origin's full set from the origin
// alone.
//
// When a client moves between nodes, two origins claim the same peer; the
// later claim wins, ordered by a hybrid logical clock (a node's claim is later
// than every claim it has seen), so every node settles on the same owner. The
// node that held the client's ratio counters hands them to the new owner over
// TCP (announce.Tracker.PutRemotePeer and ImportPeerCounters).
//
// Gossip is encrypted and authenticated with a key derived from the cluster
// key: a node without it can neither join nor read.
package gossip

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/model"
)

// MaxMetaBytes is memberlist's cap on node metadata.
const MaxMetaBytes = memberlist.MetaMaxSize

// Meta is what a node tells the others about itself in memberlist.
type Meta struct {
	NodeID      string `json:"id"`
	ClusterAddr string `json:"cluster,omitempty"`
	SiteURL     string `json:"site,omitempty"`
	AnnounceURL string `json:"announce,omitempty"`
	Institution string `json:"inst,omitempty"`
	Version     string `json:"v,omitempty"`
	// Status is refreshed every Config.StatusInterval.
	Status Status `json:"st"`
}

// Status is a node's live state as it reports it in its metadata, for the
// admin Cluster page.
type Status struct {
	RaftState string `json:"raft,omitempty"` // Leader, Follower, Candidate, Shutdown
	Applied   uint64 `json:"applied,omitempty"`
	Peers     int    `json:"peers,omitempty"` // peers held, local and gossiped
}

// Peers is the local tracker's peer table as gossip needs it;
// TrackerPeers adapts an announce.Tracker.
type Peers interface {
	// SetObserver sets the function called for every change of a local
	// peer; it must not block.
	SetObserver(fn func(announce.PeerEvent))
	// LocalPeers calls fn for every address of every local peer.
	LocalPeers(fn func(swarm model.InfoHash, p announce.Peer, userID uint64) bool)
	// PutRemotePeer records that origin serves p and returns the counters
	// to hand to origin when this node held the peer's live counters.
	PutRemotePeer(origin string, swarm model.InfoHash, p announce.Peer) (announce.PeerCounters, bool)
	// RemoveRemote forgets peer id of swarm if origin holds it.
	RemoveRemote(origin string, swarm model.InfoHash, id [20]byte)
	// DropOrigin forgets every peer held for origin.
	DropOrigin(origin string) int
	// ImportPeerCounters applies counters another node handed off.
	ImportPeerCounters(pc announce.PeerCounters) bool
}

// TrackerPeers adapts t to Peers.
func TrackerPeers(t *announce.Tracker) Peers { return trackerPeers{t} }

type trackerPeers struct{ t *announce.Tracker }

func (p trackerPeers) SetObserver(fn func(announce.PeerEvent)) { p.t.Peers().SetObserver(fn) }
func (p trackerPeers) LocalPeers(fn func(model.InfoHash, announce.Peer, uint64) bool) {
	p.t.Peers().LocalPeers(fn)
}
func (p trackerPeers) PutRemotePeer(origin string, swarm model.InfoHash, peer announce.Peer) (announce.PeerCounters, bool) {
	return p.t.PutRemotePeer(origin, swarm, peer)
}
func (p trackerPeers) RemoveRemote(origin string, swarm model.InfoHash, id [20]byte) {
	p.t.Peers().RemoveRemote(origin, swarm, id)
}
func (p trackerPeers) DropOrigin(origin string) int { return p.t.Peers().DropOrigin(origin) }
func (p trackerPeers) ImportPeerCounters(pc announce.PeerCounters) bool {
	return p.t.ImportPeerCounters(pc)
}

// Config sets up a Gossip. Zero durations get the defaults of withDefaults.
type Config struct {
	// NodeID is the memberlist node name and the origin of this node's
	// peers: the stable raft node id.
	NodeID string
	// BindAddr is host:port for gossip, TCP and UDP on the same port; port 0
	// lets the kernel choose (read it back with Addr).
	BindAddr string
	// AdvertiseAddr is host:port other nodes reach BindAddr at; required
	// when binding 0.0.0.0 on a host whose private address is not the
	// right one. A port of 0 means the bound port.
	AdvertiseAddr string
	// ClusterKey is the cluster's shared key; gossip is encrypted with
	// DeriveKey(ClusterKey).
	ClusterKey []byte
	// AcceptKeys are further cluster keys whose gossip this node decrypts,
	// while the cluster key is rotated; it encrypts with ClusterKey's.
	AcceptKeys [][]byte
	// Meta is this node's metadata; it must encode to MaxMetaBytes or less.
	Meta Meta
	// Peers is the local tracker's peer table. Required.
	Peers Peers
	// Logger receives gossip and memberlist logs.
	Logger *slog.Logger

	// BatchInterval is how often local peer changes are sent. Default 50ms.
	BatchInterval time.Duration
	// MaxPacket is the largest batch sent over UDP; larger ones go over
	// TCP. Default 1200 bytes (a 1400-byte packet after encryption and
	// memberlist framing).
	MaxPacket int
	// DigestDelay is how long after its last batch a node sends its digest,
	// so a lost final batch is noticed. Default 500ms.
	DigestDelay time.Duration
	// GapTimeout is how long a receiver waits for a missing batch before it
	// pulls the origin's full set. Default 300ms.
	GapTimeout time.Duration
	// SyncTimeout is how long a full-set request may stay unanswered before
	// it is sent again. Default 5s.
	SyncTimeout time.Duration

	// Memberlist failure detection; defaults as memberlist's LAN profile
	// except PushPullInterval (10s) and GossipInterval (100ms).
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int
	PushPullInterval time.Duration
	GossipInterval   time.Duration
	TCPTimeout       time.Duration
	// DeadNodeReclaimTime lets a node name come back at a new address this
	// long after it died. Default 10s.
	DeadNodeReclaimTime time.Duration

	// Status, when set, is called to fill Meta.Status; the node's metadata
	// is sent again every StatusInterval (default 5s).
	Status         func() Status
	StatusInterval time.Duration

	// WrapTransport, when set, wraps memberlist's network transport; tests
	// use it to inject partitions and count bytes.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

func (c *Config) withDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BatchInterval, 50*time.Millisecond)
	def(&c.DigestDelay, 500*time.Millisecond)
	def(&c.GapTimeout, 300*time.Millisecond)
	def(&c.SyncTimeout, 5*time.Second)
	def(&c.ProbeInterval, time.Second)
	def(&c.ProbeTimeout, 500*time.Millisecond)
	def(&c.PushPullInterval, 10*time.Second)
	def(&c.GossipInterval, 100*time.Millisecond)
	def(&c.TCPTimeout, 5*time.Second)
	def(&c.DeadNodeReclaimTime, 10*time.Second)
	def(&c.StatusInterval, 5*time.Second)
	if c.SuspicionMult <= 0 {
		c.SuspicionMult = 4
	}
	if c.MaxPacket <= 0 {
		c.MaxPacket = 1200
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// DeriveKey returns the 32-byte gossip encryption key (AES-256-GCM in
// memberlist) for a cluster key, so a leaked gossip key does not expose the
// cluster key.
func DeriveKey(clusterKey []byte) []byte {
	m := hmac.New(sha256.New, clusterKey)
	m.Write([]byte("seedbank gossip key v1"))
	return m.Sum(nil)
}

// State is a member's liveness as this node last heard.
type State int

// Member states.
const (
	StateAlive State = iota + 1
	StateDead
	StateLeft
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

// Member is one node as memberlist reports it.
type Member struct {
	Meta
	// Addr is the node's gossip address, host:port.
	Addr  string
	State State
	// Since is when this node saw State begin.
	Since time.Time
	// Updated is when this node last heard the member's metadata (its
	// status is refreshed every StatusInterval): its last contact.
	Updated time.Time

	leaving bool // it said it is leaving
	// node is a copy of memberlist's record, taken in its event callback
	// (under memberlist's lock): memberlist rewrites its own records in
	// place, so sends use this copy, never memberlist's pointer.
	node memberlist.Node
}

// Stats are counters of gossip traffic since New.
type Stats struct {
	BatchesSent    uint64 // delta batches, counted once per batch
	BatchBytes     uint64 // encoded delta bytes, summed over receivers
	TCPBatches     uint64 // batches too big for UDP, counted per receiver
	DigestsSent    uint64 // tail digests, counted once
	FullSent       uint64 // full sets sent to requesters
	FullReceived   uint64 // full sets applied
	SyncRequests   uint64 // full sets asked for
	HandoffsSent   uint64 // counter handoffs delivered
	HandoffsFailed uint64 // counter handoffs given up on
	HandoffsIn     uint64 // counter handoffs applied
	BadMessages    uint64 // messages that did not decode
	OffersSent     uint64 // restored counters offered, counted per receiver
	OffersTaken    uint64 // offered counters this node counted
	OffersReleased uint64 // own restored counters another node took
}

type stats struct {
	batchesSent, batchBytes, tcpBatches, digestsSent, fullSent, fullReceived,
	syncRequests, handoffsSent, handoffsFailed, handoffsIn, badMessages atomic.Uint64
	offersSent, offersTaken, offersReleased atomic.Uint64
}

// Gossip is one node's membership and peer replication. Its methods are
// safe for concurrent use.
type Gossip struct {
	cfg   Config
	log   *slog.Logger
	ml    *memberlist.Memberlist
	peers Peers
	inc   uint64 // this run's incarnation of the local peer set: its start time
	meta  []byte

	evMu   sync.Mutex
	events []announce.PeerEvent
	evWake chan struct{} // a local peer changed
	// lone: no other node is a member, so the local view is not kept (a
	// node on its own spent about 1% of its CPU at peak keeping a view
	// that nobody read, and its memory held every local peer twice), and
	// observe drops events. The first member to appear gets a view rebuilt
	// from the tracker's table (replica.leaveLone). Written by the replica
	// loop only.
	lone atomic.Bool

	inMu  sync.Mutex
	inbox []inItem
	wake  chan struct{}

	memMu   sync.RWMutex
	members map[string]*Member

	digest atomic.Pointer[[]byte] // own digest message, for push-pull
	stats  stats

	stop     chan struct{}
	loopDone chan struct{}
	sendWG   sync.WaitGroup
	sendSem  chan struct{}
	closing  sync.Once

	r replica // owned by the loop goroutine

	addr string // advertised gossip address, set in New
}

// inItem is work for the loop: a received message or a membership change.
type inItem struct {
	msg        []byte // a copy of the received message, or nil
	joined     string // a node that became alive
	left       string // a node that died or left
	syncFailed string // a full-set request that could not be sent
}

// New starts memberlist on cfg.BindAddr and the replication loop. It does not
// join anyone: call Join.
func New(cfg Config) (*Gossip, error) {
	cfg.withDefaults()
	if cfg.NodeID == "" || cfg.Peers == nil {
		return nil, errors.New("gossip: NodeID and Peers are required")
	}
	if len(cfg.NodeID) > 255 {
		return nil, errors.New("gossip: node id longer than 255 bytes")
	}
	if len(cfg.ClusterKey) < 16 {
		return nil, errors.New("gossip: cluster key must be at least 16 bytes")
	}
	cfg.Meta.NodeID = cfg.NodeID
	meta, err := json.Marshal(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("gossip: encode meta: %w", err)
	}
	if len(meta) > MaxMetaBytes {
		return nil, fmt.Errorf("gossip: node metadata is %d bytes, over memberlist's %d (shorten the URLs or institution)", len(meta), MaxMetaBytes)
	}
	g := &Gossip{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "gossip"),
		peers:    cfg.Peers,
		inc:      uint64(time.Now().UnixNano()),
		meta:     meta,
		wake:     make(chan struct{}, 1),
		evWake:   make(chan struct{}, 1),
		members:  map[string]*Member{},
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		sendSem:  make(chan struct{}, 8),
	}
	g.r.init(g)

	mc, err := g.memberlistConfig()
	if err != nil {
		return nil, err
	}
	g.ml, err = memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown()
		}
		return nil, fmt.Errorf("gossip: start memberlist on %s: %w", cfg.BindAddr, err)
	}
	// Read once, before anything updates the local node: memberlist hands
	// out its own record, which UpdateNode rewrites in place.
	ln := g.ml.LocalNode()
	g.addr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	g.publishDigest()
	// Peers that announced before the observer was set are read from the
	// table when the first member appears (replica.leaveLone).
	g.peers.SetObserver(g.observe)
	go g.loop()
	if cfg.Status != nil {
		g.sendWG.Add(1)
		go g.refreshStatus()
	}
	g.log.Info("gossip started", "addr", g.Addr())
	return g, nil
}

func (g *Gossip) memberlistConfig() (*memberlist.Config, error) {
	cfg := &g.cfg
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind port %q: %w", portStr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.SecretKey = DeriveKey(cfg.ClusterKey)
	if len(cfg.AcceptKeys) > 0 {
		var others [][]byte
		for _, k := range cfg.AcceptKeys {
			others = append(others, DeriveKey(k))
		}
		ring, err := memberlist.NewKeyring(others, mc.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: %w", err)
		}
		mc.Keyring = ring
	}
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Label = "seedbank"
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.PushPullInterval = cfg.PushPullInterval
	mc.GossipInterval = cfg.GossipInterval
	mc.TCPTimeout = cfg.TCPTimeout
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.Delegate = delegate{g}
	mc.Events = events{g}
	mc.Logger = log.New(mlWriter{g.log.With("component", "memberlist")}, "", 0)

	// Build the transport here so a kernel-chosen port is known and a test
	// can wrap it. TCP and UDP must get the same port: retry on a clash.
	var nt *memberlist.NetTransport
	for attempt := 0; ; attempt++ {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host}, BindPort: port, Logger: mc.Logger,
		})
		if err == nil || port != 0 || attempt == 10 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: listen on %s: %w", cfg.BindAddr, err)
	}
	mc.BindPort = nt.GetAutoBindPort()
	mc.AdvertisePort = mc.BindPort
	if cfg.AdvertiseAddr != "" {
		ah, ap, err := net.SplitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			_ = nt.Shutdown()
			return nil, fmt.Errorf("gossip: advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		mc.AdvertiseAddr = ah
		if p, _ := strconv.Atoi(ap); p != 0 {
			mc.AdvertisePort = p
		}
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		_ = nt.Shutdown()
		return nil, fmt.Errorf("gossip: binding %s needs an advertise address other nodes can reach", cfg.BindAddr)
	}
	var tr memberlist.NodeAwareTransport = nt
	if cfg.WrapTransport != nil {
		tr = cfg.WrapTransport(nt)
	}
	mc.Transport = tr
	return mc, nil
}

// Addr returns the advertised gossip address, host:port.
func (g *Gossip) Addr() string { return g.addr }

// Join contacts the nodes at addrs (gossip addresses) and merges their
// membership. It returns how many it reached; an error only if none.
func (g *Gossip) Join(addrs []string) (int, error) {
	n, err := g.ml.Join(addrs)
	if n == 0 && err != nil {
		return 0, fmt.Errorf("gossip: join %s: %w", strings.Join(addrs, ","), err)
	}
	return n, nil
}

// Member returns what this node knows of node id.
func (g *Gossip) Member(id string) (Member, bool) {
	g.memMu.RLock()
	defer g.memMu.RUnlock()
	m, ok := g.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Members returns every node this node has heard of, alive or not, until
// Forget.
func (g *Gossip) Members() []Member {
	g.memMu.RLock()
	defer g.memMu.RUnlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	return out
}

// Forget drops a dead or departed node from Members (after it was removed
// from the cluster). An alive node is kept.
func (g *Gossip) Forget(id string) {
	g.memMu.Lock()
	defer g.memMu.Unlock()
	if m, ok := g.members[id]; ok && m.State != StateAlive {
		delete(g.members, id)
	}
}

// NumAlive returns the number of alive members, this node included.
func (g *Gossip) NumAlive() int { return g.ml.NumMembers() }

// Stats returns the traffic counters.
func (g *Gossip) Stats() Stats {
	s := &g.stats
	return Stats{
		BatchesSent: s.batchesSent.Load(), BatchBytes: s.batchBytes.Load(), TCPBatches: s.tcpBatches.Load(),
		DigestsSent: s.digestsSent.Load(), FullSent: s.fullSent.Load(), FullReceived: s.fullReceived.Load(),
		SyncRequests: s.syncRequests.Load(), HandoffsSent: s.handoffsSent.Load(), HandoffsFailed: s.handoffsFailed.Load(),
		HandoffsIn: s.handoffsIn.Load(), BadMessages: s.badMessages.Load(),
		OffersSent: s.offersSent.Load(), OffersTaken: s.offersTaken.Load(), OffersReleased: s.offersReleased.Load(),
	}
}

// Leave tells the other nodes this node is leaving, so they drop its peers
// at once instead of after failure detection, and then closes.
func (g *Gossip) Leave(timeout time.Duration) error {
	var err error
	select {
	case <-g.stop:
		return nil
	default:
	}
	// memberlist tells a leave from a failure only by the dead message's
	// sender, which the Node its events get does not carry (nodeState's
	// State field shadows Node's): say it, over TCP and before memberlist's
	// message, so a lost UDP packet cannot make the others report a node
	// that left as dead.
	deadline := time.Now().Add(timeout)
	notice := appendHeader(nil, header{typ: msgLeave, origin: g.cfg.NodeID})
	var told sync.WaitGroup
	for _, m := range g.aliveOthers() {
		told.Add(1)
		g.sendReliable(m.Name, notice, 2, func(error) { told.Done() })
	}
	allTold := make(chan struct{})
	go func() { told.Wait(); close(allTold) }()
	select {
	case <-allTold:
	case <-time.After(timeout / 2):
		g.log.Warn("leave notice not acknowledged by every member in time; they may see this node as failed")
	}
	// memberlist waits forever when given no time left.
	if e := g.ml.Leave(max(time.Until(deadline), 100*time.Millisecond)); e != nil {
		err = fmt.Errorf("gossip: leave: %w", e)
	}
	return errors.Join(err, g.Close())
}

// Close stops gossip without leaving: the others see this node fail.
func (g *Gossip) Close() error {
	var err error
	g.closing.Do(func() {
		g.peers.SetObserver(nil)
		close(g.stop)
		<-g.loopDone
		if e := g.ml.Shutdown(); e != nil {
			err = fmt.Errorf("gossip: shutdown: %w", e)
		}
		g.sendWG.Wait()
	})
	return err
}

// observe is the PeerStore observer: it runs under a shard lock on the
// announce path, so it only appends.
func (g *Gossip) observe(e announce.PeerEvent) {
	if g.lone.Load() {
		return
	}
	g.evMu.Lock()
	g.events = append(g.events, e)
	g.evMu.Unlock()
	select {
	case g.evWake <- struct{}{}:
	default:
	}
}

func (g *Gossip) enqueue(it inItem) {
	g.inMu.Lock()
	g.inbox = append(g.inbox, it)
	g.inMu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// delegate connects memberlist to the replica. Its methods must not block.
type delegate struct{ g *Gossip }

func (d delegate) NodeMeta(limit int) []byte {
	if f := d.g.cfg.Status; f != nil {
		m := d.g.cfg.Meta
		m.Status = f()
		if b, err := json.Marshal(m); err == nil && len(b) <= limit {
			return b
		}
	}
	if len(d.g.meta) > limit {
		return nil
	}
	return d.g.meta
}

// refreshStatus sends this node's metadata, with its current Status, every
// StatusInterval.
func (g *Gossip) refreshStatus() {
	defer g.sendWG.Done()
	t := time.NewTicker(g.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			if err := g.ml.UpdateNode(g.cfg.TCPTimeout); err != nil {
				g.log.Debug("refresh node status", "err", err)
			}
		}
	}
}

func (d delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	if b[0] == msgLeave {
		// Now, not in the replica loop: memberlist's dead message for the
		// sender may come next and must find it leaving.
		if m, err := decode(b); err == nil && m.origin != d.g.cfg.NodeID {
			d.g.setLeaving(m.origin)
		}
	}
	d.g.enqueue(inItem{msg: append([]byte(nil), b...)})
}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends this node's digest in push-pull, so the other side can
// tell whether its copy of this node's peers is current.
func (d delegate) LocalState(join bool) []byte {
	if p := d.g.digest.Load(); p != nil {
		return *p
	}
	return nil
}

func (d delegate) MergeRemoteState(buf []byte, join bool) { d.NotifyMsg(buf) }

// events tracks membership. memberlist calls it with its locks held.
type events struct{ g *Gossip }

func (e events) NotifyJoin(n *memberlist.Node) {
	e.g.setMember(n, StateAlive)
	if n.Name != e.g.cfg.NodeID {
		e.g.enqueue(inItem{joined: n.Name})
	}
}

// NotifyLeave marks n dead; setMember makes that left when n said it was
// leaving (n.State is never memberlist.StateLeft: see Leave).
func (e events) NotifyLeave(n *memberlist.Node) {
	e.g.setMember(n, StateDead)
	if n.Name != e.g.cfg.NodeID {
		e.g.enqueue(inItem{left: n.Name})
	}
}

func (e events) NotifyUpdate(n *memberlist.Node) { e.g.setMember(n, StateAlive) }

func (g *Gossip) setMember(n *memberlist.Node, st State) {
	m := Member{Addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), State: st, Since: time.Now(), Updated: time.Now()}
	m.node = memberlist.Node{Name: n.Name, Addr: append(net.IP(nil), n.Addr...), Port: n.Port}
	if err := json.Unmarshal(n.Meta, &m.Meta); err != nil || m.NodeID == "" {
		m.NodeID = n.Name
	}
	g.memMu.Lock()
	defer g.memMu.Unlock()
	old, known := g.members[n.Name]
	if known {
		if st == StateDead && old.leaving {
			st, m.State = StateLeft, StateLeft
		}
		if old.State == st {
			m.Since = old.Since
		}
		if st != StateAlive {
			m.Updated = old.Updated // no contact since
		}
		m.leaving = old.leaving && st != StateAlive
	}
	g.members[n.Name] = &m
	if n.Name != g.cfg.NodeID && (!known || old.State != st) {
		g.log.Info("member "+st.String(), "member", n.Name, "addr", m.Addr)
	}
}

// setLeaving records that node id announced it is leaving.
func (g *Gossip) setLeaving(id string) {
	g.memMu.Lock()
	defer g.memMu.Unlock()
	m, ok := g.members[id]
	if !ok {
		return
	}
	m.leaving = true
	if m.State == StateDead {
		m.State = StateLeft
	}
}

func (g *Gossip) isAlive(id string) bool {
	g.memMu.RLock()
	defer g.memMu.RUnlock()
	m, ok := g.members[id]
	return ok && m.State == StateAlive
}

// node returns a copy of the memberlist node named id if it is alive.
func (g *Gossip) node(id string) *memberlist.Node {
	g.memMu.RLock()
	defer g.memMu.RUnlock()
	m, ok := g.members[id]
	if !ok || m.State != StateAlive {
		return nil
	}
	n := m.node
	return &n
}

// aliveOthers returns copies of the alive members' nodes, this one excluded.
func (g *Gossip) aliveOthers() []*memberlist.Node {
	g.memMu.RLock()
	defer g.memMu.RUnlock()
	out := make([]*memberlist.Node, 0, len(g.members))
	for id, m := range g.members {
		if id == g.cfg.NodeID || m.State != StateAlive {
			continue
		}
		n := m.node
		out = append(out, &n)
	}
	return out
}

// sendAll sends msg to every alive member but this node: over UDP when it
// fits MaxPacket, else over TCP in the background. It returns the number
// of receivers.
func (g *Gossip) sendAll(msg []byte) int {
	n := 0
	for _, m := range g.aliveOthers() {
		n++
		if len(msg) <= g.cfg.MaxPacket {
			if err := g.ml.SendBestEffort(m, msg); err != nil {
				g.log.Debug("send batch", "to", m.Name, "err", err)
			}
			continue
		}
		g.stats.tcpBatches.Add(1)
		g.sendReliable(m.Name, msg, 1)
	}
	return n
}

// sendReliable sends msg to node id over TCP in the background, trying up
// to attempts times while id is alive. done, when set, gets the outcome.
func (g *Gossip) sendReliable(id string, msg []byte, attempts int, done ...func(error)) {
	g.sendWG.Add(1)
	go func() {
		defer g.sendWG.Done()
		select {
		case g.sendSem <- struct{}{}:
		case <-g.stop:
			return
		}
		defer func() { <-g.sendSem }()
		var err error
		for i := 0; i < attempts; i++ {
			if i > 0 {
				select {
				case <-g.stop:
					return
				case <-time.After(time.Duration(i) * 200 * time.Millisecond):
				}
			}
			n := g.node(id)
			if n == nil {
				err = fmt.Errorf("gossip: %s is not alive", id)
				continue
			}
			if err = g.ml.SendReliable(n, msg); err == nil {
				break
			}
		}
		if err != nil {
			g.log.Debug("reliable send failed", "to", id, "err", err)
		}
		for _, f := range done {
			f(err)
		}
	}()
}

// mlWriter routes memberlist's log lines into slog at their level.
type mlWriter struct{ log *slog.Logger }

func (w mlWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if strings.HasPrefix(msg, prefix) {
			level = l
			msg = strings.TrimSpace(strings.TrimPrefix(msg, prefix))
			break
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}

var _ io.Writer = mlWriter{}
