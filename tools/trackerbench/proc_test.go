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
	user, sys, err := cpuTimes(os.Getpid())
	if err != nil || user <= 0 || sys < 0 || user+sys < cpu {
		t.Fatalf("cpuTimes = %v + %v, %v; cpuTime was %v", user, sys, err, cpu)
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
