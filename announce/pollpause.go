package announce

import "time"

// A lone loop reading a socket (one P: a node on one core), the UDP worker
// or the HTTP fast path's loop, that finds nothing to read waits in
// the runtime's poller at most pollPause at a time, pollTries times in a
// row, and only then without a short deadline.
//
// Why: with one P the scheduler asks the poller for ready sockets only
// when no goroutine is runnable (or from sysmon every 10 ms). During a
// stats flush raft, the log store, the FSM and the flusher hand work to
// each other and keep the run queue busy, so a loop parked in the poller
// waited 15-30 ms for datagrams that had arrived (execution traces,
// BENCHMARKS.md). Timers are checked at every scheduling point and the
// goroutine an expired read deadline wakes runs next, so the loop is back
// within one background step (pace); as it still waits in the poller, an
// idle-time GC worker, which polls the network but not timers, makes way
// for it too. A read deadline belongs to the socket, shared by all its
// readers, so only a lone loop sets short ones.
//
// The pause is longer than the gap between two datagrams or connections
// under load (20 µs and 170 µs at half of the benchmark's peak), so a busy
// loop seldom sees its deadline pass: a pass costs a timer, a wake-up and
// a new deadline (with 50 µs, the HTTP acceptor spent a few % more CPU
// per announce). After pollTries passes in a row (5 ms) the loop is quiet.
const (
	pollPause = 250 * time.Microsecond
	pollTries = 20
)

// pollWait keeps a lone loop's read deadline (see pollPause).
type pollWait struct {
	quiet    time.Duration // the wait once quiet
	deadline time.Time     // the one last set
	empty    int           // waits in a row that ended with nothing
}

// before returns the deadline to set before a wait, or false when the one
// set still holds: a new one only when the last has passed, so a busy
// loop changes no timer per read.
func (w *pollWait) before(now time.Time) (time.Time, bool) {
	if now.Before(w.deadline) {
		return time.Time{}, false
	}
	wait := pollPause
	if w.empty >= pollTries {
		wait = w.quiet
	}
	w.deadline = now.Add(wait)
	return w.deadline, true
}

// next returns the deadline for the next wait: the one set while it
// holds, else a new one.
func (w *pollWait) next(now time.Time) time.Time {
	if d, ok := w.before(now); ok {
		return d
	}
	return w.deadline
}

// nothing records a wait that ended at its deadline.
func (w *pollWait) nothing() { w.empty = min(w.empty+1, pollTries) }

// got records a wait that ended with work; it returns the deadline to set
// when the loop is busy after a quiet spell (back to short waits).
func (w *pollWait) got(now time.Time) (time.Time, bool) {
	quiet := w.empty >= pollTries
	w.empty = 0
	if !quiet {
		return time.Time{}, false
	}
	w.deadline = now.Add(pollPause)
	return w.deadline, true
}
