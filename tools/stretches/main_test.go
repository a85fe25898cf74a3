package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/trace"
	"strings"
	"testing"
	"time"
)

//go:noinline
func spin(d time.Duration) int {
	x := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		x++
	}
	return x
}

// A goroutine that runs 30 ms without a break is listed as such.
func TestFindsLongStretch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { done <- spin(30 * time.Millisecond) }()
	<-done
	trace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(path, 3, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	lines := strings.Split(out.String(), "\n")
	// The 30 ms may be cut by preemption, but not into pieces under 5 ms.
	if len(lines) < 2 || !strings.Contains(lines[1], "TestFindsLongStretch") {
		t.Fatalf("the spinning goroutine is not the first listed:\n%s", out.String())
	}
	var ms float64
	if _, err := fmtSscan(lines[1], &ms); err != nil || ms < 5 {
		t.Fatalf("longest stretch %v ms (%v), want 5 to 30", ms, err)
	}
	if err := run(filepath.Join(t.TempDir(), "missing"), 1, &out); err == nil {
		t.Fatal("no error for a missing trace")
	}
}

func fmtSscan(line string, ms *float64) (int, error) {
	return fmt.Sscan(strings.TrimSpace(line), ms)
}

// What runs after trackerbench's flush log event is not the load's: it is
// left out.
func TestStopsAtFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { done <- spin(8 * time.Millisecond) }()
	<-done
	trace.Log(t.Context(), "trackerbench", "flush")
	go func() { done <- spin(60 * time.Millisecond) }()
	<-done
	trace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(path, 1, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	lines := strings.Split(out.String(), "\n")
	var ms float64
	if _, err := fmtSscan(lines[1], &ms); err != nil || ms > 20 {
		t.Fatalf("longest stretch %v ms (%v): the one after the flush was counted", ms, err)
	}
}
