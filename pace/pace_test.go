package pace

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// On one P, a goroutine woken by a timer runs within a slice of a busy
// loop that steps, and waits for sysmon's preemption (10 ms or more) when
// the loop does not step.
func TestStepLetsOthersRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	worst := func(p *Pacer) time.Duration {
		var stop atomic.Bool
		var worst time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 20 {
				want := time.Now().Add(2 * time.Millisecond)
				time.Sleep(time.Until(want))
				worst = max(worst, time.Since(want))
			}
			stop.Store(true)
		}()
		x := 0
		for !stop.Load() {
			for i := range 1000 {
				x += i * i
			}
			p.Step()
		}
		<-done
		_ = x
		return worst
	}
	// Other processes on the machine can delay either loop: three tries.
	for try := 1; ; try++ {
		busy := worst(nil)
		paced := worst(New(200 * time.Microsecond))
		t.Logf("worst wake-up delay: %v without steps, %v with", busy, paced)
		if paced < 5*time.Millisecond && busy >= 3*paced {
			return
		}
		if try == 3 {
			t.Fatalf("a paced loop delayed a timer by %v, an unpaced one by %v", paced, busy)
		}
	}
}

// fakeTime replaces the package's clock and sleep: a sleep advances the
// clock and then calls fg with the new time, standing for the foreground
// goroutines that run while the pacer sleeps. (Real sleeps of a few µs
// last up to a millisecond on an idle P: a test by the real clock was
// flaky.)
func fakeTime(t *testing.T, fg *func(now time.Time)) (elapsed func() time.Duration) {
	t.Helper()
	start := time.Unix(1_000_000, 0)
	now := start
	oldClock, oldSleep := clock, sleep
	t.Cleanup(func() { clock, sleep = oldClock, oldSleep })
	clock = func() time.Time { return now }
	sleep = func(d time.Duration) {
		now = now.Add(d)
		(*fg)(now)
	}
	return func() time.Duration { return now.Sub(start) }
}

// How long a step aside lasts, by the foreground's state: idle, a Pause;
// busy but making no progress, MaxWait; busy, until its first progress;
// kept-alive connections (ProgressMany), until they stop making progress.
func TestStepWaitsForForeground(t *testing.T) {
	var fg func(now time.Time)
	elapsed := fakeTime(t, &fg)
	nothing := func(time.Time) func(time.Time) { return func(time.Time) {} }
	cases := []struct {
		name     string
		last     time.Duration // since the foreground's last progress
		fg       func(start time.Time) func(now time.Time)
		min, max time.Duration
	}{
		{"idle", 2 * busyWindow, nothing, Pause, Pause},
		{"busy, stuck", 0, nothing, MaxWait, MaxWait + Pause},
		{"busy, progress after 50µs", 0, func(start time.Time) func(time.Time) {
			return func(now time.Time) {
				if now.Sub(start) >= 50*time.Microsecond {
					Progress(now)
				}
			}
		}, 50 * time.Microsecond, 50*time.Microsecond + Pause},
		// Kept-alive connections answer for 200µs, then have caught up.
		{"busy, many catching up", 0, func(start time.Time) func(time.Time) {
			return func(now time.Time) {
				if now.Sub(start) <= 200*time.Microsecond {
					ProgressMany(now)
				}
			}
		}, 200 * time.Microsecond, 200*time.Microsecond + 2*Pause},
		{"busy, many never caught up", 0, func(time.Time) func(time.Time) {
			return func(now time.Time) { ProgressMany(now) }
		}, MaxWait, MaxWait + Pause},
	}
	for _, c := range cases {
		lastActive.Store(clock().Add(-c.last).UnixNano())
		fg = c.fg(clock())
		p := &Pacer{slice: DefaultSlice, start: clock().Add(-time.Hour)}
		before := elapsed()
		p.StepN(stepsPerCheck)
		if d := elapsed() - before; d < c.min || d > c.max {
			t.Errorf("%s: a step aside took %v, want %v to %v", c.name, d, c.min, c.max)
		}
	}
}
