package raftstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/model/modeltest"
)

// randomBatch makes a batch over a few users and torrents (ids 1..torrents
// as goodTorrent makes them), in random order, with repeated (user,
// torrent) pairs and zero deltas.
func randomBatch(r *rand.Rand, node string, seq uint64, users, torrents, n int) model.StatsBatch {
	b := model.StatsBatch{NodeID: node, Seq: seq}
	for i := 0; i < n; i++ {
		var up uint64
		switch r.IntN(4) {
		case 0:
		case 1:
			up = r.Uint64N(1 << 40)
		default:
			up = r.Uint64N(1 << 20)
		}
		b.Deltas = append(b.Deltas, model.StatsDelta{
			UserID:     uint64(r.IntN(users)+1) * 0x9e3779b97f4a7c15 >> 1, // large ids, as real ones are
			Torrent:    goodTorrent(byte(r.IntN(torrents) + 1)).ID,
			Uploaded:   up,
			Downloaded: r.Uint64N(1 << 30),
			Snatches:   r.Uint64N(2),
		})
	}
	return b
}

func TestStatsBatchRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		b := randomBatch(r, fmt.Sprintf("node-%d", i%3), uint64(i+1), 1+r.IntN(20), 1+r.IntN(50), r.IntN(300))
		if i%2 == 0 {
			// Sorted by user, as announce flushes them (groupStats'
			// fast path).
			slices.SortStableFunc(b.Deltas, func(x, y model.StatsDelta) int { return cmp.Compare(x.UserID, y.UserID) })
		}
		c, err := newStatsBatchCmd(b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		data, err := encodeCommand(c)
		if err != nil {
			t.Fatalf("batch %d: encode: %v", i, err)
		}
		if data[0] != binaryVersion || data[1] != binStatsBatch {
			t.Fatalf("batch %d: leading bytes %x", i, data[:2])
		}
		got, err := decodeCommand(data)
		if err != nil {
			t.Fatalf("batch %d: decode: %v", i, err)
		}
		gb := got.(*statsBatchCmd).batch()
		if gb.NodeID != b.NodeID || gb.Seq != b.Seq {
			t.Fatalf("batch %d: header %s/%d, want %s/%d", i, gb.NodeID, gb.Seq, b.NodeID, b.Seq)
		}
		if want := modeltest.SumDeltas(b.Deltas); !slices.Equal(gb.Deltas, want) {
			t.Fatalf("batch %d: %d deltas back, want %d (sums per user and torrent)", i, len(gb.Deltas), len(want))
		}
		// One encoding per batch: decoded and encoded again, the same bytes.
		again, err := encodeCommand(got)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("batch %d: re-encoding differs (err %v)", i, err)
		}
	}
}

func TestStatsBatchCompact(t *testing.T) {
	b := randomBatch(rand.New(rand.NewPCG(5, 6)), "node-1", 1, 1000, 250, 20_000)
	c, err := newStatsBatchCmd(b)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := encodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	js, err := encodeCommand(&commitStatsCmd{Batch: b})
	if err != nil {
		t.Fatal(err)
	}
	if len(bin)*3 > len(js) {
		t.Fatalf("binary batch is %d bytes, JSON %d: want at most a third", len(bin), len(js))
	}
}

// validBody is a small well-formed batch body (after the two leading bytes)
// built by hand: node "n1", seq 7, users 5 and 9, torrents 0x01.. (user
// 5: 10/20/1, user 9: 3/0/0) and 0x02.. (user 9: 1/1/0).
func validBody() []byte {
	var b []byte
	b = binary.AppendUvarint(b, 2)
	b = append(b, "n1"...)
	b = binary.AppendUvarint(b, 7)
	b = append(b, 2, 5, 9)
	b = append(b, 2)
	b = append(b, bytes.Repeat([]byte{1}, 20)...)
	b = append(b, 2, 0, 10, 20, 1, 1, 3, 0, 0)
	b = append(b, bytes.Repeat([]byte{2}, 20)...)
	b = append(b, 1, 1, 1, 1, 0)
	return b
}

