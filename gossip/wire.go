package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/model"
)

// Wire format of seedbank's gossip messages (memberlist user messages,
// encrypted by memberlist with the gossip key). Every message starts with a
// type byte and the sender's node id; integers are big-endian or uvarints.
//
//	delta:   type origin inc:u64 seq:uvarint n:uvarint entry*n
//	full:    type origin inc:u64 seq:uvarint n:uvarint entry*n   (puts only)
//	digest:  type origin inc:u64 seq:uvarint count:uvarint hash:u64
//	syncreq: type origin                                          (origin = requester)
//	leave:   type origin                                          (origin is leaving)
//	handoff: type origin n:uvarint counters*n
//	offer:   type origin n:uvarint counters*n                     (restored after a crash)
//	taken:   type origin n:uvarint counters*n                     (offered counters counted)
//
//	entry:    op:u8 swarm:20 peer:20 [put: flags:u8 at:uvarint [ip4:4 port:2] [ip6:16 port:2]]
//	counters: user:u64 torrent:20 peer:20 up:u64 down:u64 completed:u8 updated:i64
//
// A put entry is the whole current state of one peer at its origin (both
// addresses of a dual-stack client), so applying it is an idempotent upsert.
const (
	msgDelta   byte = 1
	msgFull    byte = 2
	msgDigest  byte = 3
	msgSyncReq byte = 4
	msgHandoff byte = 5
	msgLeave   byte = 6
	msgOffer   byte = 7
	msgTaken   byte = 8
)

// shortHeader reports whether messages of type typ have no incarnation and
// sequence number.
func shortHeader(typ byte) bool {
	switch typ {
	case msgSyncReq, msgHandoff, msgLeave, msgOffer, msgTaken:
		return true
	}
	return false
}

const (
	opPut    byte = 1
	opRemove byte = 2
)

// Flags of an entry.
const (
	flagHas4 uint8 = 1 << iota
	flagHas6
	flagSeeder
)

// maxPutEntry is the largest encoded entry: op, swarm, peer, flags, a
// 10-byte uvarint, both addresses.
const maxPutEntry = 1 + 20 + 20 + 1 + 10 + 6 + 18

const countersSize = 8 + 20 + 20 + 8 + 8 + 1 + 8

var errShort = errors.New("gossip: truncated message")

// peerKey names one peer of one swarm.
type peerKey struct {
	swarm model.InfoHash
	id    [20]byte
}

// entry is the state of one peer as its origin node holds it. at orders
// claims of the same peer by different origins (a client that moved): the
// later claim wins. It is a hybrid logical clock in Unix milliseconds.
type entry struct {
	ip4   [4]byte
	ip6   [16]byte
	port4 uint16
	port6 uint16
	flags uint8
	at    int64
}

func (e *entry) seeder() bool { return e.flags&flagSeeder != 0 }

// setAddr stores a in the slot of its family.
func (e *entry) setAddr(a netip.AddrPort) {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		e.ip4, e.port4 = ip.As4(), a.Port()
		e.flags |= flagHas4
		return
	}
	e.ip6, e.port6 = ip.As16(), a.Port()
	e.flags |= flagHas6
}

// peers returns the announce.Peer values of e, one per address.
func (e *entry) peers(id [20]byte, dst []announce.Peer) []announce.Peer {
	if e.flags&flagHas4 != 0 {
		dst = append(dst, announce.Peer{ID: id, Addr: netip.AddrPortFrom(netip.AddrFrom4(e.ip4), e.port4), Seeder: e.seeder()})
	}
	if e.flags&flagHas6 != 0 {
		dst = append(dst, announce.Peer{ID: id, Addr: netip.AddrPortFrom(netip.AddrFrom16(e.ip6), e.port6), Seeder: e.seeder()})
	}
	return dst
}

// sameAddrs reports whether e and o list the same addresses and role.
func (e *entry) sameAddrs(o *entry) bool {
	return e.flags == o.flags && e.ip4 == o.ip4 && e.port4 == o.port4 && e.ip6 == o.ip6 && e.port6 == o.port6
}

// hash is the entry's contribution to an origin's digest; digests XOR them,
// so they can be kept up to date in O(1) per change.
func (e *entry) hash(k peerKey) uint64 {
	var b [20 + 20 + 1 + 4 + 2 + 16 + 2 + 8]byte
	copy(b[0:], k.swarm[:])
	copy(b[20:], k.id[:])
	b[40] = e.flags
	copy(b[41:], e.ip4[:])
	binary.BigEndian.PutUint16(b[45:], e.port4)
	copy(b[47:], e.ip6[:])
	binary.BigEndian.PutUint16(b[63:], e.port6)
	binary.BigEndian.PutUint64(b[65:], uint64(e.at))
	h := fnv.New64a()
	h.Write(b[:])
	return h.Sum64()
}

// header is the common start of delta, full and digest messages.
type header struct {
	typ    byte
	origin string
	inc    uint64
	seq    uint64
}

