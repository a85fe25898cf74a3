package raftstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/model"
)

func goodUser(id uint64, name string) model.User {
	return model.User{
		ID: id, Username: name, Email: name + "@example.org", PasswordHash: "$argon2id$x",
		Passkey: passkeyFor(id), Role: model.RoleMember, Enabled: true, Created: 1700000000000,
	}
}

func passkeyFor(id uint64) string {
	const hexd = "0123456789abcdef"
	b := []byte(strings.Repeat("0", 32))
	for i := 31; i >= 0 && id > 0; i-- {
		b[i] = hexd[id%16]
		id /= 16
	}
	return string(b)
}

func goodTorrent(b byte) model.Torrent {
	var h model.InfoHash
	for i := range h {
		h[i] = b
	}
	return model.Torrent{
		ID: h, InfoHashV1: h.String(), Name: "dataset", Metainfo: []byte("d4:infode"),
		Files: []model.File{{Path: "a.fastq", Length: 10}, {Path: "b.fastq", Length: 5}}, TotalSize: 15,
		Uploader: 1, Created: 1700000000000,
	}
}

func TestValidationNamesTheField(t *testing.T) {
	mutUser := func(f func(*model.User)) command {
		u := goodUser(1, "alice")
		f(&u)
		return &createUserCmd{User: u}
	}
	mutTorrent := func(f func(*model.Torrent)) command {
		tr := goodTorrent(1)
		f(&tr)
		return &putTorrentCmd{Torrent: tr}
	}
	cases := []struct {
		name  string
		cmd   command
		field string
	}{
		{"user id zero", mutUser(func(u *model.User) { u.ID = 0 }), "user.id"},
		{"username short", mutUser(func(u *model.User) { u.Username = "a" }), "user.username"},
		{"username space", mutUser(func(u *model.User) { u.Username = "al ice" }), "user.username"},
		{"email bad", mutUser(func(u *model.User) { u.Email = "not-an-email" }), "user.email"},
		{"email display name", mutUser(func(u *model.User) { u.Email = "Al <a@b.org>" }), "user.email"},
		{"email long", mutUser(func(u *model.User) { u.Email = strings.Repeat("a", 250) + "@b.org" }), "user.email"},
		{"no password", mutUser(func(u *model.User) { u.PasswordHash = "" }), "user.password_hash"},
		{"passkey upper", mutUser(func(u *model.User) { u.Passkey = strings.ToUpper(passkeyFor(0xabc)) }), "user.passkey"},
		{"passkey short", mutUser(func(u *model.User) { u.Passkey = "abc" }), "user.passkey"},
		{"role", mutUser(func(u *model.User) { u.Role = "root" }), "user.role"},
		{"created", mutUser(func(u *model.User) { u.Created = 0 }), "user.created"},
		{"extra too big", mutUser(func(u *model.User) { u.Extra = map[string]string{"k": strings.Repeat("x", 5000)} }), "user.extra"},
		{"torrent id", mutTorrent(func(t *model.Torrent) { t.ID = model.InfoHash{} }), "torrent.id"},
		{"torrent id mismatch", mutTorrent(func(t *model.Torrent) { t.ID[0] = 9 }), "torrent.id"},
		{"no hashes", mutTorrent(func(t *model.Torrent) { t.InfoHashV1 = "" }), "torrent.info_hash"},
		{"v1 not hex", mutTorrent(func(t *model.Torrent) { t.InfoHashV1 = strings.Repeat("z", 40) }), "torrent.info_hash_v1"},
		{"v2 short", mutTorrent(func(t *model.Torrent) { t.InfoHashV2 = "ab" }), "torrent.info_hash_v2"},
		{"name empty", mutTorrent(func(t *model.Torrent) { t.Name = "" }), "torrent.name"},
		{"name bad utf8", mutTorrent(func(t *model.Torrent) { t.Name = "\xff" }), "torrent.name"},
		{"no metainfo", mutTorrent(func(t *model.Torrent) { t.Metainfo = nil }), "torrent.metainfo"},
		{"no files", mutTorrent(func(t *model.Torrent) { t.Files = nil }), "torrent.files"},
		{"negative file", mutTorrent(func(t *model.Torrent) { t.Files[0].Length = -1 }), "torrent.files[0]"},
		{"size mismatch", mutTorrent(func(t *model.Torrent) { t.TotalSize = 99 }), "torrent.total_size"},
		{"no uploader", mutTorrent(func(t *model.Torrent) { t.Uploader = 0 }), "torrent.uploader"},
		{"no created", mutTorrent(func(t *model.Torrent) { t.Created = 0 }), "torrent.created"},
		{"delete zero", &deleteTorrentCmd{}, "id"},
		{"rule empty prefix", &setClientRulesCmd{Rules: []model.ClientRule{{Prefix: ""}}}, "rules[0].prefix"},
		{"rule duplicate", &setClientRulesCmd{Rules: []model.ClientRule{{Prefix: "-TR"}, {Prefix: "-TR"}}}, "rules[1].prefix"},
		{"setting key", &putSettingCmd{Key: " x"}, "key"},
		{"setting value", &putSettingCmd{Key: "x", Value: strings.Repeat("v", maxSettingLen+1)}, "value"},
		{"stats node", &commitStatsCmd{Batch: model.StatsBatch{NodeID: "", Seq: 1}}, "batch.node_id"},
		{"stats seq", &commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 0}}, "batch.seq"},
		{"stats delta user", &commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{Torrent: model.InfoHash{1}}}}}, "batch.deltas[0]"},
		{"stats delta huge", &commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: 1 << 60}}}}, "batch.deltas[0]"},
		{"member id", &putMemberCmd{Member: model.Member{NodeID: "bad id", ClusterAddr: "x"}}, "member.node_id"},
		{"member addr", &putMemberCmd{Member: model.Member{NodeID: "n1"}}, "member.cluster_addr"},
		{"member url", &putMemberCmd{Member: model.Member{NodeID: "n1", ClusterAddr: "a", SiteURL: strings.Repeat("u", 3000)}}, "member.site_url"},
		{"remove member", &removeMemberCmd{NodeID: ""}, "node_id"},
		{"record kind", &putRecordCmd{Kind: "Bad", Key: "k"}, "kind"},
		{"record key", &putRecordCmd{Kind: "invite", Key: ""}, "key"},
		{"record value", &putRecordCmd{Kind: "invite", Key: "k", Value: make([]byte, maxRecordValue+1)}, "value"},
		{"delete record", &deleteRecordCmd{Kind: "invite"}, "key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encodeCommand(tc.cmd)
			var v *ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("want ValidationError, got %v", err)
			}
			if v.Field != tc.field {
				t.Fatalf("field = %q, want %q (%v)", v.Field, tc.field, err)
			}
		})
	}
}

