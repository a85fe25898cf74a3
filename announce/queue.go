package announce

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/boltwide"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// The stats queue file holds, in one bbolt database:
//
//	meta/node_id   the node the file belongs to
//	meta/next_seq  the Seq of the next batch, big-endian uint64
//	meta/next_seg  the number of the next counter log segment
//	batches/<seq>  a flushed model.StatsBatch not yet committed, in the
//	               binary form of encodeBatch (JSON before it; both read)
//	shardlog/<shard><segment>  one accountant shard's run of peer counter
//	               changes, in order: records of 1 kind byte (put or
//	               delete), the 48-byte key <user|torrent|peer_id> and, for
//	               a put, the value. shard is one byte, segment big-endian.
//	counterlog/<segment>  the same for all shards at once, and
//	counters/<user|torrent|peer_id>  one key per counter: the two formats
//	               before the per-shard log; read at startup, then rewritten
//	               into it and dropped.
//
// A flush writes its batch, the counters that batch was computed against and
// next_seq in one transaction, so a crash never separates them. A flush may
// cover only some shards (a slice of a periodic flush): a shard's deltas
// and counters always travel together. Counters are appended to the log as
// a few large values rather than put one key each: a flush changes the
// counters of every peer that announced since the last one, and a B-tree put
// per peer cost more CPU than the announces did. A shard's log is rewritten
// whole (compacted) when it holds more than twice its live counters.
var (
	bucketMeta       = []byte("meta")
	bucketBatches    = []byte("batches")
	bucketCounters   = []byte("counters")
	bucketCounterLog = []byte("counterlog")
	bucketShardLog   = []byte("shardlog")
	keyNodeID        = []byte("node_id")
	keyNextSeq       = []byte("next_seq")
	keyNextSeg       = []byte("next_seg")
)

const (
	counterKeyLen = 8 + 20 + 20
	counterValLen = 8 + 8 + 8 + 1 + 8 + 8 + 8

	// Counter log record kinds.
	logPut byte = 1
	logDel byte = 2
	// segmentBytes bounds one counter log value. bbolt writes a value
	// larger than a page into a buffer it allocates at every commit (and
	// the garbage collector then frees): 1 MB segments made the queue most
	// of the tracker's allocation. A leaf node of up to four values this
	// size fits one 4 KiB page, which bbolt takes from its pool. So a
	// segment is 10 counters or 20 deletions.
	segmentBytes = 980
	// compactMin is the least length of a shard's log that is ever
	// compacted.
	compactMin = 2_000
	// maxCachedBatches bounds the batches kept decoded in memory.
	maxCachedBatches = 16
)

// statsQueue is the local durable queue of stats batches. Methods are safe
// for concurrent use (bbolt serializes writers); append is called by one
// flusher at a time.
type statsQueue struct {
	db     *bolt.DB
	nodeID string

	mu sync.Mutex
	// cache holds batches this process appended and has not removed, so
	// committing them does not decode what was just encoded.
	cache map[uint64]model.StatsBatch
	// logRecords counts each shard's counter records on disk since its
	// last compaction; legacyRecords those in the formats before.
	logRecords    [numStatsShards]int
	legacyRecords int
	// compactMin is the least shard log length that is compacted
	// (compactMin; tests lower it).
	compactMin int
	// compactions counts the log rewrites, for tests.
	compactions int
	// Batches are deleted lazily (see committed): every batch up to
	// committedSeq is in the replicated state; the next append (or
	// close) deletes those still in the file.
	committedSeq uint64
	// arena backs the log segments of an append (see append).
	arena []byte
}

// maxKeptArena bounds the segment buffer kept between appends.
const maxKeptArena = 8 << 20

