package announce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedbank/seedbank/pace"
)

// The tracker's own HTTP/1.1 server. A client's announce is one small GET
// answered with a small body; net/http's general machinery (a context, a
// header map, a response writer, a buffered writer and a goroutine handoff
// per request) cost more than half of a new-connection announce (see
// BENCHMARKS.md). This server does one read, one write and, for
// "Connection: close", one close per announce.
//
// Allocation budget of an announce over a kept-alive connection (measured
// by BenchmarkServeConnKeepAlive): 0 in this package. A new connection adds
// what net's Accept allocates and a goroutine.
//
// On Linux a TCP listener is served by the fast path in
// httpserve_linux.go: a connection whose whole request has arrived by the
// time it is accepted (the usual case: the listener defers accepting until
// data is there) is accepted, read, answered, written and closed with four
// system calls by an event loop, without Go's poller, and a kept-alive one
// waits for its next request in that loop's epoll set; every other
// connection (incomplete request, slow client, a body, an error to answer)
// is handed to the regular per-connection path below.

// ServeOptions tune ServeTCP. Zero fields take the defaults.
type ServeOptions struct {
	// HeaderTimeout bounds reading one request head and writing its answer.
	// Default 10s.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Default 120s.
	IdleTimeout time.Duration
	// MaxConns bounds the connections held open (kept-alive, slow or
	// still sending); a connection that would stay open beyond the bound
	// is closed (after its answer, when one was written). A request
	// answered at once on a new connection that then closes holds no
	// connection slot. Default 10000.
	MaxConns int
	// Observe, when set, is called after each response with its status
	// code and the time from the end of reading the request head.
	Observe func(status int, d time.Duration)
}

func (o ServeOptions) withDefaults() ServeOptions {
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	return o
}

// connState is one connection's reusable memory, pooled across
// connections.
type connState struct {
	br  *bufio.Reader
	pre prefixReader
	p   headParser
	out []byte
}

// prefixReader reads b, then r (io.EOF when r is nil): a connection's
// bytes already read by the fast path, then the connection.
type prefixReader struct {
	b []byte
	r io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.b) > 0 {
		n := copy(b, p.b)
		p.b = p.b[n:]
		return n, nil
	}
	if p.r == nil {
		return 0, io.EOF
	}
	return p.r.Read(b)
}

// job is a connection for the regular path, with what the fast path
// already did on it.
type job struct {
	c net.Conn
	// in: bytes already read from c (an incomplete or unusual request,
	// parsed again from the start).
	in []byte
	// pending: the rest of a response the fast path could not write at
	// once; status, start and keepAlive describe it.
	pending   []byte
	status    int
	start     time.Time
	keepAlive bool
	// idle: a response was written; wait for the next request with the
	// idle timeout.
	idle bool
}

var connStates = sync.Pool{New: func() any {
	return &connState{br: bufio.NewReaderSize(nil, maxRequestLine), out: make([]byte, 0, 2048)}
}}

// httpServer is one ServeTCP call.
type httpServer struct {
	t    *Tracker
	opts ServeOptions

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// raw counts the kept-alive connections waiting in the Linux fast
	// path's epoll sets (not in conns); MaxConns bounds both together.
	raw      int
	shutdown atomic.Bool
	wg       sync.WaitGroup
	// work hands accepted connections to idle workers. A worker serves
	// connection after connection and keeps its grown stack, so a new
	// connection costs neither a goroutine start nor stack growth (6% of
	// a new-connection announce's CPU when each had its own goroutine).
	work chan job

	// What the Linux fast path did, for tests: answers it wrote itself and
	// connections it handed to the regular path.
	fastAnswers, handOffs atomic.Uint64
}

// testHookServer, when set (by tests), sees each ServeTCP's server before
// it accepts, once the listener is set up: a client that connected
// earlier would find the fast path's deferred accepting not yet on.
var testHookServer func(*httpServer)

// ready calls testHookServer.
func (s *httpServer) ready() {
	if testHookServer != nil {
		testHookServer(s)
	}
}

// workerIdle is how long an idle connection worker waits for another
// connection before it exits.
const workerIdle = 10 * time.Second

