package announce

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// startServerHooked is startServer that also returns the server, to read
// what the fast path did.
func startServerHooked(t *testing.T, f *httpFixture, opts ServeOptions) (addr string, stop func() error, s *httpServer) {
	t.Helper()
	got := make(chan *httpServer, 1)
	testHookServer = func(s *httpServer) { got <- s }
	t.Cleanup(func() { testHookServer = nil })
	addr, stop = startServer(t, f.tr, opts)
	select {
	case s = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeTCP did not start")
	}
	testHookServer = nil
	return addr, stop, s
}

// fastPath reports whether this platform has the fast path.
func fastPath() bool { return runtime.GOOS == "linux" }

func dialTest(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// expectClosed waits for the server to end c (EOF or reset) without
// sending anything more, and returns how long that took.
func expectClosed(t *testing.T, br *bufio.Reader) time.Duration {
	t.Helper()
	start := time.Now()
	b, err := io.ReadAll(br)
	if len(b) != 0 {
		t.Fatalf("read %q before the close", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", time.Since(start))
	}
	return time.Since(start)
}

func expectAnnounceOK(t *testing.T, br *bufio.Reader, wantClose bool) {
	t.Helper()
	status, hdr, body := readResponse(t, br, false)
	if status != 200 || failure(decodeDict(t, body)) != "" {
		t.Fatalf("response %d %q", status, body)
	}
	if closes := hdr.Get("Connection") == "close"; closes != wantClose {
		t.Fatalf("Connection %q, want close %v", hdr.Get("Connection"), wantClose)
	}
}

// A new connection with its whole request answered on the fast path, and
// a kept-alive connection whose later requests are answered there too.
func TestServeTCPFastPathAndKeepAlive(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _, s := startServerHooked(t, f, ServeOptions{})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query()

	c, br := dialTest(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	expectAnnounceOK(t, br, true)
	expectClosed(t, br)
	if fastPath() && (s.fastAnswers.Load() != 1 || s.handOffs.Load() != 0) {
		t.Fatalf("fast answers %d, handoffs %d: want 1 and 0", s.fastAnswers.Load(), s.handOffs.Load())
	}

	c, br = dialTest(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	expectAnnounceOK(t, br, false)
	time.Sleep(50 * time.Millisecond) // the connection waits idle in the fast path's set
	for range 2 {
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		expectAnnounceOK(t, br, false)
	}
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	expectAnnounceOK(t, br, true)
	expectClosed(t, br)
	if fastPath() && (s.fastAnswers.Load() != 5 || s.handOffs.Load() != 0) {
		t.Fatalf("fast answers %d, handoffs %d: want 5 and 0", s.fastAnswers.Load(), s.handOffs.Load())
	}
}

// A request that arrives in several packets is completed and answered on
// the regular path, wherever it is cut.
func TestServeTCPSplitRequest(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _, s := startServerHooked(t, f, ServeOptions{HeaderTimeout: 5 * time.Second})
	req := "GET /" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(2), port: 7002, left: 1}.query() + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, cut := range []int{1, 10, len(req) / 2, strings.Index(req, "Host"), len(req) - 2, len(req) - 1} {
		c, br := dialTest(t, addr)
		if _, err := io.WriteString(c, req[:cut]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		// The rest in two more pieces.
		mid := cut + (len(req)-cut)/2
		io.WriteString(c, req[cut:mid])
		time.Sleep(10 * time.Millisecond)
		io.WriteString(c, req[mid:])
		expectAnnounceOK(t, br, true)
		expectClosed(t, br)
	}
	if fastPath() && s.handOffs.Load() != 6 {
		t.Fatalf("%d handoffs, want 6 (every request incomplete at first)", s.handOffs.Load())
	}
}

// Requests the fast path leaves to the regular path: pipelined, with a
// body, malformed.
func TestServeTCPFastPathHandsOver(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _ := startServer(t, f.tr, ServeOptions{})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(3), port: 7003, left: 1}.query()
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"

	c, br := dialTest(t, addr)
	io.WriteString(c, req+req+"GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	expectAnnounceOK(t, br, false)
	expectAnnounceOK(t, br, false)
	expectAnnounceOK(t, br, true)
	expectClosed(t, br)

	c, br = dialTest(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	expectAnnounceOK(t, br, true)
	expectClosed(t, br)

	c, br = dialTest(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nno colon\r\n\r\n")
	if status, _, _ := readResponse(t, br, false); status != 400 {
		t.Fatalf("malformed: %d", status)
	}
	expectClosed(t, br)
}

// A client that stops in the middle of its head, one that dribbles it
// slower than the header timeout and one that never sends are closed
// without an answer.
func TestServeTCPSlowClients(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _ := startServer(t, f.tr, ServeOptions{HeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	head := "GET /" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(4), port: 7004, left: 1}.query() + " HTTP/1.1\r\nHost: x\r\n\r\n"

	c, br := dialTest(t, addr)
	io.WriteString(c, head[:20])
	if d := expectClosed(t, br); d < 200*time.Millisecond {
		t.Fatalf("stalled head closed after %v, before the header timeout", d)
	}

	c, br = dialTest(t, addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range len(head) - 1 { // never the last byte
			if _, err := io.WriteString(c, head[i:i+1]); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if d := expectClosed(t, br); d > 5*time.Second {
		t.Fatalf("dribbling client closed after %v", d)
	}
	<-done

	// Never sends: the listener defers accepting it (about a second), then
	// the header timeout ends it.
	_, br = dialTest(t, addr)
	if d := expectClosed(t, br); d > 9*time.Second {
		t.Fatalf("silent client closed after %v", d)
	}
}

// Shutdown ends connections in every state: idle after a fast answer, in
// the middle of a head, silent; ServeTCP returns nil. A silent connection
// that the listener had not accepted yet (on Linux it defers accepting
// until data comes) is dropped by the kernel without a reset: the client
// learns it when it sends.
func TestServeTCPShutdownWithOpenConnections(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, stop := startServer(t, f.tr, ServeOptions{})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(5), port: 7005, left: 1}.query()

	idle, idleBR := dialTest(t, addr)
	io.WriteString(idle, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	expectAnnounceOK(t, idleBR, false)
	half, halfBR := dialTest(t, addr)
	io.WriteString(half, "GET "+target)
	silent, silentBR := dialTest(t, addr)
	time.Sleep(50 * time.Millisecond) // the half-sent head reaches the server

	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	for _, br := range []*bufio.Reader{idleBR, halfBR} {
		expectClosed(t, br)
	}
	io.WriteString(silent, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	expectClosed(t, silentBR)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts after shutdown")
	}
}

// MaxConns bounds the connections on the regular path: beyond it a kept-
// alive connection is closed after its fast answer, and one that needs the
// regular path at once is closed without an answer.
func TestServeTCPMaxConns(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _, s := startServerHooked(t, f, ServeOptions{MaxConns: 2})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(6), port: 7006, left: 1}.query()
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
	for range 2 {
		c, br := dialTest(t, addr)
		io.WriteString(c, req)
		expectAnnounceOK(t, br, false)
	}
	waitFor(t, "2 tracked connections", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns)+s.raw == 2
	})
	c, br := dialTest(t, addr)
	io.WriteString(c, req)
	if fastPath() {
		expectAnnounceOK(t, br, false)
	}
	expectClosed(t, br)

	c, br = dialTest(t, addr)
	io.WriteString(c, req[:10])
	expectClosed(t, br)

	// Connection: close needs no slot.
	c, br = dialTest(t, addr)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if fastPath() {
		expectAnnounceOK(t, br, true)
	}
	expectClosed(t, br)
}

// FuzzParseSplit checks the two ways the server feeds the parser beside a
// plain connection: the bytes of the first read alone (the fast path,
// which answers only a complete head that used up every byte read and has
// no body) and the bytes already read followed by the connection (the
// handoff). Neither may parse differently from the whole stream.
func FuzzParseSplit(f *testing.F) {
	for _, s := range []string{
		"GET /0123456789abcdef0123456789abcdef/announce?info_hash=%12%34&peer_id=-TR4060-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=0&compact=1&event=started HTTP/1.1\r\nHost: 127.0.0.1:6969\r\nUser-Agent: Transmission/4.0.6\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip\r\nConnection: close\r\n\r\n",
		"GET /pk/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /pk/scrape HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HEAD http://h:6969/pk/announce?x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4, [2001:db8::1]:5\r\nX-Real-IP: 5.6.7.8\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"GET /a HTTP/1.1\nHost: h\n\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r",
	} {
		for _, cut := range []uint16{0, 1, 5, 40, 200, 0xffff} {
			f.Add(s, cut, true)
		}
	}
	type result struct {
		method, path, rawQuery string
		http11, keepAlive      bool
		hasBody                bool
		xff, xRealIP           string
		status                 int  // of an *httpError
		other                  bool // another error (EOF)
	}
	parse := func(r io.Reader, proxy bool) (result, *bufio.Reader) {
		br := bufio.NewReaderSize(r, maxRequestLine)
		var p headParser
		req, err := p.parse(br, proxy)
		if err != nil {
			var he *httpError
			if errors.As(err, &he) {
				return result{status: he.status}, br
			}
			return result{other: true}, br
		}
		return result{method: req.method, path: req.path, rawQuery: req.rawQuery, http11: req.http11, keepAlive: req.keepAlive,
			hasBody: req.hasBody, xff: strings.Join(req.xff, "|"), xRealIP: strings.Join(req.xRealIP, "|")}, br
	}
	f.Fuzz(func(t *testing.T, raw string, cut uint16, proxy bool) {
		n := min(int(cut), len(raw))
		whole, _ := parse(strings.NewReader(raw), proxy)
		pre := &prefixReader{b: []byte(raw[:n]), r: strings.NewReader(raw[n:])}
		if split, _ := parse(pre, proxy); split != whole {
			t.Fatalf("cut at %d: %+v, whole: %+v", n, split, whole)
		}
		first := &prefixReader{b: []byte(raw[:n])}
		fast, br := parse(first, proxy)
		if fast.status != 0 || fast.other || fast.hasBody || br.Buffered() > 0 || len(first.b) > 0 {
			return // handed to the regular path
		}
		if fast != whole {
			t.Fatalf("first %d bytes: %+v, whole: %+v", n, fast, whole)
		}
	})
}

// With one P the fast path's lone loop waits with short deadlines
// while connections keep coming and long ones when quiet (pollPause):
// announces in a burst, after a quiet spell and after a long one are all
// answered on the fast path, and shutdown still ends it.
func TestServeTCPFastPathAlone(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f := newHTTPFixture(t, nil)
	addr, stop, s := startServerHooked(t, f, ServeOptions{})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query()
	announce := func() {
		t.Helper()
		c, br := dialTest(t, addr)
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		expectAnnounceOK(t, br, true)
		c.Close()
	}
	const burst = 50
	for range burst {
		announce()
	}
	time.Sleep(10 * pollTries * pollPause) // quiet: long deadlines
	announce()
	time.Sleep(listenerCheck + 100*time.Millisecond) // past a long deadline
	announce()
	if fastPath() && (s.fastAnswers.Load() != burst+2 || s.handOffs.Load() != 0) {
		t.Fatalf("fast answers %d, handoffs %d: want %d and 0", s.fastAnswers.Load(), s.handOffs.Load(), burst+2)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// A kept-alive connection waits in the fast path's epoll set between
// requests, with one P as with several: its next whole request is answered
// there; a split, pipelined or malformed one is handed to the regular path
// and answered there; a client that closes or resets leaves the set, and
// the count MaxConns bounds goes back to zero.
func TestServeTCPFastPathKeptConnections(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			f := newHTTPFixture(t, nil)
			addr, _, s := startServerHooked(t, f, ServeOptions{HeaderTimeout: 5 * time.Second})
			target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(8), port: 7008, left: 1}.query()
			req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"

			// Several kept connections, their requests interleaved.
			const conns, rounds = 8, 5
			cs := make([]net.Conn, conns)
			brs := make([]*bufio.Reader, conns)
			for i := range conns {
				cs[i], brs[i] = dialTest(t, addr)
			}
			for range rounds {
				for i := range conns {
					io.WriteString(cs[i], req)
				}
				for i := range conns {
					expectAnnounceOK(t, brs[i], false)
				}
			}
			if fastPath() {
				if s.fastAnswers.Load() != conns*rounds || s.handOffs.Load() != 0 {
					t.Fatalf("fast answers %d, handoffs %d: want %d and 0", s.fastAnswers.Load(), s.handOffs.Load(), conns*rounds)
				}
				s.mu.Lock()
				raw := s.raw
				s.mu.Unlock()
				if raw != conns {
					t.Fatalf("%d kept connections counted, want %d", raw, conns)
				}
			}

			// Split after a while idle: completed on the regular path.
			io.WriteString(cs[0], req[:15])
			time.Sleep(30 * time.Millisecond)
			io.WriteString(cs[0], req[15:])
			expectAnnounceOK(t, brs[0], false)
			// Pipelined.
			io.WriteString(cs[1], req+req)
			expectAnnounceOK(t, brs[1], false)
			expectAnnounceOK(t, brs[1], false)
			// Malformed: 400 and closed.
			io.WriteString(cs[2], "GET "+target+" HTTP/1.1\r\nno colon\r\n\r\n")
			if status, _, _ := readResponse(t, brs[2], false); status != 400 {
				t.Fatalf("malformed on a kept connection: %d", status)
			}
			expectClosed(t, brs[2])
			if fastPath() && s.handOffs.Load() != 3 {
				t.Fatalf("%d handoffs, want 3", s.handOffs.Load())
			}
			// The handed-off ones go on serving.
			for _, i := range []int{0, 1} {
				io.WriteString(cs[i], req)
				expectAnnounceOK(t, brs[i], false)
			}

			// Closed and reset by their clients: they leave the set.
			cs[3].Close()
			cs[4].(*net.TCPConn).SetLinger(0)
			cs[4].Close()
			for _, i := range []int{0, 1, 5, 6, 7} {
				cs[i].Close()
			}
			waitFor(t, "no connection counted", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.raw == 0 && len(s.conns) == 0
			})
		})
	}
}

// A kept-alive connection in a fast path loop's set is closed once idle
// for IdleTimeout (within a sweep), counted from its last answer, so one
// that keeps sending requests stays open past it.
func TestServeTCPFastPathIdleTimeout(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			f := newHTTPFixture(t, nil)
			const idle = 300 * time.Millisecond
			addr, _, s := startServerHooked(t, f, ServeOptions{IdleTimeout: idle})
			target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(9), port: 7009, left: 1}.query()
			req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"

			quiet, quietBR := dialTest(t, addr)
			busy, busyBR := dialTest(t, addr)
			io.WriteString(quiet, req)
			expectAnnounceOK(t, quietBR, false)
			start := time.Now()
			done := make(chan time.Duration, 1)
			go func() {
				b, _ := io.ReadAll(quietBR)
				if len(b) != 0 {
					t.Errorf("read %q before the close", b)
				}
				done <- time.Since(start)
			}()
			for time.Since(start) < 3*idle {
				io.WriteString(busy, req)
				expectAnnounceOK(t, busyBR, false)
				time.Sleep(idle / 4)
			}
			if d := <-done; d < idle || d > idle+500*time.Millisecond {
				t.Fatalf("idle connection closed after %v, want %v to %v", d, idle, idle+500*time.Millisecond)
			}
			if fastPath() && s.handOffs.Load() != 0 {
				t.Fatalf("%d handoffs, want none", s.handOffs.Load())
			}
			// The busy one is still open.
			io.WriteString(busy, req)
			expectAnnounceOK(t, busyBR, false)
		})
	}
}
