//go:build linux

package announce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
// answer; a proxy in front (nginx) keeps connections open and sends
// request after request. Through Go's net package each connection costs,
// besides the kernel's TCP work, an epoll registration and removal, a
// netFD with a finalizer, a goroutine, deadlines (timers) per request, and
// a system call entry through the scheduler for each of accept, read,
// write and close (with a single P, a system call that takes a few tens of
// µs lets sysmon hand the P to another thread, and keeps sysmon waking
// every 20 µs). Here the listener defers accepting until the request's
// first bytes are there (TCP_DEFER_ACCEPT), and an event loop per P
// (fastLoop) with its own epoll set does accept4, read, answer, write and
// close as raw non-blocking system calls (no scheduler entry): four system
// calls per new-connection announce (opentracker makes eleven), and the
// answer leaves with the FIN in one segment (see rawSend). A kept-alive
// connection stays in the loop's epoll set between requests (two system
// calls per request, plus the loop's epoll_pwait). A loop waits in the
// runtime's poller only when its set has nothing ready. Whatever does not
// fit (no or part of a request, pipelined requests, a body, a request the
// parser rejects, a response that does not fit the socket buffer) is
// handed, with the bytes already read or still to write, to the regular
// path (serveConn) as a net.Conn, which has the deadlines, the error
// answers and the connection bound.
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
	// Accept a connection only once data has come, for at most about the
	// header timeout; a client that sends nothing is accepted after it
	// and meets the regular path's header timeout. Best effort: without
	// it the first read may find nothing, and the connection goes the
	// regular way.
	secs := int((s.opts.HeaderTimeout + time.Second - 1) / time.Second)
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
	})

	// One loop per P, so that answers are computed on every core.
	n := pace.Procs()
	loops := make([]*fastLoop, 0, n)
	defer func() {
		for _, l := range loops {
			l.close()
		}
	}()
	for range n {
		l, err := s.newFastLoop(tl, rc, n == 1)
		if err != nil {
			if len(loops) == 0 {
				s.t.log.Warn("http tracker: fast path unavailable, serving every connection the regular way", "err", err)
				return false, nil
			}
			break
		}
		loops = append(loops, l)
	}
	// Closing a loop's files ends its wait at once; closing the listener
	// does not (see listenerCheck).
	stop := context.AfterFunc(ctx, func() {
		for _, l := range loops {
			l.closeFiles()
		}
	})
	defer stop()
	s.ready()
	errs := make(chan error, len(loops))
	for _, l := range loops[1:] {
		go func() { errs <- l.run() }()
	}
	err = loops[0].run()
	for _, l := range loops[1:] {
		l.closeFiles() // the other loops end
	}
	for range loops[1:] {
		if e := <-errs; err == nil {
			err = e
		}
	}
	return true, err
}

// listenerCheck is how often the fast path checks that the listener is
// still open: closing it does not wake a wait on a duplicate.
const listenerCheck = time.Second

// maxKeptEvents bounds the readiness events one wait takes in, and the
// connections one accept round takes; more stay for the next.
const maxKeptEvents = 64

// fastLoop is one of the fast path's event loops: it accepts connections
// from the listener, answers each request that arrives whole, and keeps a
// kept-alive connection in its epoll set between requests, so that the
// next request is answered by the same loop with a read and a write: no
// goroutine, no deadline and no poller registration per connection. With
// one P such a loop waits with short deadlines (pollPause), like the UDP
// worker: a goroutine per kept-alive connection, parked in the runtime's
// poller, waited up to 10 ms behind a stats flush (BENCHMARKS.md).
//
// With no kept-alive connection the loop waits on the listener itself and
// accepts in its wait, as the fast path did before it kept connections:
// one system call per wake-up, and the listener is out of the epoll set
// (see listen).
//
// A kept-alive connection is handed to the regular path when it sends
// something the fast path leaves to it (an incomplete or unusual request)
// or an answer does not fit its socket buffer.
type fastLoop struct {
	s     *httpServer
	rc    syscall.RawConn // the listener's, to see that it is still open
	alone bool

	// lf is a duplicate of the listener's descriptor (lfd), which the
	// loop accepts from and waits on in the runtime's poller; epf is the
	// loop's epoll set: the kept-alive connections and, while there are
	// any, the listener.
	lf, epf     *os.File
	lwait, wait syscall.RawConn // theirs
	lfd         int

	kept      map[int32]keptConn
	nextSweep time.Time
	events    [maxKeptEvents]unix.EpollEvent
	sa        unix.RawSockaddrAny

	cs  *connState
	buf []byte
}

