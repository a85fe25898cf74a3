package announce

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
)

// The stats queue file holds, in one bbolt database:
//
//	meta/node_id   the node the file belongs to
//	meta/next_seq  the Seq of the next batch, big-endian uint64
//	batches/<seq>  a flushed model.StatsBatch (JSON) not yet committed
//	counters/<user|torrent|peer_id>  a peer's last counters
//
// A flush writes its batch, the counters that batch was computed against and
// next_seq in one transaction, so a crash never separates them.
var (
	bucketMeta     = []byte("meta")
	bucketBatches  = []byte("batches")
	bucketCounters = []byte("counters")
	keyNodeID      = []byte("node_id")
	keyNextSeq     = []byte("next_seq")
)

const (
	counterKeyLen = 8 + 20 + 20
	counterValLen = 8 + 8 + 8 + 1 + 8 + 8 + 8
)

// statsQueue is the local durable queue of stats batches. Methods are safe
// for concurrent use (bbolt serializes writers); append is called by one
// flusher at a time.
type statsQueue struct {
	db     *bolt.DB
	nodeID string
}

// openStatsQueue opens or creates the queue at path for nodeID. A new file
// starts its sequence at the current Unix time in microseconds, so a node
// whose queue file was lost still proposes Seqs above the ones it used
// before (the replicated state applies a node's batches in increasing Seq).
func openStatsQueue(path, nodeID string, now time.Time) (*statsQueue, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open stats queue %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketBatches, bucketCounters} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if id := meta.Get(keyNodeID); id != nil {
			if string(id) != nodeID {
				return fmt.Errorf("%w: file belongs to node %q, not %q", ErrQueueNodeMismatch, id, nodeID)
			}
		} else if err := meta.Put(keyNodeID, []byte(nodeID)); err != nil {
			return err
		}
		if meta.Get(keyNextSeq) == nil {
			return meta.Put(keyNextSeq, be64(uint64(now.UnixMicro())))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init stats queue %s: %w", path, err)
	}
	return &statsQueue{db: db, nodeID: nodeID}, nil
}

// ErrQueueNodeMismatch is returned by New when the stats queue file was
// written by another node id.
var ErrQueueNodeMismatch = errors.New("stats queue belongs to another node")

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func encodeCounterKey(k counterKey) []byte {
	b := make([]byte, counterKeyLen)
	binary.BigEndian.PutUint64(b, k.user)
	copy(b[8:], k.torrent[:])
	copy(b[28:], k.peer[:])
	return b
}

// Flags of a persisted counter.
const (
	counterCompleted byte = 1 << iota
	counterHandedOff
	counterRecon
	counterLeeching
)

func encodeCounterVal(c counterRec) []byte {
	b := make([]byte, counterValLen)
	binary.BigEndian.PutUint64(b, c.up)
	binary.BigEndian.PutUint64(b[8:], c.down)
	binary.BigEndian.PutUint64(b[16:], uint64(c.updated))
	var f byte
	if c.completed {
		f |= counterCompleted
	}
	if c.handedOff {
		f |= counterHandedOff
	}
	if c.recon {
		f |= counterRecon
	}
	if c.leeching {
		f |= counterLeeching
	}
	b[24] = f
	binary.BigEndian.PutUint64(b[25:], c.reconUp)
	binary.BigEndian.PutUint64(b[33:], c.reconDown)
	binary.BigEndian.PutUint64(b[41:], uint64(c.reconAt))
	return b
}

func decodeCounterVal(v []byte) counterRec {
	return counterRec{
		up:        binary.BigEndian.Uint64(v),
		down:      binary.BigEndian.Uint64(v[8:]),
		updated:   int64(binary.BigEndian.Uint64(v[16:])),
		completed: v[24]&counterCompleted != 0,
		handedOff: v[24]&counterHandedOff != 0,
		recon:     v[24]&counterRecon != 0,
		leeching:  v[24]&counterLeeching != 0,
		reconUp:   binary.BigEndian.Uint64(v[25:]),
		reconDown: binary.BigEndian.Uint64(v[33:]),
		reconAt:   int64(binary.BigEndian.Uint64(v[41:])),
	}
}

