package announce

import (
	"net/netip"
	"time"

	"github.com/seedbank/seedbank/model"
)

// event is the announce event.
type event uint8

const (
	eventNone event = iota
	eventStarted
	eventCompleted
	eventStopped
	eventPaused // BEP 21: a partial seed; treated like a regular announce
)

// announceRequest is one announce, parsed from HTTP or UDP.
type announceRequest struct {
	infoHash   model.InfoHash
	peerID     [20]byte
	addr       netip.Addr // the client's address, unmapped
	port       uint16
	uploaded   uint64
	downloaded uint64
	left       uint64
	event      event
	numWant    int // -1: not given
	family     family
}

// announceState is the reusable memory of one announce: request, peers and
// output buffer. Pooled so the hot path allocates almost nothing.
type announceState struct {
	req    announceRequest
	q      announceQuery
	peers  []Peer
	hashes []model.InfoHash
	buf    []byte
}

func (t *Tracker) getState() *announceState {
	if st, ok := t.states.Get().(*announceState); ok {
		return st
	}
	return &announceState{
		peers: make([]Peer, 0, 2*t.cfg.NumWantMax),
		buf:   make([]byte, 0, 1024),
	}
}

func (t *Tracker) putState(st *announceState) {
	if cap(st.buf) > 64<<10 || cap(st.peers) > 4*t.cfg.NumWantMax {
		return // do not keep a rare huge buffer
	}
	st.peers = st.peers[:0]
	st.buf = st.buf[:0]
	st.hashes = st.hashes[:0]
	t.states.Put(st)
}

// authorize checks the passkey's user.
func (t *Tracker) authorize(passkey string) (model.UserRef, error) {
	u, ok := t.reg.UserByPasskey(passkey)
	if !ok {
		// The registry decodes the passkey for its lookup: check the
		// form only to tell a malformed passkey from an unknown one.
		if !validPasskey(passkey) {
			return model.UserRef{}, ErrMalformedPasskey
		}
		return u, ErrUnknownPasskey
	}
	if !u.Enabled {
		return u, ErrDisabledAccount
	}
	return u, nil
}

// validPasskey reports whether s is 32 lowercase hex characters.
func validPasskey(s string) bool {
	_, ok := model.ParsePasskey(s)
	return ok
}

// announce authorizes req for passkey, accounts its stats, updates the swarm
// and appends the selected peers to peers. Every check happens before any
// state changes, so a refused announce touches neither swarm nor stats.
func (t *Tracker) announce(passkey string, req *announceRequest, peers []Peer) ([]Peer, swarmCounts, error) {
	return t.announceAt(passkey, req, t.now(), peers)
}

// announceAt is announce at time now, for a caller that read the clock
// already (the UDP worker reads it once per batch of datagrams).
func (t *Tracker) announceAt(passkey string, req *announceRequest, now time.Time, peers []Peer) ([]Peer, swarmCounts, error) {
	peers, counts, err := t.announceChecked(passkey, req, now, peers)
	t.counters.count(err)
	return peers, counts, err
}

func (t *Tracker) announceChecked(passkey string, req *announceRequest, now time.Time, peers []Peer) ([]Peer, swarmCounts, error) {
	user, err := t.authorize(passkey)
	if err != nil {
		return peers, swarmCounts{}, err
	}
	numWant := req.numWant
	if numWant < 0 {
		numWant = t.cfg.NumWantDefault
	}
	numWant = min(numWant, t.cfg.NumWantMax)
	if t.debug {
		t.log.Debug("announce", "user", user.ID, "info_hash", req.infoHash.String(), "peer_id", string(req.peerID[:8]),
			"event", req.event, "uploaded", req.uploaded, "downloaded", req.downloaded, "left", req.left)
	}
	la := localAnnounce{
		user:    user.ID,
		id:      req.peerID,
		addr:    netip.AddrPortFrom(req.addr, req.port),
		seeder:  req.left == 0,
		stopped: req.event == eventStopped,
		numWant: numWant,
		family:  req.family,
		acct:    t.acct,
	}
	la.rep = report{
		user:      user.ID,
		peer:      req.peerID,
		up:        req.uploaded,
		down:      req.downloaded,
		completed: req.event == eventCompleted,
		seeding:   req.left == 0,
	}
	clientOK := t.reg.ClientAllowed(req.peerID[:])
	if t.gens != nil && clientOK {
		// Most announces: the swarm holds its torrent's registry answer,
		// checked and used under the swarm's lock (one lookup in all).
		if peers, counts, ok := t.peers.announceKept(req.infoHash, t.gens.TorrentGeneration(), &la, now, peers); ok {
			return peers, counts, nil
		}
	}
	tor, gen, ok := t.torrent(req.infoHash)
	if !ok {
		return peers, swarmCounts{}, ErrUnregisteredTorrent
	}
	if !clientOK {
		return peers, swarmCounts{}, ErrClientNotAllowed
	}
	la.rep.torrent, la.regGen = tor, gen
	peers, counts := t.peers.announce(tor.ID, &la, now, peers)
	return peers, counts, nil
}

// torrent looks up the torrent announced under h in the registry. gen is
// the registry's generation for h's swarm to keep the answer under (0: do
// not keep it; a hash that is not the torrent's ID has no swarm of its own
// to keep it in).
func (t *Tracker) torrent(h model.InfoHash) (tor model.TorrentRef, gen uint64, ok bool) {
	if t.gens != nil {
		// Read before the lookup: if the registry changes in between, the
		// swarm keeps the answer under the older number, and the next
		// announce looks again.
		gen = t.gens.TorrentGeneration()
	}
	tor, ok = t.reg.TorrentByHash(h)
	if !ok || tor.ID != h {
		gen = 0
	}
	return tor, gen, ok
}

// scrapeOne returns the numbers of the torrent announced under h.
func (t *Tracker) scrapeOne(h model.InfoHash) (swarmCounts, bool) {
	t.counters.scrapes.Add(1)
	ref, ok := t.reg.TorrentByHash(h)
	if !ok {
		return swarmCounts{}, false
	}
	s, l, n := t.peers.Counts(ref.ID)
	return swarmCounts{s, l, n}, true
}
