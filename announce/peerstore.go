package announce

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// numPeerShards is the number of independently locked parts of a PeerStore.
// The shard of a swarm is the first byte of its hash, which is uniformly
// distributed for SHA-1 and SHA-256 hashes.
const numPeerShards = 256

// Peer is one BitTorrent client in a swarm, as the gossip layer and the
// observers of a PeerStore see it: one address per value. A dual-stack client
// that announces over IPv4 and IPv6 with the same peer_id is one peer with two
// addresses; it shows up as two Peer values with the same ID.
type Peer struct {
	ID     [20]byte
	Addr   netip.AddrPort
	Seeder bool
}

// PeerEventKind says what happened to a local peer.
type PeerEventKind uint8

const (
	// PeerPut means a local peer is new, has a new or changed address, has
	// become a seeder, or was taken over from another node. It is an upsert
	// keyed by (Swarm, Peer.ID).
	PeerPut PeerEventKind = iota + 1
	// PeerRemoved means a local peer stopped or expired.
	PeerRemoved
)

// String names the kind for logs.
func (k PeerEventKind) String() string {
	switch k {
	case PeerPut:
		return "put"
	case PeerRemoved:
		return "removed"
	}
	return "unknown"
}

// PeerEvent is a change of the local part of a swarm, for the gossip layer.
// A periodic re-announce that changes nothing produces no event.
type PeerEvent struct {
	Kind  PeerEventKind
	Swarm model.InfoHash
	Peer  Peer
	// UserID is the owner of the passkey the peer announced with (local peers
	// only); the gossip layer uses it to look up the peer's counters.
	UserID uint64
}

// A peerRec's meta field: the origin index in the low 14 bits, flags above.
const (
	originMask uint16 = 1<<14 - 1
	flagHas4   uint16 = 1 << 14
	flagSeeder uint16 = 1 << 15
)

// localOrigin is the origin index of peers that announced to this node.
const localOrigin uint16 = 0

// peerRec is the stored form of one peer: 48 bytes, no pointers. lastSeen
// is seconds since the store's epoch. counters is where the accountant kept
// the peer's counters at its last announce here (a hint the accountant
// checks, so a stale one is harmless). An IPv6 address, rarer and 18 bytes
// long, is kept beside the records (swarm.v6): v6 is 1 + its position there,
// 0 when the peer has none.
type peerRec struct {
	user     uint64
	id       [20]byte
	ip4      [4]byte
	port4    uint16
	meta     uint16
	lastSeen uint32
	counters int32
	v6       int32
}

func (r *peerRec) seeder() bool   { return r.meta&flagSeeder != 0 }
func (r *peerRec) has4() bool     { return r.meta&flagHas4 != 0 }
func (r *peerRec) has6() bool     { return r.v6 != 0 }
func (r *peerRec) origin() uint16 { return r.meta & originMask }

func (r *peerRec) setOrigin(o uint16) { r.meta = r.meta&^originMask | o&originMask }

func (r *peerRec) addr4() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(r.ip4), r.port4)
}

// peer returns the public form of r with the address a.
func (r *peerRec) peer(a netip.AddrPort) Peer {
	return Peer{ID: r.id, Addr: a, Seeder: r.seeder()}
}

// peerAddr6 is the IPv6 address of the peer at position owner of a swarm.
type peerAddr6 struct {
	ip    [16]byte
	port  uint16
	owner int32
}

// smallSwarm is the most peers a swarm keeps without a peer_id index.
// Finding a peer in a small swarm scans its records, which sit next to each
// other in memory: a few cache lines read in order, cheaper than a map
// lookup and its cache misses, and no map per swarm (most swarms are
// small). A swarm that grows past smallSwarm gets an index map; it drops
// the map when it shrinks to smallSwarm/2.
const smallSwarm = 32