// keptConn is a kept-alive connection waiting in a fastLoop's set.
type keptConn struct {
	remote netip.Addr
	last   time.Time // its last answer
}

// newFastLoop makes a loop with a duplicate of tl's descriptor and an
// empty epoll set.
func (s *httpServer) newFastLoop(tl *net.TCPListener, rc syscall.RawConn, alone bool) (*fastLoop, error) {
	// A listener's raw connection cannot wait in the poller, an os.File's
	// can.
	lf, err := tl.File()
	if err != nil {
		return nil, fmt.Errorf("listener file: %w", err)
	}
	l := &fastLoop{
		s: s, rc: rc, alone: alone, lf: lf,
		kept: map[int32]keptConn{},
		cs:   &connState{br: bufio.NewReaderSize(nil, maxRequestLine), out: make([]byte, 0, 2048)},
		buf:  make([]byte, maxRequestLine),
	}
	if l.lwait, err = lf.SyscallConn(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("listener raw conn: %w", err)
	}
	l.lwait.Control(func(fd uintptr) { l.lfd = int(fd) })
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// A non-blocking descriptor becomes an os.File that waits in the
	// runtime's poller, which reports the set readable when it has events.
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		lf.Close()
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	l.epf = os.NewFile(uintptr(ep), "epoll")
	if l.wait, err = l.epf.SyscallConn(); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	return l, nil
}

// closeFiles closes the loop's epoll set and its listener duplicate, which
// ends its wait.
func (l *fastLoop) closeFiles() {
	l.epf.Close()
	l.lf.Close()
}

// close closes the loop's kept-alive connections and its files.
func (l *fastLoop) close() {
	for fd := range l.kept {
		l.drop(fd)
	}
	l.closeFiles()
}

// run serves until the listener or the loop's files are closed, and
// returns that error.
func (l *fastLoop) run() error {
	var (
		n     int
		errno syscall.Errno
		// accept: the wait with no kept-alive connection.
		accept = func(fd uintptr) bool {
			n, errno = 0, 0
			return l.acceptSome(int(fd)) > 0
		}
		// acceptReported: the listener reported in the set.
		acceptReported = func(fd uintptr) { l.acceptSome(int(fd)) }
		// poll: the wait on the epoll set.
		poll = func(fd uintptr) bool {
			for {
				r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&l.events[0])), maxKeptEvents, 0, 0, 0)
				if e == unix.EINTR {
					continue
				}
				n, errno = int(r), e
				return n > 0 || e != 0
			}
		}
		noop = func(uintptr) {}
		pw   = pollWait{quiet: listenerCheck, empty: pollTries} // alone: starts quiet
		// set is the read deadline last set, on setOn: a new one only
		// when it has passed or an earlier one is needed.
		set   time.Time
		setOn *os.File
		// The listener is checked at most this often, and also under
		// load, when no wait ends at its deadline.
		nextCheck time.Time
	)
	for {
		now := time.Now()
		if !now.Before(nextCheck) {
			if err := l.rc.Control(noop); err != nil {
				return err // closed by its owner
			}
			nextCheck = now.Add(listenerCheck)
		}
		f, w, wait := l.epf, l.wait, poll
		if len(l.kept) == 0 {
			f, w, wait = l.lf, l.lwait, accept
		}
		if d := l.deadline(now, &pw); f != setOn || !d.Equal(set) && (!now.Before(set) || d.Before(set)) {
			f.SetReadDeadline(d)
			set, setOn = d, f
		}
		switch err := w.Read(wait); {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if l.alone {
				pw.nothing()
			}
			setOn = nil
		case err != nil:
			return err
		case errno != 0:
			return fmt.Errorf("epoll_pwait: %w", errno)
		default:
			if l.alone {
				pw.got(now)
			}
			for i := range n {
				ev := &l.events[i]
				if int(ev.Fd) == l.lfd {
					l.lwait.Control(acceptReported)
				} else {
					l.serveKept(ev.Fd)
				}
			}
		}
		if len(l.kept) > 0 {
			l.sweep(time.Now())
		}
	}
}

// deadline returns the read deadline for the next wait: a lone loop's
// short one (pollWait), else a listener check, and no later than the next
// idle sweep while connections are kept.
func (l *fastLoop) deadline(now time.Time, pw *pollWait) time.Time {
	var d time.Time
	if l.alone {
		d = pw.next(now)
	} else {
		d = now.Add(listenerCheck)
	}
	if len(l.kept) > 0 && l.nextSweep.Before(d) {
		d = l.nextSweep
	}
	return d
}

