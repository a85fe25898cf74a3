package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
)

// refCommitStats is the plain apply of a stats batch, the reference the
// FSM's apply is held to: the sequence check, then for each torrent still
// registered and then for each user one Get and one Put, in key order.
func refCommitStats(tx *bolt.Tx, c *statsBatchCmd) error {
	seqs := tx.Bucket(bktStatsSeq)
	if getU64(seqs.Get([]byte(c.NodeID))) >= c.Seq {
		return nil
	}
	add := func(b *bolt.Bucket, key []byte, d model.Stats) error {
		s := decodeStats(b.Get(key))
		v := make([]byte, 24)
		binary.BigEndian.PutUint64(v[0:], s.Uploaded+d.Uploaded)
		binary.BigEndian.PutUint64(v[8:], s.Downloaded+d.Downloaded)
		binary.BigEndian.PutUint64(v[16:], s.Snatches+d.Snatches)
		return b.Put(key, v)
	}
	users := make([]model.Stats, len(c.Users))
	for _, t := range c.Torrents {
		var sum model.Stats
		for _, d := range t.Deltas {
			for _, s := range []*model.Stats{&users[d.User], &sum} {
				s.Uploaded += d.Up
				s.Downloaded += d.Down
				s.Snatches += d.Snatches
			}
		}
		if tx.Bucket(bktTorrents).Get(t.Hash[:]) != nil {
			if err := add(tx.Bucket(bktTorrentStats), t.Hash[:], sum); err != nil {
				return err
			}
		}
	}
	for i, u := range c.Users {
		if err := add(tx.Bucket(bktUserStats), u64(u), users[i]); err != nil {
			return err
		}
	}
	return seqs.Put([]byte(c.NodeID), u64(c.Seq))
}

// refApply applies log entries to f the reference way, in one
// transaction as ApplyBatch does, without touching the applied index.
func refApply(t *testing.T, f *fsm, entries [][]byte) {
	t.Helper()
	err := f.db.Update(func(tx *bolt.Tx) error {
		for _, data := range entries {
			c, err := decodeCommand(data)
			if err != nil {
				return err
			}
			switch c := c.(type) {
			case *statsBatchCmd:
				err = refCommitStats(tx, c)
			case *commitStatsCmd:
				err = refCommitStats(tx, groupStats(&c.Batch))
			default:
				err = (&applier{tx: tx}).apply(c)
			}
			if err != nil && c.typeName() != cmdPutTorrent && c.typeName() != cmdDeleteTorrent {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stateWithoutMeta is dump without the meta bucket (the applied index),
// and the page statistics of the stats buckets.
func stateWithoutMeta(t *testing.T, f *fsm) ([]byte, []bolt.BucketStats) {
	t.Helper()
	var out []byte
	for _, line := range bytes.SplitAfter(dump(t, f), []byte("\n")) {
		if !bytes.HasPrefix(line, append(bktMeta, '/')) {
			out = append(out, line...)
		}
	}
	var st []bolt.BucketStats
	_ = f.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktUserStats, bktTorrentStats, bktStatsSeq} {
			st = append(st, tx.Bucket(b).Stats())
		}
		return nil
	})
	return out, st
}

// The FSM's apply of stats batches (one cursor walk per bucket, buffers
// kept between applies) leaves exactly the state of the plain Get and Put
// per key, page for page: random batches, binary and JSON, several per
// raft batch, over torrents registered, never registered and deleted,
// torrents and users without a stats row yet, retried and late sequence
// numbers, and buckets large enough that the walks cross many pages.
func TestStatsApplyMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			got, ref := testFSM(t), testFSM(t)
			hashes := make([]model.InfoHash, 3000)
			for i := range hashes {
				for j := range hashes[i] {
					hashes[i][j] = byte(r.Uint32())
				}
				if r.IntN(4) == 0 { // neighbours in key order
					hashes[i] = hashes[r.IntN(i+1)]
					hashes[i][19] ^= byte(1 + r.IntN(255))
				}
			}
			torrent := func() model.Torrent {
				tr := goodTorrent(0)
				tr.ID = hashes[r.IntN(len(hashes))]
				tr.InfoHashV1 = tr.ID.String()
				return tr
			}
			users := make([]uint64, 400)
			for i := range users {
				users[i] = r.Uint64N(1<<62) + 1
			}
			seqs := map[string]uint64{}
			var entries [][]byte
			encode := func(c command) {
				data, err := encodeCommand(c)
				if err != nil {
					t.Fatal(err)
				}
				entries = append(entries, data)
			}
			for i := 0; i < 1500; i++ {
				encode(&putTorrentCmd{Torrent: torrent()})
			}
			for round := 0; round < 200; round++ {
				switch k := r.IntN(10); {
				case k == 0:
					encode(&putTorrentCmd{Torrent: torrent()})
				case k == 1:
					encode(&deleteTorrentCmd{ID: torrent().ID})
				default:
					node := fmt.Sprintf("n%d", r.IntN(3))
					seq := seqs[node] + 1
					if r.IntN(6) == 0 && seq > 1 {
						seq -= uint64(r.IntN(int(seq-1)) + 1) // a retry or a late copy
					}
					seqs[node] = max(seqs[node], seq)
					b := model.StatsBatch{NodeID: node, Seq: seq}
					// Users enter over time, so some have no row yet.
					pool := users[:min(len(users), 20+round*2)]
					n := r.IntN(2000)
					if r.IntN(8) == 0 {
						n = r.IntN(3)
					}
					for j := 0; j < n; j++ {
						b.Deltas = append(b.Deltas, model.StatsDelta{
							UserID: pool[r.IntN(len(pool))], Torrent: hashes[r.IntN(len(hashes))],
							Uploaded: r.Uint64N(1 << 40), Downloaded: r.Uint64N(1 << 30), Snatches: r.Uint64N(2),
						})
					}
					if r.IntN(4) == 0 {
						encode(&commitStatsCmd{Batch: b})
					} else {
						c, err := newStatsBatchCmd(b)
						if err != nil {
							t.Fatal(err)
						}
						encode(c)
					}
				}
			}
			for len(entries) > 0 {
				n := min(len(entries), 1+r.IntN(6))
				if len(entries) > 1000 {
					n = 100
				}
				logs := make([]*raft.Log, n)
				for i := range logs {
					logs[i] = &raft.Log{Index: got.applied.Load() + 1 + uint64(i), Type: raft.LogCommand, Data: entries[i]}
				}
				for i, res := range got.ApplyBatch(logs) {
					if err := res.(*applyResult).Err; err != nil && !isTorrentConflict(err) {
						t.Fatalf("entry %d: %v", i, err)
					}
				}
				refApply(t, ref, entries[:n])
				entries = entries[n:]
			}
			gs, gst := stateWithoutMeta(t, got)
			rs, rst := stateWithoutMeta(t, ref)
			if !bytes.Equal(gs, rs) {
				t.Fatalf("state differs from the reference apply (%d and %d bytes of dump)", len(gs), len(rs))
			}
			for i := range gst {
				if gst[i] != rst[i] {
					t.Fatalf("bucket pages differ from the reference apply:\n%+v\n%+v", gst[i], rst[i])
				}
			}
			st := statsState(t, got)
			if len(st) < 1000 {
				t.Fatalf("only %d stats rows: the test does not reach many pages", len(st))
			}
		})
	}
}

func isTorrentConflict(err error) bool {
	return errors.Is(err, ErrTorrentExists) || errors.Is(err, ErrNotFound)
}
