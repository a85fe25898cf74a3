//go:build linux

package announce

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A response that does not fit the socket's send buffer is finished by the
// regular path, after what was queued before it.
func TestServeRawPendingWrite(t *testing.T) {
	f := newHTTPFixture(t, nil)
	s := &httpServer{t: f.tr, opts: ServeOptions{}.withDefaults(), conns: map[net.Conn]struct{}{}, work: make(chan job)}
	defer close(s.work)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := fds[0]
	cf := os.NewFile(uintptr(fds[1]), "client")
	cc, err := net.FileConn(cf)
	cf.Close()
	if err != nil {
		unix.Close(srv)
		t.Fatal(err)
	}
	defer cc.Close()
	// Fill the server side's send buffer.
	junk := make([]byte, 4096)
	queued := 0
	for {
		n, err := unix.Write(srv, junk)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		queued += n
	}
	req := "GET /" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(8), port: 7008, left: 1}.query() + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(cc, req); err != nil {
		t.Fatal(err)
	}
	cs := &connState{br: bufio.NewReaderSize(nil, maxRequestLine)}
	handOff, j := s.serveRaw(srv, netip.MustParseAddr("192.0.2.8"), cs, make([]byte, maxRequestLine))
	if !handOff || len(j.pending) == 0 || j.keepAlive || j.status != 200 {
		unix.Close(srv)
		t.Fatalf("serveRaw: handoff %v, %d bytes pending, keep-alive %v, status %d", handOff, len(j.pending), j.keepAlive, j.status)
	}
	s.handOff(srv, j)
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(cc)
	if _, err := io.CopyN(io.Discard, br, int64(queued)); err != nil {
		t.Fatal(err)
	}
	expectAnnounceOK(t, br, true)
	expectClosed(t, br)
	s.wg.Wait()
}

// The fast path's last answer on a connection waits in the kernel for the
// close, so that the data and the FIN leave in one segment; an answer on a
// kept-alive connection leaves at once.
func TestServeRawLastAnswerWaitsForClose(t *testing.T) {
	f := newHTTPFixture(t, nil)
	s := &httpServer{t: f.tr, opts: ServeOptions{}.withDefaults(), conns: map[net.Conn]struct{}{}, work: make(chan job)}
	defer close(s.work)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := "/" + f.pk + "/announce?" + ann{ih: f.ih, id: peerID(9), port: 7009, left: 1}.query()
	for _, tc := range []struct {
		header    string
		keepAlive bool
	}{
		{"Connection: close\r\n", false},
		{"", true},
	} {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		cc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(cc, "GET "+target+" HTTP/1.1\r\nHost: x\r\n"+tc.header+"\r\n"); err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		file, err := sc.(*net.TCPConn).File()
		sc.Close()
		if err != nil {
			t.Fatal(err)
		}
		fd := int(file.Fd())
		cs := &connState{br: bufio.NewReaderSize(nil, maxRequestLine), out: make([]byte, 0, 2048)}
		handOff, j := s.serveRaw(fd, netip.MustParseAddr("127.0.0.1"), cs, make([]byte, maxRequestLine))
		if handOff != tc.keepAlive || len(j.pending) != 0 {
			file.Close()
			t.Fatalf("%q: serveRaw handoff %v with %d bytes pending, want handoff %v and none", tc.header, handOff, len(j.pending), tc.keepAlive)
		}
		info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
		if err != nil {
			file.Close()
			t.Fatal(err)
		}
		want := uint32(0)
		if !tc.keepAlive {
			want = uint32(len(cs.out))
		}
		if info.Notsent_bytes != want {
			file.Close()
			t.Fatalf("%q: %d bytes of the %d-byte answer not sent before the close, want %d", tc.header, info.Notsent_bytes, len(cs.out), want)
		}
		br := bufio.NewReader(cc)
		if tc.keepAlive {
			expectAnnounceOK(t, br, false) // before the server closes
		}
		file.Close()
		if !tc.keepAlive {
			expectAnnounceOK(t, br, true)
		}
		expectClosed(t, br)
	}
}
