package announce

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"
	"unsafe"

	"github.com/seedbank/seedbank/pace"
)

// BEP 15 wire constants.
const (
	udpProtocolID = 0x41727101980

	udpActionConnect  = 0
	udpActionAnnounce = 1
	udpActionScrape   = 2
	udpActionError    = 3

	udpHeaderLen   = 16 // connection id, action, transaction id
	udpAnnounceLen = 98 // fixed part of an announce; BEP 41 options follow

	// udpBufSize bounds a datagram; longer ones are dropped unread.
	udpBufSize = 2048
	// udpMaxScrape is the most hashes one scrape may name (BEP 15).
	udpMaxScrape = 74
	// Peers per response, so an answer fits a 1500-byte MTU.
	udpMaxPeers4 = (1472 - 20) / 6
	udpMaxPeers6 = (1452 - 20) / 18
	// udpMaxURLData bounds the BEP 41 URL data gathered from all options.
	udpMaxURLData = 512
)

// Allocation budget of a UDP announce (BenchmarkUDPAnnounce): 0. Buffers
// are per worker, the passkey handed to Registry.UserByPasskey is a view of
// the worker's URL-data buffer, connection ids are computed on the stack.
// Reading a datagram from the socket costs 2 more (golang.org/x/net returns
// the sender as a new *net.UDPAddr); writing the answer costs none.

// udpBatch is the most datagrams one system call reads or writes. Under load
// a worker takes what has queued, up to this many, answers them all and sends
// the answers in one call; when idle it blocks in the read and answers a
// single datagram at once, so batching adds no latency.
const udpBatch = 32

// udpState is one worker's reusable memory.
type udpState struct {
	out   []byte // where handleUDP writes its answer; udpBufSize long
	url   [udpMaxURLData]byte
	req   announceRequest
	peers []Peer
	mac   macBuf
}

func (t *Tracker) newUDPState() *udpState {
	return &udpState{
		out:   make([]byte, udpBufSize),
		peers: make([]Peer, 0, max(udpMaxPeers4, udpMaxPeers6)),
	}
}

// udpBatcher reads datagrams and writes their answers several per system
// call (recvmmsg and sendmmsg on Linux). One worker owns one.
type udpBatcher interface {
	// read waits for datagrams and returns how many arrived (at most
	// udpBatch; 0 when it gave up waiting for now); datagram(i) then
	// returns the i-th.
	read() (int, error)
	// datagram returns the i-th datagram read and its sender; false for
	// one not to answer (oversized, or from an address it cannot read).
	datagram(i int) (pkt []byte, from netip.AddrPort, ok bool)
	// reply queues msg as the answer to the sender of datagram i; msg
	// must stay unchanged until send returns.
	reply(i int, msg []byte)
	// send writes the queued answers. One the kernel refuses (e.g. no
	// route to its address) goes to refused and is skipped; the rest are
	// still sent. It returns an error only when the socket is closed.
	send(refused func(to netip.AddrPort, err error)) error
}

// ServeUDP answers BEP 15 connect, announce and scrape on conn until ctx is
// done, then returns nil; it returns an error if reading fails otherwise
// (e.g. the conn was closed). Several goroutines read conn, each up to
// udpBatch datagrams per system call. The passkey of an announce comes from
// the BEP 41 URL data ("/<passkey>/announce"). A scrape needs a valid
// connection id but no passkey; unregistered hashes scrape as zeroes.
// Malformed datagrams are dropped or answered with an error packet, never
// with more bytes than a valid connection id allows. ServeUDP leaves a past
// read deadline on conn when it returns; the caller closes conn.
func (t *Tracker) ServeUDP(ctx context.Context, conn *net.UDPConn) error {
	workers := min(pace.Procs(), 8)
	unblock := func() { conn.SetReadDeadline(time.Unix(1, 0)) }
	stop := context.AfterFunc(ctx, unblock)
	defer stop()
	errc := make(chan error, workers)
	for range workers {
		b, err := newUDPBatcher(conn, workers == 1)
		if err != nil {
			return fmt.Errorf("announce: %w", err)
		}
		go func() { errc <- t.udpWorker(ctx, b) }()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
			unblock()
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return first
}

func (t *Tracker) udpWorker(ctx context.Context, b udpBatcher) error {
	st := t.newUDPState()
	outBuf := make([]byte, udpBatch*udpBufSize) // the answers of one batch
	refused := t.udpRefused                     // made once: a method value allocates
	for {
		// A read returns at once while datagrams keep coming (the Linux
		// batcher tries the socket before it waits on the read deadline
		// that ServeUDP sets to stop): check for the end here too.
		if ctx.Err() != nil {
			return nil
		}
		n, err := b.read()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("announce: udp read: %w", err)
		}
		if n == 0 {
			continue // gave up waiting for now
		}
		now := t.now()            // one clock read per batch: stamps are in seconds
		pace.Progress(time.Now()) // t.now may be a test's clock
		t.warmBatch(b, n)
		t.answerBatch(st, b, n, outBuf, now)
		if err := b.send(refused); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("announce: udp write: %w", err)
		}
	}
}