// swarm is the peers of one torrent. peers is dense so random selection is
// O(numwant); index, when not nil, maps a peer_id to its position in peers;
// v6 holds the IPv6 addresses of the peers that have one.
type swarm struct {
	seeders  int32
	leechers int32
	snatches uint32
	// seen is the seeder count as ChangedSwarms last reported it, or -1
	// while the swarm waits in its shard's changed list.
	seen int32
	// regGen and totalSize: the torrent's size as the registry answered at
	// generation regGen (0: never looked up here).
	regGen    uint64
	totalSize int64
	peers     []peerRec
	index     map[[20]byte]int32
	v6        []peerAddr6
}

// addr6 returns the IPv6 address of r, a peer of sw that has one.
func (sw *swarm) addr6(r *peerRec) netip.AddrPort {
	a := &sw.v6[r.v6-1]
	return netip.AddrPortFrom(netip.AddrFrom16(a.ip), a.port)
}

// anyAddr returns the IPv4 address of r if it has one, else its IPv6 address.
func (sw *swarm) anyAddr(r *peerRec) netip.AddrPort {
	if r.has4() {
		return r.addr4()
	}
	return sw.addr6(r)
}

// setAddr stores a as the address of its family of the peer at i and
// reports whether it changed.
func (sw *swarm) setAddr(i int, a netip.AddrPort) bool {
	r := &sw.peers[i]
	ip := a.Addr().Unmap()
	if ip.Is4() {
		v := ip.As4()
		if r.has4() && r.ip4 == v && r.port4 == a.Port() {
			return false
		}
		r.ip4, r.port4 = v, a.Port()
		r.meta |= flagHas4
		return true
	}
	v := ip.As16()
	if r.v6 == 0 {
		sw.v6 = append(sw.v6, peerAddr6{ip: v, port: a.Port(), owner: int32(i)})
		r.v6 = int32(len(sw.v6))
		return true
	}
	x := &sw.v6[r.v6-1]
	if x.ip == v && x.port == a.Port() {
		return false
	}
	x.ip, x.port = v, a.Port()
	return true
}

// dropAddr6 removes the IPv6 address at j by moving the last one into its
// place.
func (sw *swarm) dropAddr6(j int) {
	last := len(sw.v6) - 1
	if j != last {
		sw.v6[j] = sw.v6[last]
		sw.peers[sw.v6[j].owner].v6 = int32(j + 1)
	}
	if last == 0 {
		sw.v6 = nil
		return
	}
	sw.v6 = sw.v6[:last]
}

// find returns the position of peer id in sw.peers, or -1.
func (sw *swarm) find(id [20]byte) int {
	if sw.index != nil {
		if i, ok := sw.index[id]; ok {
			return int(i)
		}
		return -1
	}
	// Clients put their name first in peer_id ("-qB4650-"), so the tail
	// tells peers apart: compare it first.
	tail := binary.LittleEndian.Uint64(id[12:])
	for i := range sw.peers {
		r := &sw.peers[i]
		if binary.LittleEndian.Uint64(r.id[12:]) == tail && r.id == id {
			return i
		}
	}
	return -1
}

func (sw *swarm) add(r peerRec) {
	n := len(sw.peers)
	if n == cap(sw.peers) {
		// Grow by a quarter, not double: a swarm's records are most of the
		// store's memory, and a swarm grows one peer at a time.
		grown := make([]peerRec, n, n+max(n/4, 2))
		copy(grown, sw.peers)
		sw.peers = grown
	}
	sw.peers = append(sw.peers, r)
	switch {
	case sw.index != nil:
		sw.index[r.id] = int32(n)
	case n+1 > smallSwarm:
		sw.index = make(map[[20]byte]int32, n+1)
		for i := range sw.peers {
			sw.index[sw.peers[i].id] = int32(i)
		}
	}
	if r.seeder() {
		sw.seeders++
	} else {
		sw.leechers++
	}
}

