package raftstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/pace"
)

// binaryVersion is the first byte of a log entry in the binary encoding:
// the second byte is a command type (binStats...), the rest its body.
// Entries of commandVersion (JSON envelopes) keep their meaning; a node
// built before this encoding meets an unknown version and halts (see
// fsm.halt) until it is upgraded.
const binaryVersion byte = 2

// Binary command types. Part of the log format: never reuse a value.
const (
	binStatsBatch byte = 1
)

// cmdStatsBatch names the binary stats batch in errors and Change.Type.
const cmdStatsBatch = "commit_stats_binary"

// statsBatchCmd is a node's stats batch grouped by torrent, the form in
// which it is both encoded and applied. Stats batches are the bulk of the
// log (one (user, torrent) delta for almost every announce), so the
// encoding is compact and apply costs one bbolt put per torrent and per
// user of the batch, not per delta.
//
// Body after the two leading bytes, all integers unsigned varints in
// their shortest form:
//
//	len(node id), node id, seq,
//	user count, user ids (strictly increasing, non-zero),
//	torrent count, then per torrent (hashes strictly increasing, non-zero):
//	  20-byte hash, delta count (>= 1),
//	  per delta (user index strictly increasing within the torrent):
//	    user index, uploaded, downloaded, snatches
//
// Every listed user has at least one delta. The encoding of a batch is
// unique, so any node may re-encode what it decoded and get the same bytes.
type statsBatchCmd struct {
	NodeID   string
	Seq      uint64
	Users    []uint64
	Torrents []torrentDeltas
}

// torrentDeltas are the deltas of one torrent, one per user.
type torrentDeltas struct {
	Hash   model.InfoHash
	Deltas []userDelta
}

// userDelta is a delta of Users[User] on its torrent.
type userDelta struct {
	User               uint32
	Up, Down, Snatches uint64
}

func (*statsBatchCmd) typeName() string { return cmdStatsBatch }

// Bounds of one delta, the same as commitStatsCmd's, so one bad batch
// cannot overflow the counters.
const (
	maxDeltaBytes    = 1 << 50
	maxDeltaSnatches = 1 << 20
)

// groupStats groups the deltas of b by torrent, adding up deltas of the
// same (user, torrent). It does not validate: newStatsBatchCmd does, and
// the apply of a JSON commitStatsCmd (validated when it was decoded) must
// keep its old meaning exactly.
func groupStats(b *model.StatsBatch) *statsBatchCmd {
	c := &statsBatchCmd{NodeID: b.NodeID, Seq: b.Seq}
	if len(b.Deltas) == 0 {
		return c
	}
	// Users: sorted, distinct. announce flushes deltas sorted by user, so
	// the common case is one pass.
	users := make([]uint64, 0, 64)
	sortedByUser := true
	for i, d := range b.Deltas {
		if i > 0 && d.UserID < b.Deltas[i-1].UserID {
			sortedByUser = false
		}
		if len(users) == 0 || users[len(users)-1] != d.UserID {
			users = append(users, d.UserID)
		}
	}
	if !sortedByUser {
		slices.Sort(users)
		users = slices.Compact(users)
	}
	c.Users = users
	// Deltas ordered by (torrent, user), sorted as small keys: the hash's
	// first 8 bytes read as one number settle most comparisons.
	type key struct {
		prefix uint64
		user   uint32
		i      int32 // index in b.Deltas
	}
	keys := make([]key, len(b.Deltas))
	u := 0
	for i, d := range b.Deltas {
		if sortedByUser {
			if users[u] != d.UserID {
				u++
			}
		} else {
			u, _ = slices.BinarySearch(users, d.UserID)
		}
		keys[i] = key{binary.BigEndian.Uint64(d.Torrent[:8]), uint32(u), int32(i)}
	}
	slices.SortFunc(keys, func(x, y key) int {
		if x.prefix != y.prefix {
			return cmp.Compare(x.prefix, y.prefix)
		}
		if c := bytes.Compare(b.Deltas[x.i].Torrent[8:], b.Deltas[y.i].Torrent[8:]); c != 0 {
			return c
		}
		return cmp.Compare(x.user, y.user)
	})
	// Deltas of one (user, torrent) are added up into one.
	hash := func(k key) *model.InfoHash { return &b.Deltas[k.i].Torrent }
	nt, nd := 0, 0
	for i, k := range keys {
		if i == 0 || *hash(k) != *hash(keys[i-1]) {
			nt++
			nd++
		} else if k.user != keys[i-1].user {
			nd++
		}
	}
	c.Torrents = make([]torrentDeltas, 0, nt)
	flat := make([]userDelta, 0, nd)
	starts := make([]int, 0, nt)
	for i, k := range keys {
		d := &b.Deltas[k.i]
		newTorrent := i == 0 || *hash(k) != *hash(keys[i-1])
		if !newTorrent && k.user == keys[i-1].user {
			last := &flat[len(flat)-1]
			last.Up += d.Uploaded
			last.Down += d.Downloaded
			last.Snatches += d.Snatches
			continue
		}
		if newTorrent {
			c.Torrents = append(c.Torrents, torrentDeltas{Hash: d.Torrent})
			starts = append(starts, len(flat))
		}
		flat = append(flat, userDelta{User: k.user, Up: d.Uploaded, Down: d.Downloaded, Snatches: d.Snatches})
	}
	for i := range c.Torrents {
		end := len(flat)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		c.Torrents[i].Deltas = flat[starts[i]:end:end]
	}
	return c
}

