package announce

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// rawExchange runs the request head raw through the tracker's own server
// (parser and responder) as if it came from remote, and returns the status,
// the response head and the body.
func rawExchange(t testing.TB, tr *Tracker, remote, raw string) (status int, head string, body []byte) {
	t.Helper()
	ap := netip.MustParseAddrPort(remote)
	s := &httpServer{t: tr}
	var cs connState
	br := bufio.NewReaderSize(strings.NewReader(raw), maxRequestLine)
	req, err := cs.p.parse(br, tr.trustedProxy(ap.Addr().Unmap()))
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			t.Fatalf("parse %q: %v", raw, err)
		}
		cs.out = appendHTTPError(nil, he.status, he.msg)
	} else {
		s.answer(&cs, req, ap.Addr())
	}
	return splitResponse(t, cs.out)
}

// splitResponse checks a whole HTTP response and splits it.
func splitResponse(t testing.TB, resp []byte) (status int, head string, body []byte) {
	t.Helper()
	h, b, ok := bytes.Cut(resp, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("response without end of head: %q", resp)
	}
	head = string(h)
	if _, err := fmt.Sscanf(head, "HTTP/1.%d %d", new(int), &status); err != nil {
		t.Fatalf("status line of %q: %v", head, err)
	}
	var n int
	for _, l := range strings.Split(head, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Content-Length: "); ok {
			fmt.Sscan(v, &n)
		}
	}
	if n != len(b) {
		t.Fatalf("Content-Length %d, body %d bytes: %q", n, len(b), resp)
	}
	return status, head, b
}

// startServer runs ServeTCP on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, tr *Tracker, opts ServeOptions) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.ServeTCP(ctx, ln, opts) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(10 * time.Second):
				result = errors.New("ServeTCP did not return after cancel")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String(), stop
}

// readResponse reads one HTTP response from br, body by Content-Length.
// The response's Connection header is reported as net/http sees it: "close"
// when the server said so.
func readResponse(t testing.TB, br *bufio.Reader, head bool) (status int, hdr http.Header, body []byte) {
	t.Helper()
	var req *http.Request
	if head {
		req, _ = http.NewRequest("HEAD", "/", nil)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	if !head {
		if body, err = io.ReadAll(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	if resp.Close {
		resp.Header.Set("Connection", "close")
	}
	return resp.StatusCode, resp.Header, body
}

func TestServeTCPAnnounceAndScrape(t *testing.T) {
	f := newHTTPFixture(t, func(c *Config) { c.NumWantMax = 4 })
	var mu sync.Mutex
	observed := map[int]int{}
	addr, _ := startServer(t, f.tr, ServeOptions{Observe: func(code int, d time.Duration) {
		mu.Lock()
		observed[code]++
		mu.Unlock()
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
	}})
	base := "http://" + addr + "/" + f.pk
	var conns, reused int
	client := &http.Client{}
	get := func(url string) (*http.Response, []byte) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			conns++
			if i.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	for i := range 6 {
		resp, b := get(base + "/announce?" + ann{ih: f.ih, id: peerID(i), port: 7000 + i, left: uint64(i % 2), event: "started"}.query())
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
			resp.Header.Get("Cache-Control") != "no-store" || resp.ContentLength != int64(len(b)) {
			t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
		}
		if r := failure(decodeDict(t, b)); r != "" {
			t.Fatal(r)
		}
	}
	_, b := get(base + "/announce?" + ann{ih: f.ih, id: peerID(9), port: 7009, left: 1, extra: "&numwant=10"}.query())
	m := decodeDict(t, b)
	peers := compactPeers(t, m["peers"], 6)
	if len(peers) != 4 || m["complete"] != int64(3) || m["incomplete"] != int64(4) {
		t.Fatalf("announce answer %v, peers %v", m, peers)
	}
	for _, p := range peers {
		if p.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("peer address %v, want the connection's", p)
		}
	}
	_, b = get(base + "/scrape?info_hash=" + escape(f.ih[:]) + "&info_hash=" + escape(f.unknown[:]))
	files := decodeDict(t, b)["files"].(map[string]any)
	st, ok := files[string(f.ih[:])].(map[string]any)
	if len(files) != 1 || !ok || st["complete"] != int64(3) || st["incomplete"] != int64(4) {
		t.Fatalf("scrape %v", files)
	}
	if conns != 8 || reused != 7 {
		t.Fatalf("%d requests, %d on a reused connection: want keep-alive", conns, reused)
	}
	// Observe runs after the response is written: wait for the last one.
	waitFor(t, "8 observed 200s", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return observed[200] == 8 && len(observed) == 1
	})
}

func escape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02x", c)
	}
	return s.String()
}

