package raftstore

import (
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
)

// procsLogs records how many Ps the process had during each write.
type procsLogs struct {
	raft.LogStore
	seen []int
}

func (p *procsLogs) StoreLog(l *raft.Log) error {
	p.seen = append(p.seen, runtime.GOMAXPROCS(0))
	return p.LogStore.StoreLog(l)
}

func (p *procsLogs) StoreLogs(logs []*raft.Log) error {
	p.seen = append(p.seen, runtime.GOMAXPROCS(0))
	return p.LogStore.StoreLogs(logs)
}

func (p *procsLogs) DeleteRange(min, max uint64) error {
	p.seen = append(p.seen, runtime.GOMAXPROCS(0))
	return p.LogStore.DeleteRange(min, max)
}

// On one P the log store's writes run with two, and reads pass through.
func TestWideLogsWidenWrites(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	inner := &procsLogs{LogStore: raft.NewInmemStore()}
	w := wideLogs{inner}
	if err := w.StoreLog(&raft.Log{Index: 1, Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs([]*raft.Log{{Index: 2}, {Index: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if len(inner.seen) != 3 || inner.seen[0] != 2 || inner.seen[1] != 2 || inner.seen[2] != 2 {
		t.Fatalf("Ps during the writes %v, want [2 2 2]", inner.seen)
	}
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("after the writes: %d Ps, want 1", got)
	}
	if first, err := w.FirstIndex(); err != nil || first != 3 {
		t.Fatalf("FirstIndex = %d, %v; want 3", first, err)
	}
}
