package loadgen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// BEP 15 announce events (the HTTP names are in httpEvents).
const (
	EventNone      = 0
	EventCompleted = 1
	EventStarted   = 2
	EventStopped   = 3
)

var httpEvents = [...]string{"", "&event=completed", "&event=started", "&event=stopped"}

// numWant is asked for by every announce.
const numWant = 50

// announceArgs is one announce to send.
type announceArgs struct {
	hash             *[20]byte
	passkey          string // "" sends none
	peerID           [20]byte
	port             uint16
	up, down, left   uint64
	event            int
	maxPeers         int
	reconnectedCount *int64
}

// client sends announces to one tracker over one protocol. Not safe for
// concurrent use: each worker has its own.
type client interface {
	announce(a *announceArgs) (AnnounceResult, error)
	close()
}

// httpClient speaks just enough HTTP/1.1 to announce: a request line built
// into a reused buffer, a response parsed without allocating.
type httpClient struct {
	addr      string
	keepAlive bool
	timeout   time.Duration
	conn      net.Conn
	br        *bufio.Reader
	req       []byte
	body      []byte
	dials     int64
}

func newHTTPClient(addr string, keepAlive bool, timeout time.Duration) *httpClient {
	return &httpClient{addr: addr, keepAlive: keepAlive, timeout: timeout,
		req: make([]byte, 0, 512), body: make([]byte, 0, 1024)}
}

// abort closes the connection with a reset once the whole response is read.
// All benchmark clients share one address, 127.0.0.1, so a normal close
// would leave the server (which closes first) a TIME_WAIT socket per
// announce; a few seconds in, new connections would reuse their 4-tuples
// and stall a second on SYN retransmits. Real clients come from many
// addresses and never hit this. A reset costs both trackers the same.
func (c *httpClient) abort() {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.close()
}

func (c *httpClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

const hexDigits = "0123456789ABCDEF"

// appendEscaped percent-encodes everything but unreserved characters.
func appendEscaped(b []byte, s []byte) []byte {
	for _, ch := range s {
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '.' || ch == '_' || ch == '~' {
			b = append(b, ch)
			continue
		}
		b = append(b, '%', hexDigits[ch>>4], hexDigits[ch&15])
	}
	return b
}

// AppendAnnounceRequest appends an HTTP/1.1 GET of an announce.
func appendAnnounceRequest(b []byte, a *announceArgs, keepAlive bool) []byte {
	b = append(b, "GET /"...)
	if a.passkey != "" {
		b = append(b, a.passkey...)
		b = append(b, '/')
	}
	b = append(b, "announce?info_hash="...)
	b = appendEscaped(b, a.hash[:])
	b = append(b, "&peer_id="...)
	b = appendEscaped(b, a.peerID[:])
	b = append(b, "&port="...)
	b = strconv.AppendUint(b, uint64(a.port), 10)
	b = append(b, "&uploaded="...)
	b = strconv.AppendUint(b, a.up, 10)
	b = append(b, "&downloaded="...)
	b = strconv.AppendUint(b, a.down, 10)
	b = append(b, "&left="...)
	b = strconv.AppendUint(b, a.left, 10)
	b = append(b, "&compact=1&numwant="...)
	b = strconv.AppendUint(b, numWant, 10)
	b = append(b, httpEvents[a.event]...)
	b = append(b, " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: seedbank-loadgen/1\r\n"...)
	if !keepAlive {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

func (c *httpClient) announce(a *announceArgs) (AnnounceResult, error) {
	c.req = appendAnnounceRequest(c.req[:0], a, c.keepAlive)
	reused := c.conn != nil
	body, serverClose, err := c.roundTrip()
	if err != nil && reused && errors.Is(err, errConnGone) {
		// The server closed an idle keep-alive connection (opentracker
		// closes after every response): dial again once.
		if a.reconnectedCount != nil {
			*a.reconnectedCount++
		}
		body, serverClose, err = c.roundTrip()
	}
	if err != nil {
		c.close()
		return AnnounceResult{Complete: -1, Incomplete: -1}, err
	}
	if !c.keepAlive || serverClose {
		c.abort()
	}
	return ValidateAnnounceBody(body, a.maxPeers)
}

// errConnGone is a reused connection that was closed before any response byte.
var errConnGone = errors.New("connection closed by server before the response")

func (c *httpClient) roundTrip() (body []byte, serverClose bool, err error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return nil, false, fmt.Errorf("dial: %w", err)
		}
		c.dials++
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 4096)
		} else {
			c.br.Reset(conn)
		}
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write(c.req); err != nil {
		c.close()
		return nil, false, fmt.Errorf("%w: write: %v", errConnGone, err)
	}
	body, serverClose, err = ReadHTTPResponse(c.br, c.body[:0])
	if err != nil {
		c.close()
		return nil, false, err
	}
	if cap(body) > cap(c.body) {
		c.body = body[:0]
	}
	return body, serverClose, nil
}