// TestServeTCPConnections checks keep-alive, Connection: close, HTTP/1.0,
// pipelining and HEAD on raw connections.
func TestServeTCPConnections(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _ := startServer(t, f.tr, ServeOptions{})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query()
	dial := func() (net.Conn, *bufio.Reader) { return dialTest(t, addr) }
	expectEOF := func(br *bufio.Reader) {
		t.Helper()
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection still open: read %d, %v", n, err)
		}
	}

	t.Run("pipelined keep-alive then close", func(t *testing.T) {
		c, br := dial()
		req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
		if _, err := io.WriteString(c, req+req+"GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			status, hdr, body := readResponse(t, br, false)
			if status != 200 || failure(decodeDict(t, body)) != "" {
				t.Fatalf("response %d: %d %q", i, status, body)
			}
			if closes := hdr.Get("Connection") == "close"; closes != (i == 2) {
				t.Fatalf("response %d: Connection %q", i, hdr.Get("Connection"))
			}
		}
		expectEOF(br)
	})
	t.Run("HTTP/1.0 closes by default", func(t *testing.T) {
		c, br := dial()
		io.WriteString(c, "GET "+target+" HTTP/1.0\r\n\r\n")
		if status, _, _ := readResponse(t, br, false); status != 200 {
			t.Fatalf("status %d", status)
		}
		expectEOF(br)
	})
	t.Run("HTTP/1.0 keep-alive", func(t *testing.T) {
		c, br := dial()
		for range 2 {
			io.WriteString(c, "GET "+target+" HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
			status, hdr, _ := readResponse(t, br, false)
			if status != 200 || hdr.Get("Connection") != "keep-alive" {
				t.Fatalf("status %d, Connection %q", status, hdr.Get("Connection"))
			}
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		c, br := dial()
		io.WriteString(c, "HEAD "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		status, hdr, _ := readResponse(t, br, true)
		if status != 200 || hdr.Get("Content-Length") == "" || hdr.Get("Content-Length") == "0" {
			t.Fatalf("HEAD: %d %v", status, hdr)
		}
		// No body follows: the next response starts right away.
		io.WriteString(c, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
		if status, _, _ := readResponse(t, br, false); status != 404 {
			t.Fatalf("after HEAD: %d", status)
		}
	})
	t.Run("request with body closes", func(t *testing.T) {
		c, br := dial()
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
		if status, hdr, _ := readResponse(t, br, false); status != 200 || hdr.Get("Connection") != "close" {
			t.Fatalf("status %d %v", status, hdr)
		}
		expectEOF(br)
	})
}

func TestServeTCPBadRequests(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, _ := startServer(t, f.tr, ServeOptions{})
	announce := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query()
	tests := []struct {
		name, raw string
		status    int
		closes    bool
		bodyHas   string
	}{
		{"garbage", "hello\r\n\r\n", 400, true, "malformed request line"},
		{"no target", "GET HTTP/1.1\r\nHost: x\r\n\r\n", 400, true, "malformed request line"},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, true, "malformed request line"},
		{"missing host", "GET " + announce + " HTTP/1.1\r\n\r\n", 400, true, "Host"},
		{"bad header", "GET " + announce + " HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, true, "header"},
		{"folded header", "GET " + announce + " HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, true, "header"},
		{"bad content length", "GET " + announce + " HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, true, "Content-Length"},
		{"bad escape in path", "GET /%zz/announce HTTP/1.1\r\nHost: x\r\n\r\n", 400, true, "path"},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, true, "path"},
		{"uri too long", "GET /" + strings.Repeat("a", maxRequestLine) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, true, "too long"},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 20) + "\r\n", 431, true, "too large"},
		{"too many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", maxHeaderFields+1) + "\r\n", 431, true, "too large"},
		{"HTTP/2", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, true, "version"},
		{"not found", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, false, "not found"},
		{"other path", "GET /" + f.pk + "/other HTTP/1.1\r\nHost: x\r\n\r\n", 404, false, "not found"},
		{"post", "POST " + announce + " HTTP/1.1\r\nHost: x\r\n\r\n", 405, false, "not allowed"},
		{"absolute form", "GET http://tracker.example" + announce + " HTTP/1.1\r\nHost: x\r\n\r\n", 200, false, "interval"},
		{"escaped path", "GET /" + f.pk + "/%61nnounce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query() + " HTTP/1.1\r\nHost: x\r\n\r\n", 200, false, "interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			status, hdr, body := readResponse(t, br, false)
			if status != tc.status || !strings.Contains(string(body), tc.bodyHas) {
				t.Fatalf("got %d %q, want %d with %q", status, body, tc.status, tc.bodyHas)
			}
			if tc.status == 405 && hdr.Get("Allow") != "GET, HEAD" {
				t.Fatalf("405 without Allow: %v", hdr)
			}
			if tc.closes {
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("connection open after %d: %v", status, err)
				}
			}
		})
	}
	if n := f.tr.peers.Len(); n != 1 {
		t.Fatalf("%d peers, want 1 from the well-formed announces", n)
	}
}