// answerBatch answers datagrams [0, n) of b, which arrived at now, with
// the answers in outBuf (udpBatch*udpBufSize long), and queues them in b.
func (t *Tracker) answerBatch(st *udpState, b udpBatcher, n int, outBuf []byte, now time.Time) {
	answers := 0
	for i := range n {
		pkt, from, ok := b.datagram(i)
		if !ok {
			continue
		}
		st.out = outBuf[answers*udpBufSize : (answers+1)*udpBufSize : (answers+1)*udpBufSize]
		if resp := t.handleUDPAt(st, pkt, from, now); resp != nil {
			b.reply(i, resp)
			answers++
		}
	}
}

// udpRefused logs an answer the kernel would not send.
func (t *Tracker) udpRefused(to netip.AddrPort, err error) {
	t.log.Debug("udp write failed", "to", to, "err", err)
}

// handleUDP answers one datagram from `from`; nil means drop it. The answer
// is in st.out and valid until the next call.
func (t *Tracker) handleUDP(st *udpState, pkt []byte, from netip.AddrPort) []byte {
	return t.handleUDPAt(st, pkt, from, t.now())
}

// handleUDPAt is handleUDP with the time the datagram arrived.
func (t *Tracker) handleUDPAt(st *udpState, pkt []byte, from netip.AddrPort, now time.Time) []byte {
	if len(pkt) < udpHeaderLen {
		return nil
	}
	from = netip.AddrPortFrom(from.Addr().Unmap().WithZone(""), from.Port())
	connID := binary.BigEndian.Uint64(pkt)
	action := binary.BigEndian.Uint32(pkt[8:])
	tid := pkt[12:16]
	switch action {
	case udpActionConnect:
		if connID != udpProtocolID {
			return nil
		}
		out := st.out[:0]
		out = binary.BigEndian.AppendUint32(out, udpActionConnect)
		out = append(out, tid...)
		return binary.BigEndian.AppendUint64(out, t.conns.make(from, now, &st.mac))
	case udpActionAnnounce, udpActionScrape:
		if !t.conns.valid(connID, from, now, &st.mac) {
			// Answer only when the answer is no larger than the request, so
			// a spoofed source gains nothing by reflection.
			if resp := udpError(st, tid, "connection id expired: connect again"); len(resp) <= len(pkt) {
				return resp
			}
			return nil
		}
	default:
		return nil
	}
	if action == udpActionScrape {
		return t.udpScrape(st, pkt, tid)
	}
	return t.udpAnnounce(st, pkt, tid, from, now)
}

func udpError(st *udpState, tid []byte, msg string) []byte {
	out := st.out[:0]
	out = binary.BigEndian.AppendUint32(out, udpActionError)
	out = append(out, tid...)
	return append(out, msg...)
}

