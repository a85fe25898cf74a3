package gossip

import (
	"encoding/binary"

	"github.com/seedbank/seedbank/announce"
)

// Restored counters after a crash (see announce/offer.go). A node that
// starts again offers the peer counters it restored from its stats queue to
// each member it meets; a member whose counters of a peer await a handoff
// (the client failed over to it while this node was down) counts the gap and
// answers with the ones it took, and this node stops counting from those.

// CounterOfferer is the optional part of Peers that takes part in offers;
// TrackerPeers implements it.
type CounterOfferer interface {
	// RestoredCounters are the counters restored at start and untouched since.
	RestoredCounters() []announce.PeerCounters
	// OfferCounters counts the gap if the peer's counters here await a
	// handoff, and reports whether it did.
	OfferCounters(pc announce.PeerCounters) bool
	// ReleaseCounters stops counting from restored counters another node took.
	ReleaseCounters(pc announce.PeerCounters) bool
}

func (p trackerPeers) RestoredCounters() []announce.PeerCounters { return p.t.RestoredCounters() }
func (p trackerPeers) OfferCounters(pc announce.PeerCounters) bool {
	return p.t.OfferCounters(pc)
}
func (p trackerPeers) ReleaseCounters(pc announce.PeerCounters) bool {
	return p.t.ReleaseCounters(pc)
}

// maxCountersPerMsg bounds one offer or taken message (about 300 KB over TCP).
const maxCountersPerMsg = 4096

// offerRestored sends this node's restored counters to member to.
func (r *replica) offerRestored(to string) {
	o, ok := r.g.peers.(CounterOfferer)
	if !ok {
		return
	}
	pcs := o.RestoredCounters()
	for len(pcs) > 0 {
		n := min(len(pcs), maxCountersPerMsg)
		r.g.sendReliable(to, r.countersMsg(msgOffer, pcs[:n]), 5)
		r.g.stats.offersSent.Add(uint64(n))
		pcs = pcs[n:]
	}
}

// takeOffer counts the offered counters this node awaits and tells the
// offering node which ones it took.
func (r *replica) takeOffer(from string, pcs []announce.PeerCounters) {
	o, ok := r.g.peers.(CounterOfferer)
	if !ok || from == r.self {
		return
	}
	var taken []announce.PeerCounters
	for _, pc := range pcs {
		if o.OfferCounters(pc) {
			taken = append(taken, pc)
		}
	}
	if len(taken) == 0 {
		return
	}
	r.g.stats.offersTaken.Add(uint64(len(taken)))
	r.g.log.Info("counted transfers a restarted node offered", "from", from, "peers", len(taken))
	r.g.sendReliable(from, r.countersMsg(msgTaken, taken), 5)
}

// release stops counting from restored counters another node took.
func (r *replica) release(pcs []announce.PeerCounters) {
	o, ok := r.g.peers.(CounterOfferer)
	if !ok {
		return
	}
	for _, pc := range pcs {
		if o.ReleaseCounters(pc) {
			r.g.stats.offersReleased.Add(1)
		}
	}
}

func (r *replica) countersMsg(typ byte, pcs []announce.PeerCounters) []byte {
	b := appendHeader(make([]byte, 0, 64+len(pcs)*countersSize), header{typ: typ, origin: r.self})
	b = binary.AppendUvarint(b, uint64(len(pcs)))
	for i := range pcs {
		b = appendCounters(b, &pcs[i])
	}
	return b
}