func TestServeTCPTrustedProxy(t *testing.T) {
	f := newHTTPFixture(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	addr, _ := startServer(t, f.tr, ServeOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query()
	// Many header fields: the kept values must survive the buffer growing.
	pad := strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 30)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nx-forwarded-for: 192.0.2.66, 127.0.0.9\r\n"+pad+"X-Real-IP: 198.51.100.1\r\n\r\n")
	if status, _, body := readResponse(t, br, false); status != 200 || failure(decodeDict(t, body)) != "" {
		t.Fatalf("%d %q", status, body)
	}
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	_, _, body := readResponse(t, br, false)
	if !strings.Contains(failure(decodeDict(t, body)), "proxy") {
		t.Fatalf("trusted proxy without header: %q", body)
	}
	var got []netip.AddrPort
	f.tr.peers.LocalPeers(func(_ model.InfoHash, p Peer, _ uint64) bool {
		got = append(got, p.Addr)
		return true
	})
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("192.0.2.66:7001") {
		t.Fatalf("listed %v, want 192.0.2.66:7001", got)
	}
}

func TestServeTCPIdleTimeoutAndShutdown(t *testing.T) {
	f := newHTTPFixture(t, nil)
	addr, stop := startServer(t, f.tr, ServeOptions{IdleTimeout: 200 * time.Millisecond, HeaderTimeout: 300 * time.Millisecond})
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(1), port: 7001, left: 1}.query()

	// Idle after a response: closed after IdleTimeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br, false)
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before IdleTimeout", d)
	}

	// A half-sent head: closed after HeaderTimeout, without an answer.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "GET "+target+" HTTP/1.1\r\nHo")
	if b, err := io.ReadAll(c2); err != nil || len(b) != 0 {
		t.Fatalf("slow head: read %q, %v", b, err)
	}

	// Shutdown closes idle connections and the listener, and returns nil.
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.SetDeadline(time.Now().Add(10 * time.Second))
	br3 := bufio.NewReader(c3)
	io.WriteString(c3, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
	readResponse(t, br3, false)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := br3.ReadByte(); err != io.EOF {
		t.Fatalf("connection after shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts after shutdown")
	}
}

func TestServeTCPListenerClosed(t *testing.T) {
	f := newHTTPFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.tr.ServeTCP(context.Background(), ln, ServeOptions{}) }()
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ServeTCP on a closed listener: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeTCP did not return")
	}
}

