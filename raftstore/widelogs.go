package raftstore

import (
	"github.com/hashicorp/raft"

	"github.com/seedbank/seedbank/pace"
)

// wideLogs is the raft log store with its writes widened (pace.Widen):
// each is a bbolt commit with fdatasyncs, which on a one-P node would
// otherwise hold the tracker's only P (see boltwide). Reads pass through.
type wideLogs struct{ raft.LogStore }

func (w wideLogs) StoreLog(l *raft.Log) error {
	defer pace.Widen()()
	return w.LogStore.StoreLog(l)
}

func (w wideLogs) StoreLogs(logs []*raft.Log) error {
	defer pace.Widen()()
	return w.LogStore.StoreLogs(logs)
}

func (w wideLogs) DeleteRange(min, max uint64) error {
	defer pace.Widen()()
	return w.LogStore.DeleteRange(min, max)
}