// ListenTCP opens the HTTP tracker's listener on addr. Accepted connections
// get no TCP keepalive: the tracker's server closes idle connections
// itself, and Go's default keepalive costs four setsockopt calls on every
// accepted connection (4% of the CPU of a new-connection announce).
func ListenTCP(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("announce: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// ServeTCP serves the HTTP tracker (the same answers as Handler) on ln with
// the tracker's own HTTP/1.1 server until ctx is done, then closes ln,
// closes idle connections, lets the requests being answered finish and
// returns nil. It returns an error if accepting fails otherwise (ln closed
// by someone else). Requests are GET or HEAD of .../<passkey>/announce or
// .../<passkey>/scrape; connections are kept alive unless the client asks
// otherwise; malformed requests get 400, over-long ones 414 or 431, other
// paths 404, other methods 405.
func (t *Tracker) ServeTCP(ctx context.Context, ln net.Listener, opts ServeOptions) error {
	s := &httpServer{t: t, opts: opts.withDefaults(), conns: map[net.Conn]struct{}{}, work: make(chan job)}
	defer close(s.work) // idle workers exit
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.closeAll()
	})
	defer stop()
	served, err := s.serveFast(ctx, ln)
	if !served {
		s.ready()
		err = s.acceptLoop(ctx, ln)
	}
	if ctx.Err() != nil {
		// The AfterFunc may not have run yet (the fast path's loops end
		// on their own when ctx is done): closed before returning.
		ln.Close()
		s.closeAll()
		s.wg.Wait()
		return nil
	}
	s.closeAll()
	s.wg.Wait()
	return fmt.Errorf("announce: http accept: %w", err)
}

// acceptLoop accepts connections on ln for the regular path until ln is
// closed, and returns the error that ended it.
func (s *httpServer) acceptLoop(ctx context.Context, ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry.
			backoff = s.acceptBackoff(backoff, err)
			continue
		}
		backoff = 0
		s.dispatch(job{c: c})
	}
}

// acceptBackoff logs a failed accept (out of file descriptors and the
// like), sleeps and returns the next, longer wait.
func (s *httpServer) acceptBackoff(backoff time.Duration, err error) time.Duration {
	backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
	s.t.log.Warn("http tracker accept failed; retrying", "err", err, "retry_in", backoff)
	time.Sleep(backoff)
	return backoff
}

// dispatch hands j to an idle worker or a new one, or closes its
// connection when shutting down or at MaxConns.
func (s *httpServer) dispatch(j job) {
	if !s.track(j.c) {
		j.c.Close()
		return
	}
	select {
	case s.work <- j:
	default:
		go s.worker(j)
	}
}

// worker serves j, then further connections from s.work until none comes
// for workerIdle.
func (s *httpServer) worker(j job) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.serveConn(j)
		idle.Reset(workerIdle)
		select {
		case next, ok := <-s.work:
			if !ok {
				return
			}
			j = next
		case <-idle.C:
			return
		}
	}
}

func (s *httpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// trackRaw counts a kept-alive connection of the fast path, unless
// shutting down or at MaxConns.
func (s *httpServer) trackRaw() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full() {
		return false
	}
	s.raw++
	return true
}

// full reports whether no connection may be held open now: shutting down
// or at MaxConns. s.mu is held.
func (s *httpServer) full() bool {
	return s.shutdown.Load() || len(s.conns)+s.raw >= s.opts.MaxConns
}

func (s *httpServer) untrackRaw() {
	s.mu.Lock()
	s.raw--
	s.mu.Unlock()
}

func (s *httpServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// closeAll makes every connection's pending and future reads fail, so idle
// connections close now and busy ones after their current response.
func (s *httpServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown.Store(true)
	for c := range s.conns {
		c.SetReadDeadline(time.Unix(1, 0))
	}
}

// remoteAddr returns the peer address of c, invalid if it has none.
func remoteAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case nil:
		return netip.Addr{}
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		return ap.Addr()
	}
}

