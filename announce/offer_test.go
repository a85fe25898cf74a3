package announce

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/seedbank/seedbank/model"
)

// A node dies under a client, which fails over to another node; the dead
// node starts again and offers the counters it restored. The transfer since
// its last flush, lost from its memory, is counted once by the node the
// client moved to, and never again by the restarted node.
func TestRestoredCountersOfferedAfterCrash(t *testing.T) {
	f := newOfferFixture(t)
	reg, pk, ih, sc, queueA, a, b := f.reg, f.pk, f.ih, f.sc, f.queueA, f.a, f.b
	ctx := context.Background()
	peer := ann{ih: ih, id: peerID(1), port: 1, left: 1}
	send := func(tr *Tracker, up uint64, event string) {
		p := peer
		p.up, p.event = up, event
		announceVia(t, tr, "192.0.2.1:1", pk, p)
	}

	send(a, 0, "started")
	send(a, 1000, "")
	if err := a.Flush(ctx); err != nil { // A's queue now holds up=1000
		t.Fatal(err)
	}
	send(a, 3000, "") // counted in A's memory only
	crash(a)

	send(b, 7000, "") // first sight at B: a baseline awaiting a handoff
	send(b, 9000, "")
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sc.snapshot()[sumKey{1, ih}].up; got != 1000+2000 {
		t.Fatalf("before the offer: uploaded %d, want 3000 (A's flushed 1000, B's 2000)", got)
	}

	a2 := newTestTracker(t, reg, sc, func(c *Config) { c.NodeID = "node-a"; c.QueuePath = queueA })
	offered := a2.RestoredCounters()
	if len(offered) != 1 || offered[0].Uploaded != 1000 {
		t.Fatalf("restored counters: %+v, want one peer at up=1000", offered)
	}
	if !b.OfferCounters(offered[0]) {
		t.Fatal("B did not take the offer although its counters await a handoff")
	}
	if b.OfferCounters(offered[0]) {
		t.Fatal("B took the same offer twice")
	}
	if !a2.ReleaseCounters(offered[0]) {
		t.Fatal("A did not release counters B took")
	}
	if len(a2.RestoredCounters()) != 0 {
		t.Fatal("released counters are still offered")
	}
	// The client comes back to A: a first sight there, nothing recounted.
	send(a2, 9500, "")
	for _, tr := range []*Tracker{a2, b} {
		if err := tr.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := sc.snapshot()[sumKey{1, ih}].up; got != 9000 {
		t.Fatalf("after the offer: uploaded %d, want 9000 (every byte the client reported, once)", got)
	}
}

// An offer for a peer this node does not await changes nothing, and
// counters an announce touched are not released.
func TestOfferIgnoredUnlessAwaited(t *testing.T) {
	f := newOfferFixture(t)
	reg, pk, ih, sc, queueA, a, b := f.reg, f.pk, f.ih, f.sc, f.queueA, f.a, f.b
	ctx := context.Background()
	announceVia(t, a, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 1, event: "started"})
	announceVia(t, a, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 1, up: 500})
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	crash(a)
	a2 := newTestTracker(t, reg, sc, func(c *Config) { c.NodeID = "node-a"; c.QueuePath = queueA })
	pcs := a2.RestoredCounters()
	if len(pcs) != 1 {
		t.Fatalf("restored %d counters, want 1", len(pcs))
	}
	if b.OfferCounters(pcs[0]) {
		t.Fatal("B took an offer for a peer it never saw")
	}
	announceVia(t, a2, "192.0.2.1:1", pk, ann{ih: ih, id: peerID(1), port: 1, left: 1, up: 800})
	if a2.ReleaseCounters(pcs[0]) {
		t.Fatal("A released counters an announce had touched")
	}
	if err := a2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sc.snapshot()[sumKey{1, ih}].up; got != 800 {
		t.Fatalf("uploaded %d, want 800", got)
	}
}

// offerFixture is two trackers, node-a (whose queue a test reopens after a
// crash) and node-b, sharing a registry with one user and one torrent.
type offerFixture struct {
	reg    *fakeRegistry
	pk     string
	ih     model.InfoHash
	sc     *fakeCommitter
	queueA string
	a, b   *Tracker
}

func newOfferFixture(t *testing.T) offerFixture {
	f := offerFixture{reg: newFakeRegistry(), sc: newFakeCommitter(), queueA: filepath.Join(t.TempDir(), "a.db")}
	f.pk = f.reg.addUser(1, true)
	f.ih = f.reg.addTorrent("t", 1<<30)
	f.a = newTestTracker(t, f.reg, f.sc, func(c *Config) { c.NodeID = "node-a"; c.QueuePath = f.queueA })
	f.b = newTestTracker(t, f.reg, f.sc, func(c *Config) { c.NodeID = "node-b" })
	return f
}