// removeAt deletes the peer at i by moving the last peer into its place.
// It returns the record and the peer's address (IPv4 if it had one).
func (sw *swarm) removeAt(i int) (peerRec, netip.AddrPort) {
	r := sw.peers[i]
	addr := sw.anyAddr(&r)
	if r.v6 != 0 {
		sw.dropAddr6(int(r.v6 - 1))
		r.v6 = 0
	}
	if r.seeder() {
		sw.seeders--
	} else {
		sw.leechers--
	}
	last := len(sw.peers) - 1
	if i != last {
		sw.peers[i] = sw.peers[last]
		if m := &sw.peers[i]; m.v6 != 0 {
			sw.v6[m.v6-1].owner = int32(i)
		}
		if sw.index != nil {
			sw.index[sw.peers[i].id] = int32(i)
		}
	}
	sw.peers[last] = peerRec{}
	sw.peers = sw.peers[:last]
	if sw.index != nil {
		delete(sw.index, r.id)
		if last <= smallSwarm/2 {
			sw.index = nil
		}
	}
	if c := cap(sw.peers); c > 8 && last < c/4 {
		sw.peers = append(make([]peerRec, 0, last+max(last/4, 2)), sw.peers...)
	}
	return r, addr
}

// setSeeder changes the seeder flag of the peer at i, keeping the counts.
func (sw *swarm) setSeeder(i int, seeder bool) bool {
	r := &sw.peers[i]
	if r.seeder() == seeder {
		return false
	}
	if seeder {
		r.meta |= flagSeeder
		sw.seeders++
		sw.leechers--
	} else {
		r.meta &^= flagSeeder
		sw.seeders--
		sw.leechers++
	}
	return true
}

func (sw *swarm) empty() bool { return len(sw.peers) == 0 && sw.snatches == 0 }

// Family filters for peer selection.
type family uint8

const (
	family4   family = 1
	family6   family = 2
	familyAny        = family4 | family6
)

// selectPeers appends up to n peers other than self, in random order, to dst.
// A seeder gets no seeders. A dual-stack peer counts once towards n and is
// appended once per wanted family.
func (sw *swarm) selectPeers(dst []Peer, self [20]byte, seeder bool, fam family, n int) []Peer {
	total := len(sw.peers)
	if n <= 0 || total == 0 {
		return dst
	}
	pos := rand.IntN(total)
	stride := pickStride(total)
	for i, got := 0, 0; i < total && got < n; i++ {
		r := &sw.peers[pos]
		if pos += stride; pos >= total {
			pos -= total
		}
		if r.id == self || (seeder && r.seeder()) {
			continue
		}
		took := false
		if fam&family4 != 0 && r.has4() {
			dst = append(dst, r.peer(r.addr4()))
			took = true
		}
		if fam&family6 != 0 && r.has6() {
			dst = append(dst, r.peer(sw.addr6(r)))
			took = true
		}
		if took {
			got++
		}
	}
	return dst
}

// pickStride returns a random step coprime with n, so that walking with it
// visits every position once.
func pickStride(n int) int {
	if n <= 2 {
		return 1
	}
	for range 4 {
		s := 1 + rand.IntN(n-1)
		if gcd(s, n) == 1 {
			return s
		}
	}
	return 1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// peerShard is one independently locked part of a PeerStore. A swarm's
// header (counts and where its records are) sits in its slot of the swarm
// table, so finding it costs no pointer to follow; the records live in the
// header's arrays, which hold no pointers. A header read with get is a
// copy: whoever changes the counts or an array (not only its elements)
// stores it back with put.
type peerShard struct {
	mu      sync.Mutex
	swarms  swarmTable
	changed []model.InfoHash // swarms whose seeder count moved (see ChangedSwarms)
	_       [24]byte         // keep shards on separate cache lines
}

// ChangedSwarms appends to dst the swarms whose seeder count changed since
// the last call (a swarm at most once per call, unless it was emptied and
// came back), for the search index's counter refresh.
func (s *PeerStore) ChangedSwarms(dst []model.InfoHash) []model.InfoHash {
	// Every shard, often thousands of swarms (17 ms on one busy core in a
	// trace): step aside between shards.
	pc := pace.New(0)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, h := range sh.changed {
			if sw := sh.swarms.ref(&h); sw != nil && sw.seen < 0 {
				sw.seen = sw.seeders
			}
		}
		dst = append(dst, sh.changed...)
		n := len(sh.changed)
		if cap(sh.changed) > 1024 {
			sh.changed = nil // after a burst, do not keep its peak
		} else {
			sh.changed = sh.changed[:0]
		}
		sh.mu.Unlock()
		pc.StepN(n)
	}
	return dst
}