func TestStatsBatchDecodeHandBuilt(t *testing.T) {
	c, err := decodeCommand(append([]byte{binaryVersion, binStatsBatch}, validBody()...))
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := model.InfoHash(bytes.Repeat([]byte{1}, 20)), model.InfoHash(bytes.Repeat([]byte{2}, 20))
	want := []model.StatsDelta{
		{UserID: 5, Torrent: h1, Uploaded: 10, Downloaded: 20, Snatches: 1},
		{UserID: 9, Torrent: h1, Uploaded: 3},
		{UserID: 9, Torrent: h2, Uploaded: 1, Downloaded: 1},
	}
	got := c.(*statsBatchCmd).batch()
	if got.NodeID != "n1" || got.Seq != 7 || !slices.Equal(got.Deltas, want) {
		t.Fatalf("decoded %+v", got)
	}
}

func TestStatsBatchDecodeRefuses(t *testing.T) {
	body := validBody()
	// Offsets in validBody: 0 node length, 1-2 "n1", 3 seq, 4 user count,
	// 5-6 users, 7 torrent count, 8-27 first hash, 28 its delta count,
	// 29 first user index, 30 uploaded.
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(body)) }
	cases := map[string][]byte{
		"trailing byte":         append(bytes.Clone(body), 0),
		"non-minimal varint":    edit(func(b []byte) []byte { return slices.Insert(b[:3:3], 3, append([]byte{0x87, 0x00}, b[4:]...)...) }),
		"zero seq":              edit(func(b []byte) []byte { b[3] = 0; return b }),
		"bad node id":           edit(func(b []byte) []byte { b[1] = '-'; return b }),
		"users not increasing":  edit(func(b []byte) []byte { b[5], b[6] = 9, 5; return b }),
		"zero user":             edit(func(b []byte) []byte { b[5] = 0; return b }),
		"unused user":           edit(func(b []byte) []byte { b[4], b[6] = 3, 9; return slices.Insert(b, 7, 11) }),
		"user index too big":    edit(func(b []byte) []byte { b[29] = 2; return b }),
		"user indexes repeated": edit(func(b []byte) []byte { b[33] = 0; return b }),
		"torrents out of order": edit(func(b []byte) []byte { copy(b[8:28], bytes.Repeat([]byte{3}, 20)); return b }),
		"zero torrent":          edit(func(b []byte) []byte { copy(b[8:28], make([]byte, 20)); return b }),
		"torrent without delta": edit(func(b []byte) []byte { b[28] = 0; return b }),
		"too large upload": edit(func(b []byte) []byte {
			return slices.Insert(b[:30:30], 30, append(binary.AppendUvarint(nil, 1<<50+1), b[31:]...)...)
		}),
		"count beyond the data": edit(func(b []byte) []byte { b[7] = 0x7f; return b }),
		"huge user count": edit(func(b []byte) []byte {
			return slices.Insert(b[:4:4], 4, append(binary.AppendUvarint(nil, 1<<62), b[5:]...)...)
		}),
	}
	for name, b := range cases {
		_, err := decodeCommand(append([]byte{binaryVersion, binStatsBatch}, b...))
		if err == nil {
			t.Errorf("%s: decoded", name)
			continue
		}
		if errors.Is(err, ErrNewerCommand) {
			t.Errorf("%s: a malformed batch must not read as a newer command: %v", name, err)
		}
	}
	// Every prefix of a good entry is refused.
	full := append([]byte{binaryVersion, binStatsBatch}, body...)
	for n := 0; n < len(full); n++ {
		if _, err := decodeCommand(full[:n]); err == nil {
			t.Errorf("prefix of %d bytes decoded", n)
		}
	}
	// A binary command type this build does not know is a newer command:
	// the node halts instead of skipping it.
	if _, err := decodeCommand([]byte{binaryVersion, 0x7f, 1, 2, 3}); !errors.Is(err, ErrNewerCommand) {
		t.Errorf("unknown binary type: %v, want ErrNewerCommand", err)
	}
}

