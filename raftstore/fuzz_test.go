package raftstore

import (
	"bytes"
	"testing"

	"github.com/seedbank/seedbank/model"
)

// FuzzDecodeCommand feeds arbitrary log entries to the decoder: it must
// return a command or an error, never panic, and whatever it accepts must
// re-validate and re-encode.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []command{
		&createUserCmd{User: goodUser(1, "alice")},
		&putTorrentCmd{Torrent: goodTorrent(2)},
		&commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: 9}}}},
		&setClientRulesCmd{Rules: []model.ClientRule{{Prefix: "-TR", Name: "Transmission"}}},
		&putRecordCmd{Kind: "invite", Key: "k", Value: []byte("v"), IfAbsent: true},
	} {
		data, err := encodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{commandVersion, '{'})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("decoded command fails validation: %v", err)
		}
		if _, err := encodeCommand(c); err != nil && !IsValidationError(err) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

// FuzzReadFrame checks the forwarding channel's framing on arbitrary bytes.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, forwardRequest{Op: "apply", Cmd: []byte{1, 2, 3}})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req forwardRequest
		_ = readFrame(bytes.NewReader(data), &req)
	})
}