// newStatsBatchCmd validates b and returns it as a binary stats batch.
func newStatsBatchCmd(b model.StatsBatch) (*statsBatchCmd, error) {
	if err := (commitStatsCmd{Batch: b}).validate(); err != nil {
		return nil, err
	}
	c := groupStats(&b)
	// Deltas of one (user, torrent) were added up: check them again.
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// batch returns c as a model.StatsBatch, deltas sorted by (user, torrent).
func (c *statsBatchCmd) batch() model.StatsBatch {
	b := model.StatsBatch{NodeID: c.NodeID, Seq: c.Seq}
	for _, t := range c.Torrents {
		for _, d := range t.Deltas {
			b.Deltas = append(b.Deltas, model.StatsDelta{UserID: c.Users[d.User], Torrent: t.Hash,
				Uploaded: d.Up, Downloaded: d.Down, Snatches: d.Snatches})
		}
	}
	slices.SortFunc(b.Deltas, func(x, y model.StatsDelta) int {
		if x.UserID != y.UserID {
			if x.UserID < y.UserID {
				return -1
			}
			return 1
		}
		return bytes.Compare(x.Torrent[:], y.Torrent[:])
	})
	return b
}

// validate checks what the decoder checks, so an encoded command always
// decodes.
func (c *statsBatchCmd) validate() error {
	if !nodeIDRe.MatchString(c.NodeID) {
		return invalid("batch.node_id", "must be a node id")
	}
	if c.Seq == 0 {
		return invalid("batch.seq", "must start at 1")
	}
	used := make([]bool, len(c.Users))
	for i, u := range c.Users {
		if u == 0 || (i > 0 && u <= c.Users[i-1]) {
			return invalid("batch.users", "must be non-zero and strictly increasing")
		}
	}
	n := 0
	for i, t := range c.Torrents {
		if t.Hash.IsZero() || (i > 0 && bytes.Compare(t.Hash[:], c.Torrents[i-1].Hash[:]) <= 0) {
			return invalid("batch.torrents", "must be non-zero and strictly increasing")
		}
		if len(t.Deltas) == 0 {
			return invalid("batch.torrents", "torrent %s has no deltas", t.Hash)
		}
		for j, d := range t.Deltas {
			if int(d.User) >= len(c.Users) || (j > 0 && d.User <= t.Deltas[j-1].User) {
				return invalid("batch.deltas", "user indexes of torrent %s must be strictly increasing and listed", t.Hash)
			}
			if d.Up > maxDeltaBytes || d.Down > maxDeltaBytes || d.Snatches > maxDeltaSnatches {
				return invalid("batch.deltas", "implausibly large delta on %s", t.Hash)
			}
			used[d.User] = true
		}
		n += len(t.Deltas)
		if n > maxDeltas {
			return invalid("batch.deltas", "more than %d deltas", maxDeltas)
		}
	}
	for i, ok := range used {
		if !ok {
			return invalid("batch.users", "user %d has no deltas", c.Users[i])
		}
	}
	return nil
}

// encode returns the log entry of c (not validated: encodeCommand does).
func (c *statsBatchCmd) encode() []byte {
	n := 0
	for _, t := range c.Torrents {
		n += len(t.Deltas)
	}
	out := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(c.NodeID)+len(c.Users)*binary.MaxVarintLen64+len(c.Torrents)*24+n*16)
	out = append(out, binaryVersion, binStatsBatch)
	out = binary.AppendUvarint(out, uint64(len(c.NodeID)))
	out = append(out, c.NodeID...)
	out = binary.AppendUvarint(out, c.Seq)
	out = binary.AppendUvarint(out, uint64(len(c.Users)))
	for _, u := range c.Users {
		out = binary.AppendUvarint(out, u)
	}
	out = binary.AppendUvarint(out, uint64(len(c.Torrents)))
	for _, t := range c.Torrents {
		out = append(out, t.Hash[:]...)
		out = binary.AppendUvarint(out, uint64(len(t.Deltas)))
		for _, d := range t.Deltas {
			out = binary.AppendUvarint(out, uint64(d.User))
			out = binary.AppendUvarint(out, d.Up)
			out = binary.AppendUvarint(out, d.Down)
			out = binary.AppendUvarint(out, d.Snatches)
		}
	}
	return out
}

