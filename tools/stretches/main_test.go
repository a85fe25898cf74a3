package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
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
	path := traceOf(t, func() {
		done := make(chan int)
		go func() { done <- spin(30 * time.Millisecond) }()
		<-done
	})
	lines := report(t, run, path, 3)
	// The 30 ms may be cut by preemption, but not into pieces under 5 ms.
	if len(lines) < 2 || !strings.Contains(lines[1], "TestFindsLongStretch") {
		t.Fatalf("the spinning goroutine is not the first listed:\n%s", strings.Join(lines, "\n"))
	}
	var ms float64
	if _, err := fmtSscan(lines[1], &ms); err != nil || ms < 5 {
		t.Fatalf("longest stretch %v ms (%v), want 5 to 30", ms, err)
	}
	if err := run(filepath.Join(t.TempDir(), "missing"), 1, io.Discard); err == nil {
		t.Fatal("no error for a missing trace")
	}
}

// traceOf runs fn under an execution trace and returns the trace's file.
func traceOf(t *testing.T, fn func()) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		t.Fatal(err)
	}
	fn()
	trace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func fmtSscan(line string, ms *float64) (int, error) {
	return fmt.Sscan(strings.TrimSpace(line), ms)
}

// What runs after trackerbench's flush log event is not the load's: it is
// left out.
func TestStopsAtFlush(t *testing.T) {
	path := traceOf(t, func() {
		done := make(chan int)
		go func() { done <- spin(8 * time.Millisecond) }()
		<-done
		trace.Log(t.Context(), "trackerbench", "flush")
		go func() { done <- spin(60 * time.Millisecond) }()
		<-done
	})
	lines := report(t, run, path, 1)
	var ms float64
	if _, err := fmtSscan(lines[1], &ms); err != nil || ms > 20 {
		t.Fatalf("longest stretch %v ms (%v): the one after the flush was counted", ms, err)
	}
}

// udpWorker stands for the tracker's UDP loop (found by name): it reads
// a UDP socket until it is closed.
func udpWorker(c *net.UDPConn) {
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// With one P, a goroutine that spins while a datagram waits keeps the UDP
// loop from running: the gap is listed with the spinner in it.
func TestGapsNameWhatRan(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	path := traceOf(t, func() {
		done := make(chan struct{})
		go func() { udpWorker(conn); close(done) }()
		client.Write([]byte("a")) // the loop runs and waits again
		time.Sleep(10 * time.Millisecond)
		spun := make(chan int)
		go func() {
			client.Write([]byte("b")) // arrives while the spinner holds the P
			spun <- spin(30 * time.Millisecond)
		}()
		<-spun
		time.Sleep(10 * time.Millisecond)
		conn.Close()
		<-done
	})
	lines := report(t, gaps, path, 1)
	var ms float64
	if len(lines) < 3 {
		t.Fatalf("no gap listed:\n%s", strings.Join(lines, "\n"))
	}
	if _, err := fmtSscan(lines[1], &ms); err != nil || ms < 5 {
		t.Fatalf("longest gap %v ms (%v), want at least 5", ms, err)
	}
	if !strings.Contains(lines[2], "TestGapsNameWhatRan") {
		t.Fatalf("the spinner is not named first in the gap:\n%s", strings.Join(lines, "\n"))
	}
}

// report writes the report f (run or gaps) of the n longest on the trace
// at path, logs it and returns its lines.
func report(t *testing.T, f func(string, int, io.Writer) error, path string, n int) []string {
	t.Helper()
	var out bytes.Buffer
	if err := f(path, n, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	return strings.Split(out.String(), "\n")
}
