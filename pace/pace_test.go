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

// stepAside makes p step aside now and returns how long that took.
func stepAside(p *Pacer) time.Duration {
	p.start = time.Now().Add(-time.Hour)
	start := time.Now()
	p.StepN(stepsPerCheck)
	return time.Since(start)
}

// While the foreground is busy a step aside lasts until it makes progress,
// at most about MaxWait; when it is idle, about Pause.
func TestStepWaitsForForeground(t *testing.T) {
	p := New(0)
	// Idle: no progress within busyWindow. (A sleep can take longer than
	// asked on a busy machine: the quickest of a few.)
	lastActive.Store(time.Now().Add(-2 * busyWindow).UnixNano())
	idle := time.Hour
	for range 5 {
		idle = min(idle, stepAside(p))
	}
	if idle >= MaxWait {
		t.Errorf("idle foreground: the quickest of 5 steps aside took %v, want about %v", idle, Pause)
	}
	// Busy but stuck: waits about MaxWait (timers may run late, not early).
	Progress(time.Now())
	if d := stepAside(p); d < MaxWait/2 {
		t.Errorf("busy foreground without progress: a step aside took %v, want about %v", d, MaxWait)
	}
	// Busy and making progress: returns once it has.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				Progress(time.Now())
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	defer close(stop)
	var fastest time.Duration = time.Hour
	for range 20 {
		fastest = min(fastest, stepAside(p))
	}
	if fastest >= MaxWait {
		t.Errorf("busy foreground making progress: the quickest of 20 steps aside took %v, want under %v", fastest, MaxWait)
	}
}
