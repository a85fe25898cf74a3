//go:build linux

package announce

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/seedbank/seedbank/pace"
)

// The fast path of the tracker's HTTP server on Linux. Real clients open a
// new connection per announce, send one small request and read one small
// answer. Through Go's net package such a connection costs, besides the
// kernel's TCP work, an epoll registration and removal, a netFD with a
// finalizer, the handoff from the accepting goroutine to a worker, and a
// system call entry through the scheduler for each of accept, read, write
// and close (with a single P, a system call that takes a few tens of µs
// lets sysmon hand the P to another thread, and keeps sysmon waking every
// 20 µs). Here the listener defers accepting until the request's first
// bytes are there (TCP_DEFER_ACCEPT), and the accepting goroutine itself
// does accept4, read, answer, write and close as raw non-blocking system
// calls (no scheduler entry) on the new socket, which never meets the
// poller: four system calls per announce (opentracker makes eleven), and
// the answer leaves with the FIN in one segment (see rawSend). It
// waits in the poller only when no connection is queued. Whatever does not
// fit (no or part of a request, pipelined requests, a body, a request the
// parser rejects, a response that does not fit the socket buffer, a
// kept-alive connection after its first answer) is handed, with the bytes
// already read or still to write, to the regular path (serveConn) as a
// net.Conn, which has the deadlines, the error answers and the connection
// bound.
//
// A side effect of deferred accepting: a client that connects and sends
// nothing is accepted only after about the header timeout (then the
// regular path's header timeout ends it), and if the server shuts down
// before that, the kernel drops it without a reset.

// serveFast serves ln with the fast path when ln is a TCP listener, until
// ln is closed or ctx is done, and returns true and the error that ended
// it; it returns false without doing anything for other listeners.
func (s *httpServer) serveFast(ctx context.Context, ln net.Listener) (bool, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return false, nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return false, nil
	}
	// A listener's raw connection cannot wait in the poller, an os.File's
	// can: wait and accept on a duplicate of the listener's descriptor,
	// closed with ServeTCP (or the socket would stay open).
	f, err := tl.File()
	if err != nil {
		return false, nil
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	wait, err := f.SyscallConn()
	if err != nil {
		return false, nil
	}
	// Accept a connection only once data has come, for at most about the
	// header timeout; a client that sends nothing is accepted after it
	// and meets the regular path's header timeout. Best effort: without
	// it the first read may find nothing, and the connection goes the
	// regular way.
	secs := int((s.opts.HeaderTimeout + time.Second - 1) / time.Second)
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
	})
	s.ready()
	f.SetReadDeadline(time.Now().Add(listenerCheck))
	// One accepting loop per P, so that answers are computed on every core.
	n := pace.Procs()
	errs := make(chan error, n)
	for range n - 1 {
		go func() { errs <- s.fastLoop(rc, wait, f, false) }()
	}
	err = s.fastLoop(rc, wait, f, n == 1)
	f.Close() // the other loops end
	for range n - 1 {
		if e := <-errs; err == nil {
			err = e
		}
	}
	return true, err
}

// listenerCheck is how often the fast path checks that the listener is
// still open: closing it does not wake a wait on the duplicate.
const listenerCheck = time.Second

