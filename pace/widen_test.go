package pace

import (
	"runtime"
	"sync"
	"testing"
)

func TestWidenNestsAndRestores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a := Widen()
	b := Widen()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("widened twice: %d Ps, want 2", got)
	}
	if got := Procs(); got != 1 {
		t.Fatalf("Procs while widened = %d, want 1", got)
	}
	a()
	a() // a second call of the same narrow does nothing
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("one of two narrowed: %d Ps, want 2", got)
	}
	b()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("both narrowed: %d Ps, want 1", got)
	}

	// Many committers at once end where they started.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				narrow := Widen()
				if p := Procs(); p != 1 {
					t.Errorf("Procs = %d while widened, want 1", p)
				}
				narrow()
			}
		})
	}
	wg.Wait()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("after concurrent widening: %d Ps, want 1", got)
	}
}

func TestWidenLeavesSeveralPs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	narrow := Widen()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("widened with 3 Ps: %d, want 3", got)
	}
	narrow()
	if got, procs := runtime.GOMAXPROCS(0), Procs(); got != 3 || procs != 3 {
		t.Fatalf("after narrow: GOMAXPROCS %d, Procs %d, want 3 and 3", got, procs)
	}
}

// A GOMAXPROCS set by someone else while widened stays.
func TestNarrowKeepsOthersSetting(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	narrow := Widen()
	runtime.GOMAXPROCS(4)
	narrow()
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Fatalf("after narrow: %d Ps, want the 4 set meanwhile", got)
	}
}