// ReadHTTPResponse reads one HTTP/1.x response from br, appending its body
// to buf. It wants status 200 and a Content-Length, or a connection the
// server closes after the body. serverClose reports that the server will
// close the connection (HTTP/1.0 without keep-alive, or "Connection: close").
func ReadHTTPResponse(br *bufio.Reader, buf []byte) (body []byte, serverClose bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
			return nil, false, errConnGone
		}
		return nil, false, fmt.Errorf("%w: status line: %v", ErrHTTP, err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return nil, false, fmt.Errorf("%w: status line %q", ErrHTTP, line)
	}
	http10 := line[7] == '0'
	serverClose = http10
	if !bytes.HasPrefix(line[9:], []byte("200")) {
		return nil, false, fmt.Errorf("%w: status %q", ErrHTTP, bytes.TrimSpace(line[9:]))
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return nil, false, fmt.Errorf("%w: headers: %v", ErrHTTP, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false, fmt.Errorf("%w: header line %q", ErrHTTP, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > 1<<20 {
				return nil, false, fmt.Errorf("%w: Content-Length %q", ErrHTTP, value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				serverClose = true
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				serverClose = false
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return nil, false, fmt.Errorf("%w: Transfer-Encoding %q not expected for an announce", ErrHTTP, value)
		}
	}
	if length < 0 {
		if !serverClose {
			return nil, false, fmt.Errorf("%w: no Content-Length on a kept-alive connection", ErrHTTP)
		}
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := br.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if errors.Is(err, io.EOF) {
				return buf, true, nil
			}
			if err != nil {
				return nil, false, fmt.Errorf("%w: body: %v", ErrHTTP, err)
			}
			if len(buf) > 1<<20 {
				return nil, false, fmt.Errorf("%w: body over 1 MiB", ErrHTTP)
			}
		}
	}
	if cap(buf) < length {
		buf = make([]byte, 0, length)
	}
	buf = buf[:length]
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, false, fmt.Errorf("%w: body: %v", ErrHTTP, err)
	}
	return buf, serverClose, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// udpClient announces over one connected UDP socket (BEP 15), with the
// passkey in a BEP 41 URL-data option when it has one.
type udpClient struct {
	conn     *net.UDPConn
	timeout  time.Duration
	connID   uint64
	connAt   time.Time
	tid      uint32
	out, in  []byte
	connects int64
}

func newUDPClient(addr string, timeout time.Duration, seed uint32) (*udpClient, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	return &udpClient{conn: conn, timeout: timeout, tid: seed << 16,
		out: make([]byte, 0, 256), in: make([]byte, 2048)}, nil
}

func (c *udpClient) close() { c.conn.Close() }

// udpConnIDMaxAge is how long a connection id is reused; BEP 15 promises
// at least two minutes.
const udpConnIDMaxAge = time.Minute

// exchange sends c.out and returns the response with the matching
// transaction id, dropping late answers to earlier (timed-out) requests.
func (c *udpClient) exchange(tid uint32) ([]byte, error) {
	if _, err := c.conn.Write(c.out); err != nil {
		return nil, fmt.Errorf("udp write: %w", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		n, err := c.conn.Read(c.in)
		if err != nil {
			return nil, fmt.Errorf("udp read: %w", err)
		}
		if n >= 8 && binary.BigEndian.Uint32(c.in[4:]) != tid && binary.BigEndian.Uint32(c.in[4:]) < tid {
			continue // a late answer to an earlier request
		}
		return c.in[:n], nil
	}
}

func (c *udpClient) connect() error {
	c.tid++
	c.out = binary.BigEndian.AppendUint64(c.out[:0], UDPProtocolID)
	c.out = binary.BigEndian.AppendUint32(c.out, udpConnect)
	c.out = binary.BigEndian.AppendUint32(c.out, c.tid)
	pkt, err := c.exchange(c.tid)
	if err != nil {
		return err
	}
	id, err := ValidateUDPConnect(pkt, c.tid)
	if err != nil {
		return err
	}
	c.connects++
	c.connID, c.connAt = id, time.Now()
	return nil
}

// appendUDPAnnounce appends a BEP 15 announce, plus the BEP 41 URL data
// "/<passkey>/announce" when a.passkey is set.
func appendUDPAnnounce(b []byte, connID uint64, tid uint32, a *announceArgs) []byte {
	b = binary.BigEndian.AppendUint64(b, connID)
	b = binary.BigEndian.AppendUint32(b, udpAnnounce)
	b = binary.BigEndian.AppendUint32(b, tid)
	b = append(b, a.hash[:]...)
	b = append(b, a.peerID[:]...)
	b = binary.BigEndian.AppendUint64(b, a.down)
	b = binary.BigEndian.AppendUint64(b, a.left)
	b = binary.BigEndian.AppendUint64(b, a.up)
	b = binary.BigEndian.AppendUint32(b, uint32(a.event))
	b = binary.BigEndian.AppendUint32(b, 0) // ip: the sender's
	b = binary.BigEndian.AppendUint32(b, tid^0x9e3779b9)
	b = binary.BigEndian.AppendUint32(b, numWant)
	b = binary.BigEndian.AppendUint16(b, a.port)
	if a.passkey != "" {
		url := len("/") + len(a.passkey) + len("/announce")
		b = append(b, 2, byte(url), '/')
		b = append(b, a.passkey...)
		b = append(b, "/announce"...)
		b = append(b, 0)
	}
	return b
}

func (c *udpClient) announce(a *announceArgs) (AnnounceResult, error) {
	for attempt := 0; ; attempt++ {
		if c.connID == 0 || time.Since(c.connAt) > udpConnIDMaxAge {
			if err := c.connect(); err != nil {
				return AnnounceResult{Complete: -1, Incomplete: -1}, fmt.Errorf("connect: %w", err)
			}
		}
		c.tid++
		c.out = appendUDPAnnounce(c.out[:0], c.connID, c.tid, a)
		pkt, err := c.exchange(c.tid)
		if err != nil {
			return AnnounceResult{Complete: -1, Incomplete: -1}, err
		}
		res, err := ValidateUDPAnnounce(pkt, c.tid, a.maxPeers)
		if err != nil && attempt == 0 && errors.Is(err, ErrFailure) && bytes.Contains(pkt, []byte("connection id")) {
			c.connID = 0 // expired: connect again and retry once
			continue
		}
		return res, err
	}
}

// Probe sends one HTTP announce with event=stopped for a peer that never
// started (so it changes nothing) to the passkey-less tracker at addr and
// reports whether it got a valid answer.
func Probe(addr string, hash *[20]byte) error {
	c := newHTTPClient(addr, false, 2*time.Second)
	defer c.close()
	a := announceArgs{hash: hash, port: PortBase - 1, left: 1, event: EventStopped, maxPeers: numWant}
	copy(a.peerID[:], "-SB0100-probe0000000")
	_, err := c.announce(&a)
	return err
}
