package announce

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMmsgBatcher: datagrams from IPv4 and IPv6 clients come with their
// senders; answers go back to each; an answer the kernel refuses is
// reported and skipped, and the answers after it still go out; an
// oversized datagram is not given to answer; a past read deadline ends a
// waiting read.
func TestMmsgBatcher(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	ub, err := newUDPBatcher(conn, false)
	if err != nil {
		t.Fatal(err)
	}
	b := ub.(*mmsgBatcher)
	c4 := newUDPClient(t, "udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	c6 := newUDPClient(t, "udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: port})
	clients := map[string]*udpClient{"a4": c4, "b6": c6, "c4": c4}
	for _, msg := range []string{"a4", "b6", "c4"} {
		if _, err := clients[msg].conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // loopback delivers at once; margin
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.read()
	if err != nil || n != 3 {
		t.Fatalf("read: %d datagrams, %v; want the 3 sent", n, err)
	}
	for i := range n {
		pkt, from, ok := b.datagram(i)
		c := clients[string(pkt)]
		if !ok || c == nil {
			t.Fatalf("datagram %d: %q %v", i, pkt, ok)
		}
		want := c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
		if from.Addr().Unmap() != want.Addr().Unmap() || from.Port() != want.Port() {
			t.Fatalf("%q from %v, want %v", pkt, from, want)
		}
		b.reply(i, []byte("re:"+string(pkt)))
	}
	// The first answer's address is cut too short for any family: the
	// kernel refuses it.
	b.out[0].Hdr.Namelen = 3
	first, _, _ := b.datagram(0)
	var refused []error
	if err := b.send(func(_ netip.AddrPort, err error) { refused = append(refused, err) }); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || !errors.Is(refused[0], unix.EINVAL) {
		t.Fatalf("refused: %v, want one EINVAL", refused)
	}
	for i := 1; i < n; i++ {
		pkt, _, _ := b.datagram(i)
		c := clients[string(pkt)]
		buf := make([]byte, 64)
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, err := c.conn.Read(buf)
		if err != nil || string(buf[:m]) != "re:"+string(pkt) {
			t.Fatalf("answer to %q: %q %v", pkt, buf[:m], err)
		}
	}
	c := clients[string(first)]
	c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if m, err := c.conn.Read(make([]byte, 64)); err == nil {
		t.Fatalf("the refused answer arrived (%d bytes)", m)
	}
	// Oversized: a datagram of udpBufSize bytes or more is not answered.
	if _, err := c4.conn.Write(make([]byte, udpBufSize+10)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := b.read(); err != nil || k != 1 {
		t.Fatalf("read of the oversized datagram: %d %v", k, err)
	}
	if _, _, ok := b.datagram(0); ok {
		t.Fatal("oversized datagram given to answer")
	}
	// A read deadline in the past ends a waiting read.
	conn.SetReadDeadline(time.Unix(1, 0))
	if _, err := b.read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the deadline: %v", err)
	}
}

// A lone worker's batcher waits pollPause on an empty socket and
// reports nothing, then up to udpQuietWait once it has found the socket
// empty pollTries times; a datagram ends either wait; a closed socket
// is an error.
func TestMmsgBatcherAlone(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ub, err := newUDPBatcher(conn, true)
	if err != nil {
		t.Fatal(err)
	}
	c := newUDPClient(t, "udp4", conn.LocalAddr())
	start := time.Now()
	if n, err := ub.read(); n != 0 || err != nil {
		t.Fatalf("read of an empty socket: %d %v, want 0 and no error", n, err)
	}
	if took := time.Since(start); took >= udpQuietWait {
		t.Fatalf("the first empty read took %v, want about %v", took, pollPause)
	}
	for range pollTries {
		ub.read()
	}
	start = time.Now()
	if n, err := ub.read(); n != 0 || err != nil {
		t.Fatalf("quiet read: %d %v", n, err)
	}
	if took := time.Since(start); took < udpQuietWait*9/10 {
		t.Fatalf("a quiet read gave up after %v, want %v", took, udpQuietWait)
	}
	// A datagram ends a quiet wait at once.
	go func() {
		time.Sleep(10 * time.Millisecond)
		c.conn.Write([]byte("x"))
	}()
	start = time.Now()
	if n, err := ub.read(); n != 1 || err != nil {
		t.Fatalf("read of a datagram sent during a quiet wait: %d %v", n, err)
	}
	if took := time.Since(start); took >= udpQuietWait {
		t.Fatalf("the datagram was read after %v", took)
	}
	conn.Close()
	if _, err := ub.read(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed socket: %v", err)
	}
}

// TestMmsgBatcherAllocs: reading a batch and answering it allocates
// nothing, with a socket of its own or not.
func TestMmsgBatcherAllocs(t *testing.T) {
	for _, alone := range []bool{false, true} {
		testMmsgBatcherAllocs(t, alone)
	}
}

func testMmsgBatcherAllocs(t *testing.T, alone bool) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ub, err := newUDPBatcher(conn, alone)
	if err != nil {
		t.Fatal(err)
	}
	c := newUDPClient(t, "udp4", conn.LocalAddr())
	msg, buf, answer := []byte("ping"), make([]byte, 16), []byte("pong")
	refused := func(netip.AddrPort, error) { t.Error("refused") }
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		n, err := ub.read()
		for alone && n == 0 && err == nil { // gave up waiting: try again
			n, err = ub.read()
		}
		if err != nil || n != 1 {
			t.Fatalf("read %d %v", n, err)
		}
		if _, _, ok := ub.datagram(0); !ok {
			t.Fatal("datagram")
		}
		ub.reply(0, answer)
		if err := ub.send(refused); err != nil {
			t.Fatal(err)
		}
		if m, err := c.conn.Read(buf); err != nil || string(buf[:m]) != "pong" {
			t.Fatalf("answer %q %v", buf[:m], err)
		}
	})
	if allocs != 0 {
		t.Fatalf("alone %v: %v allocations per datagram read and answered, want 0", alone, allocs)
	}
}