// acceptSome accepts and serves the connections queued on the listener
// (lfd, the loop's duplicate), a bounded number at a time (the listener is
// level-triggered in the set: the rest come with the next wait), and
// returns how many it accepted.
func (l *fastLoop) acceptSome(lfd int) (accepted int) {
	s := l.s
	sa := &l.sa
	for range maxKeptEvents {
		salen := uint32(unsafe.Sizeof(*sa))
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&salen)),
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			accepted++
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return accepted
		default:
			// Out of file descriptors and the like: wait, then
			// let the next wait try again.
			s.acceptBackoff(0, e)
			return accepted
		}
		fd, remote := int(r), sockaddrAddr(sa)
		handOff, j := s.serveRaw(fd, remote, l.cs, l.buf)
		switch {
		case !handOff:
			rawClose(fd)
		case j.idle:
			l.keep(fd, remote)
		default:
			s.handOff(fd, j)
		}
	}
	return accepted
}

// keep puts the just answered connection fd in the loop's set, or closes
// it when shutting down or at MaxConns.
func (l *fastLoop) keep(fd int, remote netip.Addr) {
	if !l.s.trackRaw() {
		rawClose(fd)
		return
	}
	if err := l.add(fd); err != nil {
		l.s.t.log.Debug("http tracker: keeping a connection failed", "err", err)
		l.s.untrackRaw()
		rawClose(fd) // which takes it out of the set
		return
	}
	l.kept[int32(fd)] = keptConn{remote: remote, last: time.Now()}
}

// add puts fd in the loop's set, and with the first kept-alive connection
// the listener too.
func (l *fastLoop) add(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := l.ctl(unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	if len(l.kept) > 0 {
		return nil
	}
	if err := l.listen(true); err != nil {
		return err
	}
	l.nextSweep = time.Now().Add(l.sweepEvery())
	return nil
}

// listen puts the listener in the loop's set (with the first kept-alive
// connection) or takes it out (with the last). While it is in, every
// connection that arrives also wakes the set in the runtime's poller,
// which is wasted when the loop waits on the listener itself: 3-5% more
// CPU per new-connection announce.
func (l *fastLoop) listen(on bool) error {
	if !on {
		return l.ctl(unix.EPOLL_CTL_DEL, l.lfd, nil)
	}
	// Several loops share the listener: EPOLLEXCLUSIVE asks to wake one
	// of them per connection (Linux 4.5), where it is allowed.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.lfd)}
	if err := l.ctl(unix.EPOLL_CTL_ADD, l.lfd, &ev); err != nil {
		ev.Events = unix.EPOLLIN
		return l.ctl(unix.EPOLL_CTL_ADD, l.lfd, &ev)
	}
	return nil
}

// forget takes fd out of the loop's kept-alive connections (not out of
// its set).
func (l *fastLoop) forget(fd int32) {
	delete(l.kept, fd)
	l.s.untrackRaw()
	if len(l.kept) == 0 {
		l.listen(false)
	}
}

// serveKept serves what came on the kept-alive connection fd.
func (l *fastLoop) serveKept(fd int32) {
	kc, ok := l.kept[fd]
	if !ok {
		return // dropped earlier in the same batch of events
	}
	handOff, j := l.s.serveRaw(int(fd), kc.remote, l.cs, l.buf)
	switch {
	case !handOff:
		l.drop(fd)
	case j.idle:
		kc.last = time.Now()
		l.kept[fd] = kc
	case j.in == nil && j.pending == nil:
		// Nothing to read after all: stay.
	default:
		l.ctl(unix.EPOLL_CTL_DEL, int(fd), nil)
		l.forget(fd)
		l.s.handOff(int(fd), j)
	}
}

// ctl changes the loop's set. Control keeps the set's descriptor from
// being closed (by shutdown) and its number reused meanwhile.
func (l *fastLoop) ctl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	if cerr := l.wait.Control(func(ep uintptr) { err = unix.EpollCtl(int(ep), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// drop closes the kept-alive connection fd (which leaves the set).
func (l *fastLoop) drop(fd int32) {
	l.forget(fd)
	rawClose(int(fd))
}

// sweepEvery is how often a loop looks for kept-alive connections idle for
// longer than IdleTimeout: a connection is closed within IdleTimeout plus
// this.
func (l *fastLoop) sweepEvery() time.Duration {
	return min(max(l.s.opts.IdleTimeout/8, 10*time.Millisecond), listenerCheck)
}

// sweep closes the kept-alive connections idle for longer than
// IdleTimeout, when a sweep is due. (Shutdown closes them all with the
// loop: see close.)
func (l *fastLoop) sweep(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.sweepEvery())
	old := now.Add(-l.s.opts.IdleTimeout)
	for fd, kc := range l.kept {
		if kc.last.Before(old) {
			l.drop(fd)
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