// get returns a copy of swarm h's header, or nil (for tests: it allocates).
func (sh *peerShard) get(h model.InfoHash) *swarm {
	if sw, ok := sh.swarms.get(&h); ok {
		return &sw
	}
	return nil
}

// put stores sw as swarm h's header, or removes the swarm when it has no
// peers and no snatches.
func (sh *peerShard) put(h model.InfoHash, sw *swarm) {
	if sw.seen >= 0 && sw.seeders != sw.seen {
		sw.seen = -1
		sh.changed = append(sh.changed, h)
	}
	if sw.empty() {
		sh.swarms.del(&h)
		return
	}
	sh.swarms.set(&h, sw)
}

// PeerStore holds the live peers of every swarm in memory, local ones (that
// announced to this node) and remote ones (learned from other nodes through
// gossip, tagged with their origin node). Swarms are keyed by
// model.TorrentRef.ID, so both hashes of a hybrid torrent are one swarm, and
// peers by (swarm, peer_id), never by address.
//
// All methods are safe for concurrent use. The observer set with SetObserver
// is called for local changes only, with the swarm's shard locked, so the
// events of one swarm arrive in the order they happened.
type PeerStore struct {
	shards    [numPeerShards]peerShard
	epoch     time.Time
	ttl       time.Duration
	remoteTTL time.Duration
	clock     func() time.Time // time.Now; tests replace it
	observer  atomic.Pointer[func(PeerEvent)]

	originsMu   sync.Mutex
	origins     map[string]uint16
	originNames []string
}

// NewPeerStore returns an empty store. Local peers that have not announced
// for ttl are removed by Sweep; remote peers are removed by Sweep after
// remoteTTL without a PutRemote, or never when remoteTTL is 0 (the gossip layer
// then removes them with RemoveRemote and DropOrigin).
func NewPeerStore(ttl, remoteTTL time.Duration) *PeerStore {
	s := &PeerStore{
		epoch:       time.Now().Add(-time.Second),
		ttl:         ttl,
		remoteTTL:   remoteTTL,
		clock:       time.Now,
		origins:     map[string]uint16{},
		originNames: []string{""},
	}
	seed := rand.Uint64()
	for i := range s.shards {
		s.shards[i].swarms = newSwarmTable(seed)
	}
	return s
}

// SetObserver sets the function called with every change of a local peer.
// fn runs on the announce path under a shard lock: it must be fast, must not
// block (e.g. append to a queue, or send on a buffered channel with a
// default case) and must not call back into the store. nil stops observation.
func (s *PeerStore) SetObserver(fn func(PeerEvent)) {
	if fn == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&fn)
}

func (s *PeerStore) emit(e PeerEvent) {
	if fn := s.observer.Load(); fn != nil {
		(*fn)(e)
	}
}

func (s *PeerStore) shard(h model.InfoHash) *peerShard { return &s.shards[h[0]] }

// stamp converts t to the store's compact clock.
func (s *PeerStore) stamp(t time.Time) uint32 {
	d := t.Sub(s.epoch)
	if d < 0 {
		return 0
	}
	return uint32(d / time.Second)
}