// serveConn serves the connection of j (tracked) until it closes or
// fails, then closes it.
func (s *httpServer) serveConn(j job) {
	c := j.c
	defer s.untrack(c)
	defer c.Close()
	cs := connStates.Get().(*connState)
	if len(j.in) > 0 {
		cs.pre = prefixReader{b: j.in, r: c}
		cs.br.Reset(&cs.pre)
	} else {
		cs.br.Reset(c)
	}
	defer func() {
		cs.br.Reset(nil)
		cs.pre = prefixReader{}
		if cap(cs.out) <= 64<<10 {
			cs.out = cs.out[:0]
			connStates.Put(cs)
		}
	}()
	if len(j.pending) > 0 {
		c.SetWriteDeadline(time.Now().Add(s.opts.HeaderTimeout))
		if _, err := c.Write(j.pending); err != nil {
			return
		}
		s.observe(j.status, j.start, false)
		if !j.keepAlive {
			return
		}
		j.idle = true
	}
	remote := remoteAddr(c)
	wantProxy := remote.IsValid() && s.t.trustedProxy(remote.Unmap())
	for first := !j.idle; ; first = false {
		// Each deadline is set before checking for shutdown: closeAll
		// sets the flag before it moves the deadlines into the past.
		if !first && cs.br.Buffered() == 0 {
			// Idle between requests: wait for the next one's first byte.
			c.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
			if s.shutdown.Load() {
				return
			}
			if _, err := cs.br.Peek(1); err != nil {
				return
			}
		}
		c.SetDeadline(time.Now().Add(s.opts.HeaderTimeout))
		if s.shutdown.Load() {
			return
		}
		req, err := cs.p.parse(cs.br, wantProxy)
		if err != nil {
			var he *httpError
			if errors.As(err, &he) {
				cs.out = appendHTTPError(cs.out[:0], he.status, he.msg)
				if _, err := c.Write(cs.out); err == nil {
					lingerClose(c)
				}
			}
			return
		}
		start := s.now()
		status := s.answer(cs, req, remote)
		if _, err := c.Write(cs.out); err != nil {
			return
		}
		s.observe(status, start, true)
		if req.hasBody {
			lingerClose(c) // the unread body must not turn the close into a reset
		}
		if !req.keepAlive {
			return
		}
	}
}

// now returns the time a response's observation starts from, zero when
// nothing observes.
func (s *httpServer) now() time.Time {
	if s.opts.Observe == nil {
		return time.Time{}
	}
	return time.Now()
}

// observe reports a written response to Observe, and to pace (an answer
// loop made progress; kept: a kept-alive connection's goroutine, one of
// many that the poller readies together).
func (s *httpServer) observe(status int, start time.Time, kept bool) {
	now := time.Now()
	if kept {
		pace.ProgressMany(now)
	} else {
		pace.Progress(now)
	}
	if s.opts.Observe != nil {
		s.opts.Observe(status, now.Sub(start))
	}
}

// lingerClose half-closes c and discards what the client still sends, for
// at most a moment, so that closing with unread input does not reset the
// connection before the client has read the response.
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	cw.CloseWrite()
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var buf [512]byte
	for range 128 {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// answer writes the whole response to req into cs.out and returns its
// status.
func (s *httpServer) answer(cs *connState, req *httpRequest, remote netip.Addr) int {
	out := cs.out[:0]
	passkey, action, ok := splitTrackerPath(req.path)
	if !ok {
		cs.out = appendHTTPText(out, req, 404, "404 page not found\n", "")
		return 404
	}
	if req.method != "GET" && req.method != "HEAD" {
		cs.out = appendHTTPText(out, req, 405, "method not allowed\n", "Allow: GET, HEAD\r\n")
		return 405
	}
	t := s.t
	st := t.getState()
	tr := trackerRequest{rawQuery: req.rawQuery, remote: remote, xff: req.xff, xRealIP: req.xRealIP}
	st.buf = t.trackerResponse(st, action, passkey, &tr)
	out = appendStatusLine(out, req, 200)
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(st.buf)), 10)
	out = append(out, "\r\n\r\n"...)
	if req.method != "HEAD" {
		out = append(out, st.buf...)
	}
	t.putState(st)
	cs.out = out
	return 200
}

func appendStatusLine(out []byte, req *httpRequest, status int) []byte {
	if req.http11 {
		out = append(out, "HTTP/1.1 "...)
	} else {
		out = append(out, "HTTP/1.0 "...)
	}
	switch status {
	case 200:
		out = append(out, "200 OK\r\n"...)
	case 404:
		out = append(out, "404 Not Found\r\n"...)
	case 405:
		out = append(out, "405 Method Not Allowed\r\n"...)
	}
	switch {
	case !req.keepAlive:
		out = append(out, "Connection: close\r\n"...)
	case !req.http11:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	return out
}

// appendHTTPText appends a plain-text response with extra header lines.
func appendHTTPText(out []byte, req *httpRequest, status int, body, extra string) []byte {
	out = appendStatusLine(out, req, status)
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	out = append(out, extra...)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	if req.method != "HEAD" {
		out = append(out, body...)
	}
	return out
}

// appendHTTPError appends the response to a request that could not be
// parsed; the connection closes after it.
func appendHTTPError(out []byte, status int, msg string) []byte {
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	switch status {
	case 400:
		out = append(out, " Bad Request"...)
	case 414:
		out = append(out, " URI Too Long"...)
	case 431:
		out = append(out, " Request Header Fields Too Large"...)
	case 505:
		out = append(out, " HTTP Version Not Supported"...)
	}
	out = append(out, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(msg)+1), 10)
	out = append(out, "\r\n\r\n"...)
	out = append(out, msg...)
	return append(out, '\n')
}