// openStatsQueue opens or creates the queue at path for nodeID. A new file
// starts its sequence at the current Unix time in microseconds, so a node
// whose queue file was lost still proposes Seqs above the ones it used
// before (the replicated state applies a node's batches in increasing Seq).
func openStatsQueue(path, nodeID string, now time.Time) (*statsQueue, error) {
	// A flush rewrites about a hundred bytes per announcing peer: a map
	// freelist finds free runs of pages without scanning them all, and a
	// large first mapping spares the remaps of a growing file (both were
	// most of a flush's commit in execution traces).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true,
		FreelistType: bolt.FreelistMapType, InitialMmapSize: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("open stats queue %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketBatches, bucketCounters, bucketCounterLog, bucketShardLog} {
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
	return &statsQueue{db: db, nodeID: nodeID, cache: map[uint64]model.StatsBatch{}, compactMin: compactMin}, nil
}

// ErrQueueNodeMismatch is returned by New when the stats queue file was
// written by another node id.
var ErrQueueNodeMismatch = errors.New("stats queue belongs to another node")

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func appendCounterKey(b []byte, k counterKey) []byte {
	b = binary.BigEndian.AppendUint64(b, k.user)
	b = append(b, k.torrent[:]...)
	return append(b, k.peer[:]...)
}

// Flags of a persisted counter.
const (
	counterCompleted byte = 1 << iota
	counterHandedOff
	counterRecon
	counterLeeching
)

func encodeCounterVal(c counterRec) []byte {
	return appendCounterVal(make([]byte, 0, counterValLen), c)
}

func appendCounterVal(dst []byte, c counterRec) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, counterValLen)...)
	b := dst[n:]
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
	return dst
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

// loadCounters calls fn for every persisted counter, in the order they were
// written: a later call for the same key replaces an earlier one, and del is
// called for a key deleted after its put.
func (q *statsQueue) loadCounters(fn func(counterKey, counterRec), del func(counterKey)) error {
	var legacy int
	var perShard [numStatsShards]int
	err := q.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketCounters).ForEach(func(k, v []byte) error {
			if len(k) != counterKeyLen || len(v) != counterValLen {
				return nil // not ours; ignore rather than refuse to start
			}
			legacy++
			fn(decodeCounterKey(k), decodeCounterVal(v))
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketCounterLog).ForEach(func(k, v []byte) error {
			n, err := replayLog(k, v, fn, del)
			legacy += n
			return err
		})
		if err != nil {
			return err
		}
		// Segments in key order: each shard's in the order written, and a
		// counter lives in one shard's log only.
		return tx.Bucket(bucketShardLog).ForEach(func(k, v []byte) error {
			if len(k) != 9 || int(k[0]) >= numStatsShards {
				return fmt.Errorf("counter log segment %x: malformed key", k)
			}
			n, err := replayLog(k, v, fn, del)
			perShard[k[0]] += n
			return err
		})
	})
	q.mu.Lock()
	q.legacyRecords, q.logRecords = legacy, perShard
	q.mu.Unlock()
	return err
}

// replayLog calls fn or del for each record of the log segment k, v and
// returns how many it read.
func replayLog(k, v []byte, fn func(counterKey, counterRec), del func(counterKey)) (n int, err error) {
	for len(v) > 0 {
		kind := v[0]
		switch {
		case kind == logPut && len(v) >= 1+counterKeyLen+counterValLen:
			fn(decodeCounterKey(v[1:]), decodeCounterVal(v[1+counterKeyLen:]))
			v = v[1+counterKeyLen+counterValLen:]
		case kind == logDel && len(v) >= 1+counterKeyLen:
			del(decodeCounterKey(v[1:]))
			v = v[1+counterKeyLen:]
		default:
			return n, fmt.Errorf("counter log segment %x: malformed record", k)
		}
		n++
	}
	return n, nil
}

func decodeCounterKey(b []byte) counterKey {
	var ck counterKey
	ck.user = binary.BigEndian.Uint64(b)
	copy(ck.torrent[:], b[8:28])
	copy(ck.peer[:], b[28:48])
	return ck
}