// statsState reads the user and torrent stats buckets.
func statsState(t *testing.T, f *fsm) map[string]model.Stats {
	t.Helper()
	out := map[string]model.Stats{}
	err := f.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktUserStats, bktTorrentStats} {
			if err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				out[fmt.Sprintf("%s/%x", b, k)] = decodeStats(v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The binary batch applies exactly as its JSON form did, and both add up
// to the true sums: batches of three nodes, retried, late, out of order,
// with torrents deleted and registered between them.
func TestStatsBatchApplyMatchesJSONAndTruth(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		r := rand.New(rand.NewPCG(seed, 77))
		js, bin := testFSM(t), testFSM(t)
		truth := map[string]model.Stats{}
		registered := map[model.InfoHash]bool{}
		applied := map[string]uint64{}
		var jsCmds, binCmds []command
		add := func(key string, d model.StatsDelta) {
			s := truth[key]
			s.Uploaded += d.Uploaded
			s.Downloaded += d.Downloaded
			s.Snatches += d.Snatches
			truth[key] = s
		}
		for i := 0; i < 300; i++ {
			switch r.IntN(6) {
			case 0:
				tr := goodTorrent(byte(r.IntN(12) + 1))
				c := &putTorrentCmd{Torrent: tr}
				if !registered[tr.ID] {
					registered[tr.ID] = true
				}
				jsCmds, binCmds = append(jsCmds, c), append(binCmds, c)
			case 1:
				id := goodTorrent(byte(r.IntN(12) + 1)).ID
				c := &deleteTorrentCmd{ID: id}
				delete(registered, id)
				jsCmds, binCmds = append(jsCmds, c), append(binCmds, c)
			default:
				node := fmt.Sprintf("n%d", r.IntN(3))
				seq := applied[node] + 1
				if r.IntN(5) == 0 && seq > 1 {
					seq -= uint64(r.IntN(int(seq-1)) + 1) // a retry or a late copy
				}
				b := randomBatch(r, node, seq, 8, 12, r.IntN(40))
				bc, err := newStatsBatchCmd(b)
				if err != nil {
					t.Fatal(err)
				}
				jsCmds, binCmds = append(jsCmds, &commitStatsCmd{Batch: b}), append(binCmds, bc)
				if seq > applied[node] {
					applied[node] = seq
					for _, d := range b.Deltas {
						add(fmt.Sprintf("%s/%x", bktUserStats, u64(d.UserID)), d)
						if registered[d.Torrent] {
							add(fmt.Sprintf("%s/%x", bktTorrentStats, d.Torrent[:]), d)
						}
					}
				}
			}
		}
		// The JSON log one entry at a time, the binary one in raft batches.
		for _, err := range applyAll(t, js, jsCmds...) {
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrTorrentExists) {
				t.Fatal(err)
			}
		}
		for i := 0; i < len(binCmds); i += 23 {
			for _, err := range applyAll(t, bin, binCmds[i:min(i+23, len(binCmds))]...) {
				if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrTorrentExists) {
					t.Fatal(err)
				}
			}
		}
		if !bytes.Equal(dump(t, js), dump(t, bin)) {
			t.Fatalf("seed %d: JSON and binary batches left different states", seed)
		}
		got := statsState(t, bin)
		if len(got) != len(truth) || len(truth) < 10 {
			t.Fatalf("seed %d: %d stats keys, want %d", seed, len(got), len(truth))
		}
		for k, want := range truth {
			if got[k] != want {
				t.Fatalf("seed %d: %s = %+v, want %+v", seed, k, got[k], want)
			}
		}
	}
}

