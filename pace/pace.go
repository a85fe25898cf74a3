// Package pace lets long background work (a stats flush, a raft apply, an
// index warm-up) step aside for the goroutines that answer clients.
//
// With one P (a node pinned to one core), Go's scheduler notices goroutines
// made ready by the network only when the running goroutine blocks, or from
// sysmon after about 10 ms, which then preempts it. A background loop that
// never blocks therefore delays every announce that arrives meanwhile by
// 10-20 ms (seen in execution traces, BENCHMARKS.md). A short sleep blocks:
// the scheduler runs what expired timers made ready (a UDP worker waiting
// with a short read deadline, see announce), polls the network if nothing
// else is runnable, and the work goes on. With idle cores the sleep costs
// little: the next timer check resumes it.
//
// The sleep is Pause, not a microsecond: a goroutine woken by a timer goes
// to the front of its P's run queue and pushes the one there back, so a
// sleep that had already expired when the scheduler looked at the timers
// put the paced goroutine ahead of the UDP worker its own timer had just
// woken (traces showed that worker waiting 15-30 ms during a stats flush).
package pace

import (
	"sync/atomic"
	"time"
)

// Pacer is used by one goroutine: call Step once per unit of work.
type Pacer struct {
	slice time.Duration
	start time.Time
	n     int
}

// DefaultSlice is the work between two steps aside: short enough that an
// announce waits well under the 5 ms tail the tracker aims for.
const DefaultSlice = time.Millisecond

// Pause is how long a step aside sleeps: long enough that its timer has
// not expired when the scheduler next checks timers.
const Pause = 20 * time.Microsecond

// Foreground loops (the tracker's answer loops) report each unit of work
// done with Progress. While they are busy, a step aside lasts until one of
// them has made progress, up to MaxWait: with one P, a goroutine woken by a
// timer or the network goes to the front of the run queue but is pushed
// back by the next one woken (a raft hand-off, another paced goroutine), so
// a single short sleep often let other background work run first, and an
// answer loop waited for several slices in a row (BENCHMARKS.md,
// stretches -gaps).
var (
	progress   atomic.Uint64
	lastActive atomic.Int64 // Unix ns of the last Progress
)

// MaxWait bounds one step aside while the foreground is busy; busyWindow
// is how recently it must have made progress to count as busy.
const (
	MaxWait    = time.Millisecond
	busyWindow = 100 * time.Millisecond
)

// Progress records that a foreground loop did a unit of work at now.
func Progress(now time.Time) {
	progress.Add(1)
	lastActive.Store(now.UnixNano())
}

// manyProgress counts the progress of loops run by many goroutines (one
// per kept-alive connection), which the poller readies together.
var manyProgress atomic.Uint64

// ProgressMany is Progress for a loop of which many run at once (a
// kept-alive connection's): a step aside lasts while they keep making
// progress, up to MaxWait, so that all those readied together answer
// before the background work goes on.
func ProgressMany(now time.Time) {
	manyProgress.Add(1)
	Progress(now)
}

// stepsPerCheck bounds how often Step reads the clock.
const stepsPerCheck = 64

// New returns a Pacer that steps aside after each slice of work; a slice
// of 0 or less means DefaultSlice.
func New(slice time.Duration) *Pacer {
	if slice <= 0 {
		slice = DefaultSlice
	}
	return &Pacer{slice: slice, start: time.Now()}
}

// Step counts one unit of work and, once a slice of time has passed since
// the last pause, pauses briefly. A nil Pacer does nothing. Never call it
// with a lock held that the goroutines it makes way for need.
func (p *Pacer) Step() { p.StepN(1) }

// StepN is Step for n units of work at once.
func (p *Pacer) StepN(n int) {
	if p == nil {
		return
	}
	if p.n += n; p.n < stepsPerCheck {
		return
	}
	p.n = 0
	now := clock()
	if now.Sub(p.start) < p.slice {
		return
	}
	seen := progress.Load()
	many := manyProgress.Load()
	sleep(Pause)
	if now.UnixNano()-lastActive.Load() < int64(busyWindow) {
		// By the clock, not by sleeps: on an idle P a sleep can last a
		// millisecond (the poller's timeout granularity).
		for progress.Load() == seen && clock().Sub(now) < MaxWait {
			sleep(Pause)
		}
		// Kept-alive connections readied together: until they have caught
		// up (no progress for a Pause). Not for the other loops: waiting so
		// after theirs cost 10% more CPU at peak (BENCHMARKS.md).
		for m := manyProgress.Load(); m != many && clock().Sub(now) < MaxWait; m = manyProgress.Load() {
			many = m
			sleep(Pause)
		}
	}
	p.start = clock()
}

// The clock and the sleep, replaced by tests.
var (
	clock = time.Now
	sleep = time.Sleep
)