// errStatsBody marks a malformed binary stats batch.
var errStatsBody = errors.New("malformed binary stats batch")

// statsReader reads the body of a binary stats batch.
type statsReader struct {
	b   []byte
	err error
}

// uvarint reads a varint in its shortest form; anything else is an error,
// so every batch has one encoding.
func (r *statsReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) {
		r.err = fmt.Errorf("%w: bad varint for %s", errStatsBody, what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items that take at least size bytes each, so a
// count is never more than the bytes left can hold.
func (r *statsReader) count(what string, size int) int {
	v := r.uvarint(what)
	if r.err == nil && v > uint64(len(r.b)/size) {
		r.err = fmt.Errorf("%w: %d %s do not fit in %d bytes", errStatsBody, v, what, len(r.b))
		return 0
	}
	return int(v)
}

func (r *statsReader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: %s cut short", errStatsBody, what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// decodeStatsBatch parses the body of a binary stats batch (after its two
// leading bytes) and validates it. With a buf it decodes into buf's arrays
// (the command itself included), valid until buf is used again; a nil buf
// allocates.
func decodeStatsBatch(body []byte, buf *statsBuffers) (*statsBatchCmd, error) {
	r := &statsReader{b: body}
	c := &statsBatchCmd{}
	var users []uint64
	var torrents []torrentDeltas
	var flat []userDelta
	if buf != nil {
		c = &buf.cmd
		*c = statsBatchCmd{}
		users, torrents, flat = buf.users, buf.torrents, buf.deltas[:0]
	}
	c.NodeID = string(r.bytes("node id", r.count("node id bytes", 1)))
	c.Seq = r.uvarint("seq")
	if nu := r.count("users", 1); nu > 0 {
		c.Users = grow(users, nu)
		for i := range c.Users {
			c.Users[i] = r.uvarint("user id")
		}
	}
	// A torrent takes at least 25 bytes (hash, count, one 4-byte delta).
	if nt := r.count("torrents", 25); nt > 0 {
		c.Torrents = grow(torrents, nt)
		if flat == nil {
			// Each delta takes at least 4 bytes; most take far more.
			flat = make([]userDelta, 0, len(r.b)/16)
		}
		for i := range c.Torrents {
			t := &c.Torrents[i]
			copy(t.Hash[:], r.bytes("torrent hash", len(t.Hash)))
			nd := r.count("deltas", 4)
			start := len(flat)
			for j := 0; j < nd; j++ {
				u := r.uvarint("user index")
				if r.err == nil && u >= uint64(len(c.Users)) {
					r.err = fmt.Errorf("%w: user index %d of %d users", errStatsBody, u, len(c.Users))
				}
				flat = append(flat, userDelta{User: uint32(u), Up: r.uvarint("uploaded"), Down: r.uvarint("downloaded"), Snatches: r.uvarint("snatches")})
			}
			t.Deltas = flat[start:len(flat):len(flat)]
			if r.err != nil {
				break
			}
		}
		// flat may have moved while it grew: point every torrent at
		// its final array.
		n := 0
		for i := range c.Torrents {
			d := len(c.Torrents[i].Deltas)
			c.Torrents[i].Deltas = flat[n : n+d : n+d]
			n += d
		}
	}
	if buf != nil {
		buf.users, buf.torrents, buf.deltas = c.Users, c.Torrents, flat
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last torrent", errStatsBody, len(r.b))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// grow returns s resliced to n items, or a new slice if s is too short.
// The items are not cleared.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// statsBuffers are the arrays that decoding and applying a stats batch
// use, kept by the FSM from one entry to the next so that a batch of
// thousands of deltas allocates next to nothing. The FSM uses them only
// inside its bbolt write transaction, so one apply at a time.
type statsBuffers struct {
	cmd      statsBatchCmd
	users    []uint64
	torrents []torrentDeltas
	deltas   []userDelta
	sums     []model.Stats
	put      []int32
	// vals holds the values put in the current transaction: bbolt keeps
	// the slices it is given until the commit, so vals only grows during
	// a transaction (a grown copy leaves the old array to bbolt) and is
	// emptied when the next one starts (startTx).
	vals []byte
}

// Buffers bigger than these are dropped after a transaction rather than
// kept: a rare huge batch should not pin its memory for good. A flush of
// 20,000 deltas fits.
const (
	keepDeltas = 1 << 16
	keepVals   = 24 << 16
)

// startTx makes buf ready for a new write transaction.
func (buf *statsBuffers) startTx() {
	buf.vals = buf.vals[:0]
	if cap(buf.vals) > keepVals {
		buf.vals = nil
	}
	if cap(buf.deltas) > keepDeltas {
		buf.deltas = nil
	}
	if cap(buf.torrents) > keepDeltas {
		buf.torrents = nil
	}
	if cap(buf.users) > keepDeltas {
		buf.users, buf.sums = nil, nil
	}
	if cap(buf.put) > keepDeltas {
		buf.put = nil
	}
	buf.cmd = statsBatchCmd{}
}

// userSums returns n zeroed stats.
func (buf *statsBuffers) userSums(n int) []model.Stats {
	buf.sums = grow(buf.sums, n)
	clear(buf.sums)
	return buf.sums
}

// decodeBinary parses a log entry of binaryVersion, a stats batch into
// buf's arrays if buf is not nil.
func decodeBinary(data []byte, buf *statsBuffers) (command, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("binary command without a type: %w", ErrUnknownCommand)
	}
	switch data[1] {
	case binStatsBatch:
		c, err := decodeStatsBatch(data[2:], buf)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", cmdStatsBatch, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("binary command type %d: %w", data[1], ErrNewerCommand)
}

// commitStatsBatch adds a node's batch once: a batch whose sequence number
// is not above the last one applied for that node is a retry and changes
// nothing. One put per torrent and per user of the batch, in key order.
//
// It reads everything before it writes: the batch's torrents and users are
// sorted, so the current counters (and whether each torrent is still
// registered) are found by walking each bucket forward with one cursor
// (keyWalker), which a write would invalidate. The puts then come in the
// same order and with the same values as a Get and Put per key would make
// them (TestStatsApplyMatchesReference).
func (a *applier) commitStatsBatch(c *statsBatchCmd) error {
	seqs := a.tx.Bucket(bktStatsSeq)
	if getU64(seqs.Get([]byte(c.NodeID))) >= c.Seq {
		return nil
	}
	buf := a.stats
	if buf == nil {
		buf = new(statsBuffers)
	}
	us := a.tx.Bucket(bktUserStats)
	ts := a.tx.Bucket(bktTorrentStats)
	users := buf.userSums(len(c.Users))
	// Values of this batch start here; bbolt keeps earlier ones of the
	// transaction, so they are never overwritten (see statsBuffers.vals).
	first := len(buf.vals)
	put := buf.put[:0]
	// A batch is thousands of B-tree lookups and updates: step aside now
	// and then so a node's tracker keeps answering on a busy core (the
	// result does not depend on it).
	p := pace.New(0)
	registered := keyWalker{c: a.tx.Bucket(bktTorrents).Cursor(), steps: walkTorrents}
	counters := keyWalker{c: ts.Cursor(), steps: walkCounters}
	for i := range c.Torrents {
		p.Step()
		t := &c.Torrents[i]
		var sum model.Stats
		for _, d := range t.Deltas {
			u := &users[d.User]
			u.Uploaded += d.Up
			u.Downloaded += d.Down
			u.Snatches += d.Snatches
			sum.Uploaded += d.Up
			sum.Downloaded += d.Down
			sum.Snatches += d.Snatches
		}
		// A torrent deleted since the announce keeps no counters.
		if registered.get(t.Hash[:]) == nil {
			continue
		}
		buf.vals = appendStats(buf.vals, decodeStats(counters.get(t.Hash[:])), sum)
		put = append(put, int32(i))
		if sum.Snatches > 0 {
			a.change.Snatched = append(a.change.Snatched, t.Hash)
		}
	}
	counters = keyWalker{c: us.Cursor(), steps: walkCounters}
	var key [8]byte
	for i, u := range c.Users {
		p.Step()
		binary.BigEndian.PutUint64(key[:], u)
		buf.vals = appendStats(buf.vals, decodeStats(counters.get(key[:])), users[i])
	}
	buf.put = put
	// The writes. Each value is a slice of vals as it is now, after the
	// last append of this batch.
	vals := buf.vals[first:]
	next := func() []byte {
		v := vals[:24:24]
		vals = vals[24:]
		return v
	}
	for _, i := range put {
		p.Step()
		h := &c.Torrents[i].Hash // not a copy: bbolt's Put lets its key escape
		if err := ts.Put(h[:], next()); err != nil {
			return fmt.Errorf("torrent stats %s: %w", *h, err)
		}
	}
	for _, u := range c.Users {
		p.Step()
		binary.BigEndian.PutUint64(key[:], u)
		if err := us.Put(key[:], next()); err != nil {
			return fmt.Errorf("user stats %d: %w", u, err)
		}
	}
	return seqs.Put([]byte(c.NodeID), u64(c.Seq))
}

// appendStats appends the stored form of s plus d.
func appendStats(b []byte, s, d model.Stats) []byte {
	b = binary.BigEndian.AppendUint64(b, s.Uploaded+d.Uploaded)
	b = binary.BigEndian.AppendUint64(b, s.Downloaded+d.Downloaded)
	return binary.BigEndian.AppendUint64(b, s.Snatches+d.Snatches)
}

// How far a keyWalker steps forward before it searches again. A counter
// row is 60 bytes, about 60 to a leaf page, so in a large batch the next
// torrent or user is often a few cheap steps away; in a small one the
// steps are wasted but cheap (most stay on the leaf). A torrent row holds
// the torrent's metainfo, often a page or more, so a step there usually
// moves to another page and costs about a level of a search: with
// real-sized torrents and small batches (the tracker flushes in slices)
// any stepping measured slower than a search per key (BENCHMARKS.md).
const (
	walkCounters = 16
	walkTorrents = 0
)

// keyWalker looks up keys of one bucket in increasing order with one
// cursor: from where the last lookup left the cursor it steps forward up
// to steps keys, and only then searches from the root, so keys that lie
// close together cost a step each instead of a B-tree search and no
// cursor is allocated per key. The bucket must not change while a
// keyWalker is in use (a cursor does not follow writes). get returns what
// Bucket.Get would: the value, or nil for a missing key or a bucket.
type keyWalker struct {
	c     *bolt.Cursor
	steps int
	k, v  []byte // where the cursor stands; k is nil past the last key
	moved bool   // the cursor has been positioned
}

// get returns key's value; keys must be asked for in increasing order.
func (w *keyWalker) get(key []byte) []byte {
	if w.moved {
		for i := 0; ; i++ {
			if w.k == nil {
				return nil // past the last key
			}
			switch bytes.Compare(w.k, key) {
			case 0:
				return w.v
			case 1:
				return nil // passed where key would be
			}
			if i == w.steps {
				break
			}
			w.k, w.v = w.c.Next()
		}
	}
	w.k, w.v = w.c.Seek(key)
	w.moved = true
	if bytes.Equal(w.k, key) {
		return w.v
	}
	return nil
}
