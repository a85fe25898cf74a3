package main

import (
	"os"
	"testing"
	"time"
)

func TestProcReaders(t *testing.T) {
	// Burn a little CPU so utime+stime is visibly non-zero.
	end := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
		_ = x * x
	}
	cpu, err := cpuTime(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Fatalf("cpuTime = %v, %v", cpu, err)
	}
	rss, err := rssBytes(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("rssBytes = %d, %v", rss, err)
	}
	if onlineCPUs() < 1 {
		t.Fatal("onlineCPUs < 1")
	}
	if _, err := freePort(); err != nil {
		t.Fatal(err)
	}
}