func appendHeader(b []byte, h header) []byte {
	b = append(b, h.typ, byte(len(h.origin)))
	b = append(b, h.origin...)
	if shortHeader(h.typ) {
		return b
	}
	b = binary.BigEndian.AppendUint64(b, h.inc)
	return binary.AppendUvarint(b, h.seq)
}

func appendPut(b []byte, k peerKey, e *entry) []byte {
	b = append(b, opPut)
	b = append(b, k.swarm[:]...)
	b = append(b, k.id[:]...)
	b = append(b, e.flags&(flagHas4|flagHas6|flagSeeder))
	b = binary.AppendUvarint(b, uint64(e.at))
	if e.flags&flagHas4 != 0 {
		b = append(b, e.ip4[:]...)
		b = binary.BigEndian.AppendUint16(b, e.port4)
	}
	if e.flags&flagHas6 != 0 {
		b = append(b, e.ip6[:]...)
		b = binary.BigEndian.AppendUint16(b, e.port6)
	}
	return b
}

func appendRemove(b []byte, k peerKey) []byte {
	b = append(b, opRemove)
	b = append(b, k.swarm[:]...)
	return append(b, k.id[:]...)
}

func appendCounters(b []byte, pc *announce.PeerCounters) []byte {
	b = binary.BigEndian.AppendUint64(b, pc.UserID)
	b = append(b, pc.Torrent[:]...)
	b = append(b, pc.PeerID[:]...)
	b = binary.BigEndian.AppendUint64(b, pc.Uploaded)
	b = binary.BigEndian.AppendUint64(b, pc.Downloaded)
	c := byte(0)
	if pc.Completed {
		c = 1
	}
	b = append(b, c)
	return binary.BigEndian.AppendUint64(b, uint64(pc.Updated))
}

// reader decodes a message; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) header() header {
	var h header
	h.typ = r.byte1()
	n := int(r.byte1())
	if v := r.take(n); v != nil {
		h.origin = string(v)
	}
	if shortHeader(h.typ) {
		return h
	}
	h.inc = r.u64()
	h.seq = r.uvarint()
	return h
}

// count reads an element count and checks it against the bytes left, so a
// forged count cannot make the decoder allocate much.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.err = fmt.Errorf("gossip: count %d exceeds message size", n)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// change is one decoded entry: e is nil for a removal.
type change struct {
	key peerKey
	e   *entry
}

// entries decodes n entries. Entries of one message share one backing
// array: one allocation per message for the puts.
func (r *reader) entries(n int) []change {
	out := make([]change, n)
	ents := make([]entry, n)
	for i := range n {
		op := r.byte1()
		copy(out[i].key.swarm[:], r.take(20))
		copy(out[i].key.id[:], r.take(20))
		switch op {
		case opRemove:
		case opPut:
			e := &ents[i]
			e.flags = r.byte1() & (flagHas4 | flagHas6 | flagSeeder)
			e.at = int64(r.uvarint())
			if e.flags&flagHas4 != 0 {
				copy(e.ip4[:], r.take(4))
				e.port4 = r.u16()
			}
			if e.flags&flagHas6 != 0 {
				copy(e.ip6[:], r.take(16))
				e.port6 = r.u16()
			}
			if e.flags&(flagHas4|flagHas6) == 0 && r.err == nil {
				r.err = errors.New("gossip: put entry without an address")
			}
			out[i].e = e
		default:
			if r.err == nil {
				r.err = fmt.Errorf("gossip: unknown entry op %d", op)
			}
		}
		if r.err != nil {
			return nil
		}
	}
	return out
}

func (r *reader) counters() announce.PeerCounters {
	var pc announce.PeerCounters
	pc.UserID = r.u64()
	copy(pc.Torrent[:], r.take(20))
	copy(pc.PeerID[:], r.take(20))
	pc.Uploaded = r.u64()
	pc.Downloaded = r.u64()
	pc.Completed = r.byte1() == 1
	pc.Updated = int64(r.u64())
	return pc
}

// message is a decoded gossip message.
type message struct {
	header
	changes  []change                // delta, full
	count    uint64                  // digest
	hash     uint64                  // digest
	handoffs []announce.PeerCounters // handoff, offer, taken
}

// decode parses one message. It never panics on hostile input.
func decode(b []byte) (message, error) {
	r := reader{b: b}
	var m message
	m.header = r.header()
	if r.err == nil && m.origin == "" {
		r.err = errors.New("gossip: message without origin")
	}
	switch m.typ {
	case msgDelta, msgFull:
		n := r.count(1 + 40)
		m.changes = r.entries(n)
	case msgDigest:
		m.count = r.uvarint()
		m.hash = r.u64()
	case msgSyncReq, msgLeave:
	case msgHandoff, msgOffer, msgTaken:
		n := r.count(countersSize)
		if r.err == nil {
			m.handoffs = make([]announce.PeerCounters, n)
			for i := range m.handoffs {
				m.handoffs[i] = r.counters()
			}
		}
	default:
		if r.err == nil {
			r.err = fmt.Errorf("gossip: unknown message type %d", m.typ)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("gossip: %d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return message{}, r.err
	}
	return m, nil
}
