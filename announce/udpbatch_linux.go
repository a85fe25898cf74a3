//go:build linux

package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgBatcher is the Linux udpBatcher: recvmmsg and sendmmsg on the
// socket's descriptor through its syscall.RawConn, with the message
// headers, addresses and buffers set up once per worker. An answer goes
// to the sender's address exactly as the kernel gave it (no conversion),
// and nothing is allocated per datagram. golang.org/x/net's ReadBatch,
// used before, allocated a *net.UDPAddr per datagram and converted every
// address both ways (about 0.5 µs per announce in CPU profiles).
type mmsgBatcher struct {
	rc     syscall.RawConn
	in     [udpBatch]unix.Mmsghdr
	inIov  [udpBatch]unix.Iovec
	names  [udpBatch]unix.RawSockaddrInet6 // large enough for IPv4 too
	inBuf  []byte
	out    [udpBatch]unix.Mmsghdr
	outIov [udpBatch]unix.Iovec
	nout   int
	// The calls RawConn.Read, Control and Write make, made once (a closure
	// made per call would be allocated per call), with their results.
	recvFn, sendFn func(fd uintptr) bool
	tryFn          func(fd uintptr)
	got            bool // what tryFn's recvmmsg returned
	sent, done     int
	errno          unix.Errno
	// empty counts the reads in a row that found the socket empty and
	// slept (see udpPollPause); 0 after a read that got datagrams.
	empty int
}

// While datagrams keep coming, a worker that finds its socket empty
// sleeps udpPollPause and tries again, udpPollTries times, before it waits
// in the runtime's network poller. Why: with one P (a node on one core),
// the scheduler asks the poller for ready sockets only when no goroutine
// is runnable, or from sysmon every 10 ms. During a stats flush the
// background goroutines (flusher, raft, log store, FSM) hand work to each
// other and keep the run queue busy, so a worker parked in the poller
// waited 15-30 ms for datagrams that had long arrived (traces,
// BENCHMARKS.md). Expired timers are checked at every scheduling point,
// and a goroutine woken by one runs next, so a sleeping worker is back
// within one background step. When traffic stops it parks in the poller
// after about a millisecond and costs nothing while idle.
const (
	udpPollPause = 50 * time.Microsecond
	udpPollTries = 20
)

func newUDPBatcher(conn *net.UDPConn) (udpBatcher, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	b := &mmsgBatcher{rc: rc, inBuf: make([]byte, udpBatch*udpBufSize)}
	b.recvFn = b.recvmmsg
	b.sendFn = b.sendmmsg
	b.tryFn = func(fd uintptr) { b.got = b.recvmmsg(fd) }
	for i := range b.in {
		b.inIov[i].Base = &b.inBuf[i*udpBufSize]
		b.inIov[i].SetLen(udpBufSize)
		h := &b.in[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.inIov[i]
		h.SetIovlen(1)
	}
	return b, nil
}

func (b *mmsgBatcher) read() (int, error) {
	for i := range b.in {
		// The address length is in and out: reset it to the room there is.
		b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].Hdr.Flags = 0
		b.in[i].Len = 0
	}
	for b.got = false; b.empty < udpPollTries; b.empty++ {
		if err := b.rc.Control(b.tryFn); err != nil {
			return 0, err
		}
		if b.got {
			break
		}
		time.Sleep(udpPollPause)
	}
	if !b.got {
		// Quiet: wait in the poller (which also ends the wait when the
		// socket's read deadline passes, as ServeUDP's shutdown needs).
		if err := b.rc.Read(b.recvFn); err != nil {
			return 0, err
		}
	}
	b.empty = 0
	if b.errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", b.errno)
	}
	return b.done, nil
}

func (b *mmsgBatcher) recvmmsg(fd uintptr) bool {
	return b.mmsg(unix.SYS_RECVMMSG, fd, &b.in[0], udpBatch)
}

func (b *mmsgBatcher) sendmmsg(fd uintptr) bool {
	return b.mmsg(unix.SYS_SENDMMSG, fd, &b.out[b.sent], b.nout-b.sent)
}

// mmsg makes the non-blocking recvmmsg or sendmmsg (trap) call of n
// messages from msgs and keeps its result in done and errno; it returns
// false to have the runtime poller wait until fd is ready.
func (b *mmsgBatcher) mmsg(trap, fd uintptr, msgs *unix.Mmsghdr, n int) bool {
	for {
		r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(msgs)), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.done, b.errno = int(r), e
		return true
	}
}

func (b *mmsgBatcher) datagram(i int) ([]byte, netip.AddrPort, bool) {
	m := &b.in[i]
	n := int(m.Len)
	if n >= udpBufSize || m.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, netip.AddrPort{}, false // oversized: not a tracker packet
	}
	from, ok := sockaddrAddrPort(&b.names[i], m.Hdr.Namelen)
	if !ok {
		return nil, netip.AddrPort{}, false
	}
	return b.inBuf[i*udpBufSize : i*udpBufSize+n], from, true
}

// sockaddrAddrPort reads an AF_INET or AF_INET6 address of length n.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) (netip.AddrPort, bool) {
	switch {
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1])), true
	}
	return netip.AddrPort{}, false
}

func (b *mmsgBatcher) reply(i int, msg []byte) {
	b.queue(msg, (*byte)(unsafe.Pointer(&b.names[i])), b.in[i].Hdr.Namelen)
}

func (b *mmsgBatcher) queue(msg []byte, name *byte, namelen uint32) {
	if len(msg) == 0 || b.nout == udpBatch {
		return
	}
	k := b.nout
	b.outIov[k].Base = &msg[0]
	b.outIov[k].SetLen(len(msg))
	h := &b.out[k].Hdr
	h.Name, h.Namelen = name, namelen
	h.Iov = &b.outIov[k]
	h.SetIovlen(1)
	b.nout++
}

func (b *mmsgBatcher) send(refused func(to netip.AddrPort, err error)) error {
	defer func() { b.nout = 0 }()
	for b.sent = 0; b.sent < b.nout; {
		if err := b.rc.Write(b.sendFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			return fmt.Errorf("sendmmsg: %w", err)
		}
		if b.errno != 0 {
			// sendmmsg fails only on its first datagram: skip it.
			h := &b.out[b.sent].Hdr
			to, _ := sockaddrAddrPort((*unix.RawSockaddrInet6)(unsafe.Pointer(h.Name)), h.Namelen)
			refused(to, b.errno)
			b.sent++
			continue
		}
		b.sent += max(b.done, 1) // never 0 without an error; guard the loop anyway
	}
	return nil
}