func TestGoodCommandsRoundTrip(t *testing.T) {
	cmds := []command{
		&createUserCmd{User: goodUser(7, "bob")},
		&updateUserCmd{User: goodUser(7, "bob")},
		&putTorrentCmd{Torrent: goodTorrent(3)},
		&updateTorrentCmd{Torrent: goodTorrent(3)},
		&deleteTorrentCmd{ID: model.InfoHash{3}},
		&setClientRulesCmd{Rules: []model.ClientRule{{Prefix: "-TR", Name: "Transmission"}}},
		&putSettingCmd{Key: "registration", Value: "open"},
		&commitStatsCmd{Batch: model.StatsBatch{NodeID: "n1", Seq: 1, Deltas: []model.StatsDelta{{UserID: 1, Torrent: model.InfoHash{1}, Uploaded: 5}}}},
		&putMemberCmd{Member: model.Member{NodeID: "n1", ClusterAddr: "127.0.0.1:7000"}},
		&removeMemberCmd{NodeID: "n1"},
		&putRecordCmd{Kind: "invite", Key: "abc", Value: []byte("{}")},
		&deleteRecordCmd{Kind: "invite", Key: "abc"},
	}
	for _, c := range cmds {
		data, err := encodeCommand(c)
		if err != nil {
			t.Fatalf("%s: %v", c.typeName(), err)
		}
		got, err := decodeCommand(data)
		if err != nil {
			t.Fatalf("%s: decode: %v", c.typeName(), err)
		}
		if got.typeName() != c.typeName() {
			t.Fatalf("type %s != %s", got.typeName(), c.typeName())
		}
	}
}

func TestDecodeRefusesUnknown(t *testing.T) {
	good, err := encodeCommand(&putSettingCmd{Key: "a", Value: "b"})
	if err != nil {
		t.Fatal(err)
	}
	future := append([]byte{commandVersion + 1}, good[1:]...)
	for name, data := range map[string][]byte{
		"empty":          nil,
		"future version": future,
		"unknown type":   append([]byte{commandVersion}, []byte(`{"type":"drop_all","body":{}}`)...),
	} {
		if _, err := decodeCommand(data); !errors.Is(err, ErrUnknownCommand) {
			t.Errorf("%s: want ErrUnknownCommand, got %v", name, err)
		}
	}
	if _, err := decodeCommand(append([]byte{commandVersion}, []byte(`{"type":"put_setting","body":{"key":""}}`)...)); !IsValidationError(err) {
		t.Errorf("invalid body: want validation error, got %v", err)
	}
	if _, err := decodeCommand(append([]byte{commandVersion}, []byte(`{nope`)...)); err == nil {
		t.Error("garbage decoded")
	}
}

func TestOversizedCommandRefused(t *testing.T) {
	tr := goodTorrent(1)
	tr.Metainfo = make([]byte, MaxCommandBytes)
	_, err := encodeCommand(&putTorrentCmd{Torrent: tr})
	var v *ValidationError
	if !errors.As(err, &v) || v.Field != cmdPutTorrent || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("want size error naming the command, got %v", err)
	}
}