func (t *Tracker) udpAnnounce(st *udpState, pkt, tid []byte, from netip.AddrPort, now time.Time) []byte {
	if len(pkt) < udpAnnounceLen {
		return udpError(st, tid, "malformed announce: too short")
	}
	req := &st.req
	*req = announceRequest{
		downloaded: binary.BigEndian.Uint64(pkt[56:]),
		left:       binary.BigEndian.Uint64(pkt[64:]),
		uploaded:   binary.BigEndian.Uint64(pkt[72:]),
		addr:       from.Addr(),
		port:       binary.BigEndian.Uint16(pkt[96:]),
	}
	copy(req.infoHash[:], pkt[16:36])
	copy(req.peerID[:], pkt[36:56])
	switch binary.BigEndian.Uint32(pkt[80:]) {
	case 0:
		req.event = eventNone
	case 1:
		req.event = eventCompleted
	case 2:
		req.event = eventStarted
	case 3:
		req.event = eventStopped
	default:
		return udpError(st, tid, "malformed announce: unknown event")
	}
	if ip := netip.AddrFrom4([4]byte(pkt[84:88])); t.cfg.AllowIPParam && from.Addr().Is4() && !ip.IsUnspecified() {
		req.addr = ip
	}
	limit := udpMaxPeers6
	req.family = family6
	if from.Addr().Is4() {
		limit, req.family = udpMaxPeers4, family4
	}
	if nw := int32(binary.BigEndian.Uint32(pkt[92:])); nw < 0 {
		req.numWant = min(t.cfg.NumWantDefault, limit)
	} else {
		req.numWant = min(int(nw), limit)
	}
	n, ok := udpURLData(pkt[udpAnnounceLen:], st.url[:])
	if !ok {
		return udpError(st, tid, "malformed announce: bad BEP 41 options")
	}
	pk, ok := passkeyFromURLData(st.url[:n])
	if !ok {
		return udpError(st, tid, "passkey missing: use the udp:// announce URL with your passkey from the site")
	}
	// The passkey is only read during the announce (Registry's contract),
	// and st.url is not written before the next packet: no copy needed.
	peers, c, err := t.announceAt(unsafe.String(&pk[0], len(pk)), req, now, st.peers[:0])
	st.peers = peers
	if err != nil {
		return udpError(st, tid, err.Error())
	}
	out := st.out[:0]
	out = binary.BigEndian.AppendUint32(out, udpActionAnnounce)
	out = append(out, tid...)
	out = binary.BigEndian.AppendUint32(out, uint32(t.cfg.Interval/time.Second))
	out = binary.BigEndian.AppendUint32(out, uint32(c.leechers))
	out = binary.BigEndian.AppendUint32(out, uint32(c.seeders))
	for i := range peers {
		out = appendCompact(out, peers[i].Addr)
	}
	return out
}

// udpURLData gathers the BEP 41 URL data options into dst. Options: 0 ends
// the list, 1 is a one-byte no-op, every other type carries a length byte;
// type 2 is URL data (concatenated), the rest are skipped.
func udpURLData(opts, dst []byte) (n int, ok bool) {
	for i := 0; i < len(opts); {
		typ := opts[i]
		i++
		switch typ {
		case 0:
			return n, true
		case 1:
			continue
		}
		if i >= len(opts) {
			return n, false
		}
		l := int(opts[i])
		i++
		if i+l > len(opts) {
			return n, false
		}
		if typ == 2 {
			if n+l > len(dst) {
				return n, false
			}
			n += copy(dst[n:], opts[i:i+l])
		}
		i += l
	}
	return n, true
}

// passkeyFromURLData returns the first path segment of "/<passkey>/announce?..."
// when it has a passkey's length; authorize checks its digits.
func passkeyFromURLData(u []byte) ([]byte, bool) {
	for i, c := range u {
		if c == '?' {
			u = u[:i]
			break
		}
	}
	if len(u) == 0 || u[0] != '/' {
		return nil, false
	}
	u = u[1:]
	for i, c := range u {
		if c == '/' {
			u = u[:i]
			break
		}
	}
	if len(u) != 32 {
		return nil, false
	}
	return u, true
}

func (t *Tracker) udpScrape(st *udpState, pkt, tid []byte) []byte {
	body := pkt[udpHeaderLen:]
	if len(body) == 0 || len(body)%20 != 0 {
		return udpError(st, tid, "malformed scrape: info hashes must be 20 bytes each")
	}
	if len(body)/20 > udpMaxScrape {
		return udpError(st, tid, "malformed scrape: at most 74 info hashes")
	}
	out := st.out[:0]
	out = binary.BigEndian.AppendUint32(out, udpActionScrape)
	out = append(out, tid...)
	for i := 0; i < len(body); i += 20 {
		c, _ := t.scrapeOne([20]byte(body[i : i+20]))
		out = binary.BigEndian.AppendUint32(out, uint32(c.seeders))
		out = binary.BigEndian.AppendUint32(out, uint32(c.snatches))
		out = binary.BigEndian.AppendUint32(out, uint32(c.leechers))
	}
	return out
}