// deleteCounters removes persisted counters (used at startup for expired ones).
func (q *statsQueue) deleteCounters(keys []counterKey) error {
	if len(keys) == 0 {
		return nil
	}
	var parts [numStatsShards]logPart
	for _, k := range keys {
		i := shardOf(k.torrent)
		parts[i].shard = i
		parts[i].dels = append(parts[i].dels, k)
	}
	var f flushSet
	for i := range parts {
		if !parts[i].empty() {
			f.parts = append(f.parts, parts[i])
		}
	}
	_, err := q.append(&f, nil) // at startup, before any announce
	return err
}

// hasLegacy reports whether counters in the formats before the per-shard
// log are on disk.
func (q *statsQueue) hasLegacy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.legacyRecords > 0
}

// wantsCompaction reports whether shard's log should be rewritten whole,
// given its live counters.
func (q *statsQueue) wantsCompaction(shard, live int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.logRecords[shard] > max(2*live, q.compactMin)
}

// segKey is the key of a shard's log segment.
func segKey(shard int, seg uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{byte(shard)}, seg)
}

// dropShardLog deletes every segment of shard's log.
func dropShardLog(lb *bolt.Bucket, shard int) error {
	var keys [][]byte
	c := lb.Cursor()
	for k, _ := c.Seek([]byte{byte(shard)}); k != nil && k[0] == byte(shard); k, _ = c.Next() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := lb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Lengths of the log's records, and the deletions a segment holds.
const (
	logPutLen         = 1 + counterKeyLen + counterValLen
	logDelLen         = 1 + counterKeyLen
	logDelsPerSegment = segmentBytes / logDelLen
)

// appendPut appends the log record of k's counters c to b.
func appendPut(b []byte, k counterKey, c counterRec) []byte {
	b = append(b, logPut)
	b = appendCounterKey(b, k)
	return appendCounterVal(b, c)
}

// logBytes is the size of the records appendLog encodes for p (its puts
// come encoded).
func logBytes(p *logPart) int {
	if p.full {
		return 0
	}
	return len(p.dels) * logDelLen
}

// appendLog writes the counter changes of p as segments of its shard's log
// (replacing the log when p is full) and returns the records written. The
// puts go in as they are, cut into segments; the deletions' segments are
// carved from arena, which must have room for logBytes(p) more bytes.
// bbolt keeps a value's memory until the transaction ends, so neither p's
// puts nor the arena may be reused before it ends.
func appendLog(tx *bolt.Tx, p *logPart, arena *[]byte, pc *pace.Pacer) (records int, err error) {
	meta := tx.Bucket(bucketMeta)
	lb := tx.Bucket(bucketShardLog)
	// Fill pages whole: four segments to a page, not two. Most segments
	// are appended at the end of their shard's range of keys.
	lb.FillPercent = 1.0
	if p.full {
		if err := dropShardLog(lb, p.shard); err != nil {
			return 0, err
		}
	}
	var next uint64
	if v := meta.Get(keyNextSeg); v != nil {
		next = binary.BigEndian.Uint64(v)
	}
	var seg []byte
	n := 0
	put := func() error {
		if n == 0 {
			return nil
		}
		// bbolt keeps the value's memory until the transaction ends.
		if err := lb.Put(segKey(p.shard, next), seg); err != nil {
			return err
		}
		next++
		seg, n = nil, 0
		return nil
	}
	carve := func(n int) []byte {
		a := *arena
		*arena = a[:len(a)+n]
		return a[len(a) : len(a) : len(a)+n]
	}
	for rest := p.puts; len(rest) > 0; {
		cut := min(len(rest), segmentBytes/logPutLen*logPutLen)
		seg, n = rest[:cut:cut], cut/logPutLen
		rest = rest[cut:]
		pc.StepN(n)
		if err := put(); err != nil {
			return 0, err
		}
	}
	if !p.full {
		for i := range p.dels {
			if seg == nil {
				seg = carve(min(len(p.dels)-i, logDelsPerSegment) * logDelLen)
			}
			seg = append(seg, logDel)
			seg = appendCounterKey(seg, p.dels[i])
			if n++; n == logDelsPerSegment {
				if err := put(); err != nil {
					return 0, err
				}
			}
		}
		if err := put(); err != nil {
			return 0, err
		}
	}
	if err := meta.Put(keyNextSeg, be64(next)); err != nil {
		return 0, err
	}
	if p.full {
		return p.nputs(), nil
	}
	return p.nputs() + len(p.dels), nil
}

// append persists f in one transaction: new batches when f has deltas (the
// last Seq is returned, else 0), and the counter changes. It steps aside
// with pc (nil: never) between parts of the work.
func (q *statsQueue) append(f *flushSet, pc *pace.Pacer) (seq uint64, err error) {
	var batches []model.StatsBatch
	records := make([]int, len(f.parts))
	need := 0
	for i := range f.parts {
		need += logBytes(&f.parts[i])
	}
	// The log segments of one append come from one buffer, kept for the
	// next append (called by one flusher at a time) unless it is large.
	arena := q.arena[:0]
	if cap(arena) < need {
		arena = make([]byte, 0, need)
	}
	defer func() {
		if cap(arena) <= maxKeptArena {
			q.arena = arena[:0]
		}
	}()
	// The batches committed so far go in the same transaction.
	q.mu.Lock()
	doneSeq := q.committedSeq
	q.mu.Unlock()
	err = boltwide.Update(q.db, func(tx *bolt.Tx) error {
		arena = arena[:0]
		seq = 0
		batches = batches[:0]
		meta := tx.Bucket(bucketMeta)
		if err := deleteThrough(tx, doneSeq); err != nil {
			return err
		}
		next := binary.BigEndian.Uint64(meta.Get(keyNextSeq))
		// One flush may hold more deltas than one raft command should
		// carry: split it into batches of consecutive sequence numbers.
		for start := 0; start < len(f.deltas); start += maxDeltasPerBatch {
			chunk := f.deltas[start:min(start+maxDeltasPerBatch, len(f.deltas))]
			b := model.StatsBatch{NodeID: q.nodeID, Seq: next, Deltas: chunk}
			if err := tx.Bucket(bucketBatches).Put(be64(next), encodeBatch(b)); err != nil {
				return err
			}
			pc.StepN(len(chunk))
			batches = append(batches, b)
			seq = next
			next++
		}
		if err := meta.Put(keyNextSeq, be64(next)); err != nil {
			return err
		}
		if f.dropLegacy {
			for _, name := range [][]byte{bucketCounters, bucketCounterLog} {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
		}
		for i := range f.parts {
			var err error
			if records[i], err = appendLog(tx, &f.parts[i], &arena, pc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append stats batch: %w", err)
	}
	q.mu.Lock()
	if f.dropLegacy {
		q.legacyRecords = 0
	}
	for i := range f.parts {
		p := &f.parts[i]
		if p.full {
			q.logRecords[p.shard] = records[i]
			q.compactions++
		} else {
			q.logRecords[p.shard] += records[i]
		}
	}
	for _, b := range batches {
		if len(q.cache) < maxCachedBatches {
			q.cache[b.Seq] = b
		}
	}
	q.mu.Unlock()
	return seq, nil
}

// maxDeltasPerBatch keeps one stats batch far below the raft command
// limit (about 30 bytes a delta there, 125 in the JSON of older nodes).
const maxDeltasPerBatch = 20_000

// oldest returns the pending (not yet committed) batch with the lowest Seq.
func (q *statsQueue) oldest() (b model.StatsBatch, ok bool, err error) {
	q.mu.Lock()
	after := q.committedSeq + 1
	q.mu.Unlock()
	err = q.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketBatches).Cursor().Seek(be64(after))
		if k == nil {
			return nil
		}
		q.mu.Lock()
		b, ok = q.cache[binary.BigEndian.Uint64(k)]
		q.mu.Unlock()
		if ok {
			return nil
		}
		var err error
		if b, err = decodeBatch(v); err != nil {
			return fmt.Errorf("decode stats batch %d: %w", binary.BigEndian.Uint64(k), err)
		}
		ok = true
		return nil
	})
	return b, ok, err
}

// committed records that batch seq, the oldest pending one, is in the
// replicated state. It is deleted from the file by the next append's
// transaction (or close), not by one of its own: a transaction is two
// fsyncs, and with one per committed batch the queue made a quarter of a
// flush's fsyncs, each holding the core's only P (BENCHMARKS.md). A
// crash before that deletion commits the batch again after the restart,
// which the replicated state ignores (it applies a node's Seqs once, in
// increasing order).
func (q *statsQueue) committed(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.committedSeq = max(q.committedSeq, seq)
	delete(q.cache, seq)
}

// deleteThrough deletes the batches up to seq.
func deleteThrough(tx *bolt.Tx, seq uint64) error {
	if seq == 0 {
		return nil
	}
	b := tx.Bucket(bucketBatches)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.First() {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete committed stats batch %d: %w", binary.BigEndian.Uint64(k), err)
		}
	}
	return nil
}

// pending returns the number of batches not yet committed.
func (q *statsQueue) pending() (int, error) {
	q.mu.Lock()
	after := q.committedSeq + 1
	q.mu.Unlock()
	n := 0
	err := q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBatches).Cursor()
		for k, _ := c.Seek(be64(after)); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// close deletes the committed batches still in the file and closes it.
func (q *statsQueue) close() error {
	q.mu.Lock()
	done := q.committedSeq
	q.mu.Unlock()
	var err error
	if done > 0 {
		err = q.db.Update(func(tx *bolt.Tx) error { return deleteThrough(tx, done) })
	}
	return errors.Join(err, q.db.Close())
}

// batchFormat is the first byte of a batch in the binary form; a JSON batch
// (written before it) starts with '{'.
const batchFormat byte = 1

// deltaLen is the size of one delta in the binary form: user, torrent,
// uploaded, downloaded, snatches.
const deltaLen = 8 + 20 + 8 + 8 + 8

// encodeBatch is a queued batch's stored form: batchFormat, Seq, the node
// id's length (one byte) and bytes, then deltas of deltaLen bytes,
// big-endian. It costs a fraction of json.Marshal, which was a tenth of
// a flush.
func encodeBatch(b model.StatsBatch) []byte {
	out := make([]byte, 0, 1+8+1+len(b.NodeID)+len(b.Deltas)*deltaLen)
	out = append(out, batchFormat)
	out = binary.BigEndian.AppendUint64(out, b.Seq)
	out = append(out, byte(len(b.NodeID)))
	out = append(out, b.NodeID...)
	for _, d := range b.Deltas {
		out = binary.BigEndian.AppendUint64(out, d.UserID)
		out = append(out, d.Torrent[:]...)
		out = binary.BigEndian.AppendUint64(out, d.Uploaded)
		out = binary.BigEndian.AppendUint64(out, d.Downloaded)
		out = binary.BigEndian.AppendUint64(out, d.Snatches)
	}
	return out
}

// errBadBatch marks a stored batch that is neither form.
var errBadBatch = errors.New("malformed stored stats batch")

// decodeBatch reads a stored batch of either form.
func decodeBatch(v []byte) (model.StatsBatch, error) {
	var b model.StatsBatch
	if len(v) > 0 && v[0] == '{' {
		err := json.Unmarshal(v, &b)
		return b, err
	}
	if len(v) < 10 || v[0] != batchFormat {
		return b, errBadBatch
	}
	b.Seq = binary.BigEndian.Uint64(v[1:])
	n := int(v[9])
	v = v[10:]
	if len(v) < n || (len(v)-n)%deltaLen != 0 {
		return b, errBadBatch
	}
	b.NodeID, v = string(v[:n]), v[n:]
	b.Deltas = make([]model.StatsDelta, len(v)/deltaLen)
	for i := range b.Deltas {
		d := &b.Deltas[i]
		d.UserID = binary.BigEndian.Uint64(v)
		copy(d.Torrent[:], v[8:28])
		d.Uploaded = binary.BigEndian.Uint64(v[28:])
		d.Downloaded = binary.BigEndian.Uint64(v[36:])
		d.Snatches = binary.BigEndian.Uint64(v[44:])
		v = v[deltaLen:]
	}
	return b, nil
}