// localAnnounce is one announce to this node, already authorized.
type localAnnounce struct {
	user    uint64
	id      [20]byte
	addr    netip.AddrPort
	seeder  bool
	stopped bool
	numWant int
	family  family
	// acct, when set, accounts rep under the swarm's lock, so the peer's
	// record found here tells the accountant where its counters are (one
	// lookup of the peer serves both), and a snatch counts without
	// another lookup of the swarm. rep is a value, not a pointer: the
	// accountant's lock makes acct leak to the heap for escape analysis,
	// and a pointer beside it would take the report with it (an
	// allocation per announce).
	acct *accountant
	rep  report
	// regGen, when not 0, is the registry generation under which
	// rep.torrent was looked up: the swarm keeps it (see registered).
	regGen uint64
}

// swarmCounts are the numbers a tracker reports for a swarm.
type swarmCounts struct {
	seeders, leechers, snatches int
}

// announce records a local announce in swarm h and appends up to a.numWant
// other peers to dst. A stopped peer is removed and gets no peers.
func (s *PeerStore) announce(h model.InfoHash, a *localAnnounce, now time.Time, dst []Peer) ([]Peer, swarmCounts) {
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw, exists := sh.swarms.get(&h)
	return s.announceLocked(sh, h, sw, exists, a, now, dst)
}

// announceKept is announce for the torrent whose ID is h if h's swarm
// holds the torrent's registry answer under generation gen (see
// TorrentGenerations): the check, the torrent's size for the accountant
// and the announce under one lock. It returns false, having changed
// nothing, when the swarm does not hold it.
func (s *PeerStore) announceKept(h model.InfoHash, gen uint64, a *localAnnounce, now time.Time, dst []Peer) ([]Peer, swarmCounts, bool) {
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw, exists := sh.swarms.get(&h)
	if !exists || gen == 0 || sw.regGen != gen {
		return dst, swarmCounts{}, false
	}
	a.rep.torrent = model.TorrentRef{ID: h, TotalSize: sw.totalSize}
	a.regGen = gen
	dst, c := s.announceLocked(sh, h, sw, true, a, now, dst)
	return dst, c, true
}

// announceLocked is announce with sh locked and sw, exists what sh holds
// for h.
func (s *PeerStore) announceLocked(sh *peerShard, h model.InfoHash, sw swarm, exists bool, a *localAnnounce, now time.Time, dst []Peer) ([]Peer, swarmCounts) {
	var ev PeerEvent
	i := -1
	if exists {
		i = sw.find(a.id)
	}
	known := i >= 0
	// changed: the header changed (counts, arrays) and must be stored back;
	// a re-announce that changes nothing only writes into the records.
	changed := false
	counters := int32(-1)
	if a.acct != nil {
		hint := int32(-1)
		if known {
			hint = sw.peers[i].counters
		}
		var snatch bool
		snatch, counters = a.acct.accountAt(&a.rep, now, hint)
		if snatch {
			sw.snatches++
			changed = true
		}
	}
	switch {
	case a.stopped:
		if known {
			r, addr := sw.removeAt(i)
			ev = PeerEvent{Kind: PeerRemoved, Swarm: h, Peer: r.peer(addr), UserID: r.user}
			changed = true
		}
	case !known:
		r := peerRec{user: a.user, id: a.id, lastSeen: s.stamp(now), counters: counters, meta: localOrigin}
		if a.seeder {
			r.meta |= flagSeeder
		}
		sw.add(r)
		sw.setAddr(len(sw.peers)-1, a.addr)
		ev = PeerEvent{Kind: PeerPut, Swarm: h, Peer: r.peer(a.addr), UserID: a.user}
		changed = true
	default:
		moved := sw.setAddr(i, a.addr)
		moved = sw.setSeeder(i, a.seeder) || moved
		r := &sw.peers[i]
		if r.origin() != localOrigin || r.user != a.user {
			r.setOrigin(localOrigin)
			r.user = a.user
			moved = true
		}
		r.lastSeen = s.stamp(now)
		r.counters = counters
		if moved {
			ev = PeerEvent{Kind: PeerPut, Swarm: h, Peer: r.peer(a.addr), UserID: a.user}
			changed = true
		}
	}
	if !a.stopped {
		dst = sw.selectPeers(dst, a.id, a.seeder, a.family, a.numWant)
	}
	if a.regGen != 0 && (sw.regGen != a.regGen || sw.totalSize != a.rep.torrent.TotalSize) {
		sw.regGen, sw.totalSize = a.regGen, a.rep.torrent.TotalSize
		changed = true
	}
	c := swarmCounts{int(sw.seeders), int(sw.leechers), int(sw.snatches)}
	if changed {
		sh.put(h, &sw)
	}
	if ev.Kind != 0 {
		s.emit(ev)
	}
	return dst, c
}