func TestStatsBatchExactlyOnce(t *testing.T) {
	f := testFSM(t)
	mustApply(t, f, &putTorrentCmd{Torrent: goodTorrent(1)})
	d := model.StatsDelta{UserID: 1, Torrent: goodTorrent(1).ID, Uploaded: 100, Downloaded: 40, Snatches: 1}
	mk := func(node string, seq uint64) command {
		c, err := newStatsBatchCmd(model.StatsBatch{NodeID: node, Seq: seq, Deltas: []model.StatsDelta{d}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// seq 1 twice (a retry), 2, 1 again late, another node's 1, and a
	// JSON seq 2 of n1 (an older node's retry of the same batch).
	mustApply(t, f, mk("n1", 1), mk("n1", 1), mk("n1", 2), mk("n1", 1), mk("n2", 1),
		&commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 2, Deltas: []model.StatsDelta{d}}})
	got := statsState(t, f)
	want := model.Stats{Uploaded: 300, Downloaded: 120, Snatches: 3}
	if us, ts := got[fmt.Sprintf("%s/%x", bktUserStats, u64(1))], got[fmt.Sprintf("%s/%x", bktTorrentStats, d.Torrent[:])]; us != want || ts != want {
		t.Fatalf("user %+v torrent %+v, want %+v", us, ts, want)
	}
}

// An empty batch still advances the node's sequence (a flush of nothing
// but counter changes), and a refused one writes nothing.
func TestStatsBatchEmptyAndRefused(t *testing.T) {
	f := testFSM(t)
	c, err := newStatsBatchCmd(model.StatsBatch{NodeID: "n1", Seq: 4})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, c)
	var seq uint64
	_ = f.db.View(func(tx *bolt.Tx) error { seq = getU64(tx.Bucket(bktStatsSeq).Get([]byte("n1"))); return nil })
	if seq != 4 {
		t.Fatalf("seq = %d, want 4", seq)
	}
	if _, err := newStatsBatchCmd(model.StatsBatch{NodeID: "n1", Seq: 5, Deltas: []model.StatsDelta{{UserID: 1}}}); !IsValidationError(err) {
		t.Fatalf("delta without torrent: %v", err)
	}
	big := model.StatsDelta{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: 1 << 49}
	// Two deltas of one (user, torrent) within bounds each, over them summed.
	if _, err := newStatsBatchCmd(model.StatsBatch{NodeID: "n1", Seq: 5, Deltas: []model.StatsDelta{big, big, big}}); !IsValidationError(err) {
		t.Fatalf("summed delta over the bound: %v", err)
	}
	// A malformed entry in the log is refused the same way on every node,
	// and changes no stats.
	before := statsState(t, f)
	res := f.ApplyBatch([]*raft.Log{{Index: f.applied.Load() + 1, Type: raft.LogCommand, Data: []byte{binaryVersion, binStatsBatch, 2, 'n', '1', 5, 1, 1, 1}}})
	if err := res[0].(*applyResult).Err; err == nil || errors.Is(err, ErrNewerCommand) {
		t.Fatalf("malformed entry: %v", err)
	}
	_ = f.db.View(func(tx *bolt.Tx) error { seq = getU64(tx.Bucket(bktStatsSeq).Get([]byte("n1"))); return nil })
	if after := statsState(t, f); len(after) != len(before) || seq != 4 {
		t.Fatalf("refused entry changed state: %d stats keys, seq %d", len(after), seq)
	}
}

// FuzzDecodeStatsBatch feeds arbitrary bytes to the binary stats batch
// decoder: it must refuse or accept without panicking and without
// allocating beyond the input's size; whatever it accepts validates,
// re-encodes to the same bytes (one encoding per batch), and encodes the
// same again from its model.StatsBatch form.
func FuzzDecodeStatsBatch(f *testing.F) {
	f.Add(validBody())
	r := rand.New(rand.NewPCG(8, 9))
	for _, n := range []int{0, 1, 3, 40} {
		c, err := newStatsBatchCmd(randomBatch(r, "node-a", uint64(n+1), 5, 9, n))
		if err != nil {
			f.Fatal(err)
		}
		data, err := encodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[2:])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append([]byte{binaryVersion, binStatsBatch}, body...)
		c, err := decodeCommand(data)
		if err != nil {
			if errors.Is(err, ErrNewerCommand) {
				t.Fatalf("a stats batch read as a newer command: %v", err)
			}
			return
		}
		sb := c.(*statsBatchCmd)
		if err := sb.validate(); err != nil {
			t.Fatalf("decoded batch fails validation: %v", err)
		}
		again, err := encodeCommand(sb)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoded differs (err %v):\n%x\n%x", err, again, data)
		}
		fromModel, err := newStatsBatchCmd(sb.batch())
		if err != nil {
			t.Fatalf("model form refused: %v", err)
		}
		if enc, _ := encodeCommand(fromModel); !bytes.Equal(enc, data) {
			t.Fatalf("model form encodes differently:\n%x\n%x", enc, data)
		}
	})
}