// fastLoop accepts and serves connections until the listener (rc) or its
// duplicate f (wait its raw connection) is closed, and returns that error.
// A lone loop (alone: one P) that finds no connection queued waits at most
// pollPause at a time while connections keep coming, for the reason a
// lone UDP worker does (see pollPause).
func (s *httpServer) fastLoop(rc, wait syscall.RawConn, f *os.File, alone bool) error {
	cs := &connState{br: bufio.NewReaderSize(nil, maxRequestLine), out: make([]byte, 0, 2048)}
	buf := make([]byte, maxRequestLine)
	var (
		sa     unix.RawSockaddrAny
		nfd    int
		aerr   syscall.Errno
		accept = func(fd uintptr) bool {
			for {
				salen := uint32(unsafe.Sizeof(sa))
				r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)),
					unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
				switch e {
				case unix.EINTR, unix.ECONNABORTED:
					continue
				case unix.EAGAIN:
					return false // wait in the poller
				}
				nfd, aerr = int(r), e
				return true
			}
		}
		noop    = func(uintptr) {}
		backoff time.Duration
		pw      = pollWait{quiet: listenerCheck, empty: pollTries} // alone: starts quiet
	)
	for {
		if alone {
			if d, ok := pw.before(time.Now()); ok {
				f.SetReadDeadline(d)
			}
		}
		if err := wait.Read(accept); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if err := rc.Control(noop); err != nil {
				return err // closed by its owner
			}
			if alone {
				pw.nothing()
			} else {
				f.SetReadDeadline(time.Now().Add(listenerCheck))
			}
			continue
		}
		if alone {
			if d, ok := pw.got(time.Now()); ok {
				f.SetReadDeadline(d)
			}
		}
		if aerr != 0 {
			backoff = s.acceptBackoff(backoff, aerr)
			continue
		}
		backoff = 0
		if handOff, j := s.serveRaw(nfd, sockaddrAddr(&sa), cs, buf); handOff {
			s.handOff(nfd, j)
		} else {
			rawClose(nfd)
		}
	}
}

// serveRaw serves the just accepted socket fd, whose peer is remote, on
// the fast path, and returns false when the connection is to be closed; or
// returns true and what is left to do for the regular path.
func (s *httpServer) serveRaw(fd int, remote netip.Addr, cs *connState, buf []byte) (handOff bool, j job) {
	n, e := rawRead(fd, buf)
	switch {
	case e == unix.EAGAIN:
		return true, job{}
	case e != 0 || n == 0:
		return false, job{} // reset or closed before sending anything
	}
	in := buf[:n]
	cs.pre = prefixReader{b: in}
	cs.br.Reset(&cs.pre)
	wantProxy := remote.IsValid() && s.t.trustedProxy(remote.Unmap())
	req, err := cs.p.parse(cs.br, wantProxy)
	if err != nil || req.hasBody || cs.br.Buffered() > 0 || len(cs.pre.b) > 0 {
		// Incomplete, rejected, with a body or pipelined: the regular
		// path parses it again and answers.
		return true, job{in: append([]byte(nil), in...)}
	}
	start := s.now()
	status := s.answer(cs, req, remote)
	defer func() {
		if cap(cs.out) > 64<<10 {
			cs.out = make([]byte, 0, 2048)
		}
	}()
	w, e := rawSend(fd, cs.out, !req.keepAlive)
	if e == unix.EAGAIN {
		w, e = 0, 0
	}
	switch {
	case e != 0:
		return false, job{}
	case w < len(cs.out):
		return true, job{pending: append([]byte(nil), cs.out[w:]...), status: status, start: start, keepAlive: req.keepAlive}
	}
	s.fastAnswers.Add(1)
	s.observe(status, start, false)
	if !req.keepAlive {
		return false, job{}
	}
	return true, job{idle: true}
}

// handOff turns fd into a net.Conn and gives it with j to the regular
// path. fd is closed either way.
func (s *httpServer) handOff(fd int, j job) {
	s.handOffs.Add(1)
	f := os.NewFile(uintptr(fd), "tcp")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		s.t.log.Debug("http tracker: connection handoff failed", "err", err)
		return
	}
	j.c = c
	s.dispatch(j)
}

func rawRead(fd int, b []byte) (int, syscall.Errno) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// rawSend writes b to fd. last says that fd is closed right after: the
// kernel then holds the data back (MSG_MORE) until close, which sends it
// with the FIN in one segment instead of two.
func rawSend(fd int, b []byte, last bool) (int, syscall.Errno) {
	flags := uintptr(0)
	if last {
		flags = unix.MSG_MORE
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), flags, 0, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// rawClose closes fd. The tracker sets no SO_LINGER, so closing a socket
// does not block.
func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// sockaddrAddr returns the address in sa, invalid for other families.
func sockaddrAddr(sa *unix.RawSockaddrAny) netip.Addr {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(a.Addr)
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrFrom16(a.Addr)
	}
	return netip.Addr{}
}