// TestServeTCPMatchesHandler compares the own server's bodies with
// net/http's Handler for requests whose answers do not depend on state.
func TestServeTCPMatchesHandler(t *testing.T) {
	f := newHTTPFixture(t, nil)
	for i := range 3 {
		serve(t, f.tr, "192.0.2.1:1", "/"+f.pk+"/announce?"+ann{ih: f.ih, id: peerID(i), port: 7000 + i, left: uint64(i % 2)}.query())
	}
	for _, target := range []string{
		"/" + f.pk + "/scrape?info_hash=" + escape(f.ih[:]) + "&info_hash=" + escape(f.v2[:]),
		"/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(0), port: 7000, left: 0, extra: "&numwant=0"}.query(),
		"/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(0), port: 7000, left: 0, extra: "&numwant=0&compact=0"}.query(),
		"/" + f.pk + "/announce?info_hash=x",
		"/" + f.pk + "/scrape?info_hash=" + escape(f.unknown[:]),
	} {
		own := serve(t, f.tr, "192.0.2.1:1", target)
		std := serveStd(t, f.tr, "192.0.2.1:1", target)
		if !bytes.Equal(own, std) {
			t.Errorf("%s:\n own %q\n std %q", target, own, std)
		}
	}
}

// BenchmarkServeTCPKeepAlive measures announces over one kept-alive
// connection to ServeTCP on 127.0.0.1 (client work included).
func BenchmarkServeTCPKeepAlive(b *testing.B) {
	reg := newFakeRegistry()
	pk := reg.addUser(1, true)
	ih := reg.addTorrent("bench", 1<<40)
	tr := newTestTracker(b, reg, newFakeCommitter(), nil)
	for i := range 1000 {
		serve(b, tr, fmt.Sprintf("10.0.%d.%d:1", i/250, i%250+1), "/"+pk+"/announce?"+ann{ih: ih, id: peerID(i), port: 6881, left: uint64(i % 2)}.query())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.ServeTCP(ctx, ln, ServeOptions{})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /" + pk + "/announce?" + ann{ih: ih, id: peerID(5000), port: 6881, left: 1, extra: "&key=abcd1234&compact=1"}.query() + " HTTP/1.1\r\nHost: tracker.example\r\nUser-Agent: bench\r\nAccept-Encoding: gzip\r\n\r\n")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		// The answer fits one read on loopback: head and body are written
		// together.
		n, err := c.Read(buf)
		if err != nil || !bytes.HasSuffix(buf[:n], []byte("e")) {
			b.Fatalf("read %q %v", buf[:n], err)
		}
	}
}

// BenchmarkParseRequestHead measures the request parser alone.
func BenchmarkParseRequestHead(b *testing.B) {
	var ih model.InfoHash
	raw := "GET /0123456789abcdef0123456789abcdef/announce?" + ann{ih: ih, id: peerID(5000), port: 6881, left: 1, extra: "&key=abcd1234&compact=1"}.query() +
		" HTTP/1.1\r\nHost: tracker.example:6969\r\nUser-Agent: Transmission/4.0.6\r\nAccept: */*\r\nAccept-Encoding: gzip;q=1.0, deflate, identity\r\n\r\n"
	rd := strings.NewReader(raw)
	br := bufio.NewReaderSize(rd, maxRequestLine)
	var p headParser
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(raw)
		br.Reset(rd)
		if _, err := p.parse(br, false); err != nil {
			b.Fatal(err)
		}
	}
}

// The tracker's listener accepts connections without TCP keepalive (the
// server's idle deadline ends idle connections), so accepting one costs no
// keepalive setsockopt calls.
func TestListenTCPNoKeepAlive(t *testing.T) {
	ln, err := ListenTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	keep, nodelay := -1, -1
	var serr error
	if err := raw.Control(func(fd uintptr) {
		keep, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		if serr == nil {
			nodelay, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		}
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if keep != 0 || nodelay != 1 {
		t.Fatalf("SO_KEEPALIVE %d TCP_NODELAY %d, want 0 and 1", keep, nodelay)
	}
	if _, err := ListenTCP(context.Background(), ln.Addr().String()); err == nil {
		t.Fatal("second listener on a bound port")
	}
}