// loadCounters calls fn for every persisted counter.
func (q *statsQueue) loadCounters(fn func(counterKey, counterRec)) error {
	return q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCounters).ForEach(func(k, v []byte) error {
			if len(k) != counterKeyLen || len(v) != counterValLen {
				return nil // not ours; ignore rather than refuse to start
			}
			var ck counterKey
			ck.user = binary.BigEndian.Uint64(k)
			copy(ck.torrent[:], k[8:28])
			copy(ck.peer[:], k[28:48])
			fn(ck, decodeCounterVal(v))
			return nil
		})
	})
}

// deleteCounters removes persisted counters (used at startup for expired ones).
func (q *statsQueue) deleteCounters(keys []counterKey) error {
	if len(keys) == 0 {
		return nil
	}
	return q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		for _, k := range keys {
			if err := b.Delete(encodeCounterKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// append persists f in one transaction: a new batch when f has deltas (its
// Seq is returned, else 0), and the counter changes.
func (q *statsQueue) append(f *flushSet) (seq uint64, err error) {
	// bbolt inserts in key order cheaply and shifts entries for random
	// order, so write counters sorted.
	puts := make([][2][]byte, len(f.puts))
	for i, p := range f.puts {
		puts[i] = [2][]byte{encodeCounterKey(p.k), encodeCounterVal(p.c)}
	}
	slices.SortFunc(puts, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	dels := make([][]byte, len(f.dels))
	for i, k := range f.dels {
		dels[i] = encodeCounterKey(k)
	}
	slices.SortFunc(dels, bytes.Compare)
	err = q.db.Update(func(tx *bolt.Tx) error {
		seq = 0
		meta := tx.Bucket(bucketMeta)
		next := binary.BigEndian.Uint64(meta.Get(keyNextSeq))
		// One flush may hold more deltas than one raft command should
		// carry: split it into batches of consecutive sequence numbers.
		for start := 0; start < len(f.deltas); start += maxDeltasPerBatch {
			chunk := f.deltas[start:min(start+maxDeltasPerBatch, len(f.deltas))]
			raw, err := json.Marshal(model.StatsBatch{NodeID: q.nodeID, Seq: next, Deltas: chunk})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketBatches).Put(be64(next), raw); err != nil {
				return err
			}
			seq = next
			next++
		}
		if err := meta.Put(keyNextSeq, be64(next)); err != nil {
			return err
		}
		cb := tx.Bucket(bucketCounters)
		for _, kv := range puts {
			if err := cb.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		for _, k := range dels {
			if err := cb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append stats batch: %w", err)
	}
	return seq, nil
}

// maxDeltasPerBatch keeps one stats batch (about 150 bytes of JSON a delta)
// far below the raft command limit.
const maxDeltasPerBatch = 20_000

// oldest returns the pending batch with the lowest Seq.
func (q *statsQueue) oldest() (b model.StatsBatch, ok bool, err error) {
	err = q.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketBatches).Cursor().First()
		if k == nil {
			return nil
		}
		if err := json.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("decode stats batch %d: %w", binary.BigEndian.Uint64(k), err)
		}
		ok = true
		return nil
	})
	return b, ok, err
}

// remove deletes the batch seq after it was committed.
func (q *statsQueue) remove(seq uint64) error {
	err := q.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBatches).Delete(be64(seq))
	})
	if err != nil {
		return fmt.Errorf("remove stats batch %d: %w", seq, err)
	}
	return nil
}

// pending returns the number of batches not yet committed.
func (q *statsQueue) pending() (int, error) {
	n := 0
	err := q.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketBatches).Stats().KeyN
		return nil
	})
	return n, err
}

func (q *statsQueue) close() error { return q.db.Close() }
