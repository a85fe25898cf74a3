package gossip

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/model"
)

func testKey(i byte) peerKey {
	return peerKey{swarm: model.InfoHash{i, 1}, id: [20]byte{i, 2}}
}

func deltaMsg(origin string, inc, seq uint64, puts map[peerKey]entry, removes []peerKey) []byte {
	b := appendHeader(nil, header{typ: msgDelta, origin: origin, inc: inc, seq: seq})
	b = binary.AppendUvarint(b, uint64(len(puts)+len(removes)))
	for k, e := range puts {
		b = appendPut(b, k, &e)
	}
	for _, k := range removes {
		b = appendRemove(b, k)
	}
	return b
}

func TestWireRoundTrip(t *testing.T) {
	var v4, v6, dual entry
	v4.setAddr(netip.MustParseAddrPort("192.0.2.1:6881"))
	v4.at = 1_700_000_000_000
	v6.setAddr(netip.MustParseAddrPort("[2001:db8::1]:51413"))
	v6.flags |= flagSeeder
	v6.at = 5
	dual.setAddr(netip.MustParseAddrPort("198.51.100.7:1"))
	dual.setAddr(netip.MustParseAddrPort("[2001:db8::7]:2"))
	dual.at = 1 << 50
	puts := map[peerKey]entry{testKey(1): v4, testKey(2): v6, testKey(3): dual}
	b := deltaMsg("node-a", 42, 7, puts, []peerKey{testKey(4)})
	m, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.typ != msgDelta || m.origin != "node-a" || m.inc != 42 || m.seq != 7 || len(m.changes) != 4 {
		t.Fatalf("header %+v, %d changes", m.header, len(m.changes))
	}
	for _, c := range m.changes {
		want, isPut := puts[c.key]
		switch {
		case isPut && (c.e == nil || *c.e != want):
			t.Fatalf("put %v: got %+v want %+v", c.key, c.e, want)
		case !isPut && (c.e != nil || c.key != testKey(4)):
			t.Fatalf("unexpected change %+v", c)
		}
	}
	ps := dual.peers(testKey(3).id, nil)
	if len(ps) != 2 || ps[0].Addr.String() != "198.51.100.7:1" || ps[1].Addr.String() != "[2001:db8::7]:2" {
		t.Fatalf("dual-stack peers %v", ps)
	}

	pc := announce.PeerCounters{UserID: 9, Torrent: model.InfoHash{3}, PeerID: [20]byte{4}, Uploaded: 1 << 40, Downloaded: 3, Completed: true, Updated: 1_700_000_000}
	hb := appendHeader(nil, header{typ: msgHandoff, origin: "n2"})
	hb = binary.AppendUvarint(hb, 1)
	hb = appendCounters(hb, &pc)
	m, err = decode(hb)
	if err != nil || m.origin != "n2" || len(m.handoffs) != 1 || m.handoffs[0] != pc {
		t.Fatalf("handoff: %+v %v", m, err)
	}
	var r replica
	r.self = "n4"
	for _, typ := range []byte{msgOffer, msgTaken} {
		m, err = decode(r.countersMsg(typ, []announce.PeerCounters{pc, pc}))
		if err != nil || m.typ != typ || m.origin != "n4" || len(m.handoffs) != 2 || m.handoffs[1] != pc {
			t.Fatalf("type %d: %+v %v", typ, m, err)
		}
	}

	for _, typ := range []byte{msgSyncReq} {
		m, err := decode(appendHeader(nil, header{typ: typ, origin: "n3"}))
		if err != nil || m.typ != typ || m.origin != "n3" {
			t.Fatalf("type %d: %+v %v", typ, m, err)
		}
	}
}

// Hostile input never panics and never decodes as something else.
func TestDecodeRejectsTruncatedAndGarbage(t *testing.T) {
	var e entry
	e.setAddr(netip.MustParseAddrPort("192.0.2.1:6881"))
	b := deltaMsg("a", 1, 1, map[peerKey]entry{testKey(1): e}, []peerKey{testKey(2)})
	for i := range len(b) {
		if _, err := decode(b[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		}
	}
	if _, err := decode(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	huge := appendHeader(nil, header{typ: msgDelta, origin: "a", inc: 1, seq: 1})
	huge = binary.AppendUvarint(huge, 1<<40)
	if _, err := decode(huge); err == nil {
		t.Fatal("forged count accepted")
	}
	for _, bad := range [][]byte{nil, {0}, {99, 1, 'a'}, {msgDelta, 0}} {
		if _, err := decode(bad); err == nil {
			t.Fatalf("%v decoded", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var e entry
	e.setAddr(netip.MustParseAddrPort("192.0.2.1:6881"))
	f.Add(deltaMsg("a", 1, 1, map[peerKey]entry{testKey(1): e}, []peerKey{testKey(2)}))
	r := replica{self: "b"}
	pc := announce.PeerCounters{UserID: 7, Torrent: model.InfoHash{1}, PeerID: [20]byte{2}, Uploaded: 3, Downloaded: 4, Updated: 5}
	f.Add(r.countersMsg(msgOffer, []announce.PeerCounters{pc}))
	f.Add(r.countersMsg(msgTaken, []announce.PeerCounters{pc, pc}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decode(b)
	})
}

// BenchmarkDecodeDelta decodes a full UDP batch of 20 IPv4 puts. Budget:
// 3 allocations per message (changes, entries, origin string).
func BenchmarkDecodeDelta(b *testing.B) {
	puts := map[peerKey]entry{}
	for i := range 20 {
		var e entry
		e.setAddr(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881))
		e.at = 1_700_000_000_000 + int64(i)
		puts[testKey(byte(i))] = e
	}
	msg := deltaMsg("node-with-a-longish-id", 1<<60, 12345, puts, nil)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