// Counts returns the seeders and leechers of swarm h, local and remote, and
// the completed downloads this node has seen since it started.
func (s *PeerStore) Counts(h model.InfoHash) (seeders, leechers, snatches int) {
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sw := sh.swarms.ref(&h); sw != nil {
		return int(sw.seeders), int(sw.leechers), int(sw.snatches)
	}
	return 0, 0, 0
}

func (s *PeerStore) originIndex(origin string) uint16 {
	s.originsMu.Lock()
	defer s.originsMu.Unlock()
	if i, ok := s.origins[origin]; ok {
		return i
	}
	if len(s.originNames) > int(originMask) {
		return 0
	}
	i := uint16(len(s.originNames))
	s.origins[origin] = i
	s.originNames = append(s.originNames, origin)
	return i
}

func (s *PeerStore) lookupOrigin(origin string) (uint16, bool) {
	s.originsMu.Lock()
	defer s.originsMu.Unlock()
	i, ok := s.origins[origin]
	return i, ok
}

// PutRemote adds or updates peer p of swarm h served by node origin, as
// learned from gossip. A peer held for another origin, or local to this
// node, becomes origin's (the client moved); its local announce here later
// takes it back. origin must not be empty. PutRemote produces no event.
// Tracker.PutRemotePeer is PutRemote plus the stats counter handoff; the
// gossip layer should call that one.
func (s *PeerStore) PutRemote(origin string, h model.InfoHash, p Peer) {
	if origin == "" || !p.Addr.IsValid() {
		return
	}
	oi := s.originIndex(origin)
	if oi == localOrigin {
		return // origin table full
	}
	now := s.stamp(s.clock())
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw, _ := sh.swarms.get(&h)
	defer sh.put(h, &sw)
	i := sw.find(p.ID)
	if i < 0 {
		r := peerRec{id: p.ID, lastSeen: now, meta: oi}
		if p.Seeder {
			r.meta |= flagSeeder
		}
		sw.add(r)
		sw.setAddr(len(sw.peers)-1, p.Addr)
		return
	}
	r := &sw.peers[i]
	r.setOrigin(oi)
	r.lastSeen = now
	sw.setAddr(i, p.Addr)
	sw.setSeeder(i, p.Seeder)
}

// RemoveRemote removes peer id from swarm h if it is held for node origin.
// It does nothing to a local peer or a peer another node took over.
func (s *PeerStore) RemoveRemote(origin string, h model.InfoHash, id [20]byte) {
	oi, ok := s.lookupOrigin(origin)
	if !ok {
		return
	}
	sh := s.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sw, ok := sh.swarms.get(&h)
	if !ok {
		return
	}
	if i := sw.find(id); i >= 0 && sw.peers[i].origin() == oi {
		sw.removeAt(i)
		sh.put(h, &sw)
	}
}

// DropOrigin removes every peer held for node origin (a node that left the
// cluster) and returns how many it removed.
func (s *PeerStore) DropOrigin(origin string) int {
	oi, ok := s.lookupOrigin(origin)
	if !ok {
		return 0
	}
	return s.removeWhere(func(r *peerRec) bool { return r.origin() == oi })
}

