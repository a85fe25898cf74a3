package pace

import (
	"runtime"
	"sync"
)

// Widen and Procs: a second P for the length of a disk commit.
//
// A goroutine in a system call keeps its P until sysmon takes it back,
// and sysmon, finding nothing to do, sleeps up to 10 ms between looks. On a
// lone P (a node pinned to one core) a bbolt commit's pwrite and fdatasync
// (1-3 ms each on the VMs measured) therefore held the only P, and the
// answer loops waited the whole time: most of the long gaps in traces of
// the UDP loop at half peak were such commits (BENCHMARKS.md). With a
// second P the kernel runs the answer loop's thread while the committing
// one waits for the disk, which is all that is needed: a permanent second
// P costs 30-40% more CPU per announce on one core (runtime hand-offs and
// spinning), a second P only while committing measured no more than noise.
//
// runtime.GOMAXPROCS stops the world (a few µs on an idle P; it also waits
// for a GC cycle under way to finish marking) and turns off Go's automatic
// GOMAXPROCS updates, so a lone-P process that widens keeps one P (plus
// one while committing) until it restarts.

// wide counts the Widen calls not yet narrowed; while it is above 0 the
// process has two Ps and had one before.
var wide struct {
	mu    sync.Mutex
	count int
}

// Widen gives the process a second P until narrow is called, if it runs
// with one; with more it does nothing. Calls nest: the P goes away when the
// last one narrows. Call it around a call that blocks its thread in the
// kernel (a disk commit), not around work that computes: the second P
// then competes with the answer loops for the one core.
func Widen() (narrow func()) {
	wide.mu.Lock()
	defer wide.mu.Unlock()
	if wide.count == 0 {
		if runtime.GOMAXPROCS(0) != 1 {
			return func() {}
		}
		runtime.GOMAXPROCS(2)
	}
	wide.count++
	var once sync.Once // a second call of the same narrow does nothing
	return func() { once.Do(narrowOne) }
}

func narrowOne() {
	wide.mu.Lock()
	defer wide.mu.Unlock()
	// Leave GOMAXPROCS alone if someone else set it meanwhile.
	if wide.count--; wide.count == 0 && runtime.GOMAXPROCS(0) == 2 {
		runtime.GOMAXPROCS(1)
	}
}

// Procs returns GOMAXPROCS as it is outside Widen: what code that sizes
// its worker pools by the number of Ps should read.
func Procs() int {
	wide.mu.Lock()
	defer wide.mu.Unlock()
	if wide.count > 0 {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}