// LocalPeers calls fn for every address of every local peer until fn returns
// false, for a full-state exchange with another node. fn runs under a shard
// lock: it must not block or call into the store.
func (s *PeerStore) LocalPeers(fn func(swarm model.InfoHash, p Peer, userID uint64) bool) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		more := true
		sh.swarms.each(func(h *model.InfoHash, sw *swarm) bool {
			for j := range sw.peers {
				r := &sw.peers[j]
				if r.origin() != localOrigin {
					continue
				}
				if r.has4() && !fn(*h, r.peer(r.addr4()), r.user) {
					more = false
					return false
				}
				if r.has6() && !fn(*h, r.peer(sw.addr6(r)), r.user) {
					more = false
					return false
				}
			}
			return true
		})
		sh.mu.Unlock()
		if !more {
			return
		}
	}
}

// Len returns the number of peers in all swarms.
func (s *PeerStore) Len() int {
	n := 0
	// It visits every swarm (12 ms for 100,000 on one busy core): step
	// aside between shards so announces are not held up.
	pc := pace.New(0)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.swarms.each(func(_ *model.InfoHash, sw *swarm) bool {
			n += len(sw.peers)
			return true
		})
		swarms := sh.swarms.len()
		sh.mu.Unlock()
		pc.StepN(swarms)
	}
	return n
}

// Census returns the number of swarms with peers and the numbers of local
// and remote peers, for metrics. It walks every shard.
func (s *PeerStore) Census() (swarms, local, remote int) {
	pc := pace.New(0)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.swarms.each(func(_ *model.InfoHash, sw *swarm) bool {
			if len(sw.peers) > 0 {
				swarms++
			}
			for j := range sw.peers {
				if sw.peers[j].origin() == localOrigin {
					local++
				} else {
					remote++
				}
			}
			return true
		})
		n := sh.swarms.len()
		sh.mu.Unlock()
		pc.StepN(n)
	}
	return swarms, local, remote
}

// Sweep removes local peers not seen for the store's ttl, and remote peers
// not refreshed for its remoteTTL when that is set. It emits PeerRemoved for
// each local peer it removes and returns how many peers it removed.
func (s *PeerStore) Sweep(now time.Time) int {
	nowS := s.stamp(now)
	localCut := cutoff(nowS, s.ttl)
	remoteCut := uint32(0)
	if s.remoteTTL > 0 {
		remoteCut = cutoff(nowS, s.remoteTTL)
	}
	return s.removeWhere(func(r *peerRec) bool {
		if r.origin() == localOrigin {
			return r.lastSeen < localCut
		}
		return r.lastSeen < remoteCut
	})
}

func cutoff(now uint32, ttl time.Duration) uint32 {
	t := uint32(ttl / time.Second)
	if t >= now {
		return 0
	}
	return now - t
}

// removeWhere removes the peers for which drop returns true and emits
// PeerRemoved for each local one.
func (s *PeerStore) removeWhere(drop func(*peerRec) bool) int {
	n := 0
	var changed []model.InfoHash
	// Every swarm: step aside between shards (a sweep of 100,000 swarms
	// held a core for 13 ms in one go).
	pc := pace.New(0)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		changed = changed[:0]
		sh.swarms.each(func(h *model.InfoHash, sw *swarm) bool {
			removed := false
			for j := 0; j < len(sw.peers); {
				if !drop(&sw.peers[j]) {
					j++
					continue
				}
				r, addr := sw.removeAt(j)
				n++
				removed = true
				if r.origin() == localOrigin {
					s.emit(PeerEvent{Kind: PeerRemoved, Swarm: *h, Peer: r.peer(addr), UserID: r.user})
				}
			}
			if removed {
				changed = append(changed, *h)
			}
			return true
		})
		// put after the walk: it may remove a swarm, which moves others.
		for _, h := range changed {
			if sw, ok := sh.swarms.get(&h); ok {
				sh.put(h, &sw)
			}
		}
		swarms := sh.swarms.len()
		sh.mu.Unlock()
		pc.StepN(swarms)
	}
	return n
}
