// Package model holds the plain data types of seedbank's replicated state:
// users, torrents, stats, client rules, settings and cluster members. It has
// no behaviour beyond validation helpers, so every other package can share it
// without importing raft, bbolt or HTTP.
package model

import (
	"encoding/hex"
	"fmt"
)

// Role is a user's rank on the site. Rights per role live in the web package.
type Role string

// The roles, lowest first.
const (
	RoleMember    Role = "member"
	RoleModerator Role = "moderator"
	RoleAdmin     Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleMember, RoleModerator, RoleAdmin:
		return true
	}
	return false
}

// User is one account, replicated to every node.
type User struct {
	ID           uint64 `json:"id"`
	Username     string `json:"username"`
	Email        string `json:"email"`
	PasswordHash string `json:"password_hash"`
	// Passkey is 32 lowercase hex characters; it authenticates announces.
	Passkey string `json:"passkey"`
	Role    Role   `json:"role"`
	Enabled bool   `json:"enabled"`
	// Created is Unix milliseconds, chosen by the proposing node.
	Created int64 `json:"created"`
	// SessionEpoch is bumped to end every session of the user on every node.
	SessionEpoch uint64 `json:"session_epoch"`
	// Extra holds account fields owned by the web layer (email confirmed,
	// TOTP secret, recovery codes...), so adding one needs no new command.
	Extra map[string]string `json:"extra,omitempty"`
}

// UserRef is what the announce hot path needs to know about a passkey's owner.
type UserRef struct {
	ID      uint64
	Enabled bool
}

// InfoHash is a 20-byte swarm identifier: a v1 SHA-1 info hash, or a v2
// SHA-256 info hash truncated to 20 bytes (BEP 52).
type InfoHash [20]byte

// String returns the lowercase hex form.
func (h InfoHash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeroes (unset).
func (h InfoHash) IsZero() bool { return h == InfoHash{} }

// ParseInfoHash parses 40 hex characters.
func ParseInfoHash(s string) (InfoHash, error) {
	var h InfoHash
	if len(s) != 40 {
		return h, fmt.Errorf("info hash must be 40 hex characters, got %d", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("info hash is not hex: %w", err)
	}
	return h, nil
}

// File is one file of a torrent, with its path joined by "/".
type File struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
}

// Torrent is one dataset in the catalog.
type Torrent struct {
	// ID is the torrent's primary swarm hash: the v1 info hash when the
	// torrent has one, else the truncated v2 hash.
	ID InfoHash `json:"id"`
	// InfoHashV1 is the SHA-1 of the sanitized info dict, hex; empty for v2-only.
	InfoHashV1 string `json:"info_hash_v1,omitempty"`
	// InfoHashV2 is the full SHA-256 of the sanitized info dict, hex; empty for v1-only.
	InfoHashV2 string `json:"info_hash_v2,omitempty"`
	// OriginalInfoHash is the uploader's info hash before sanitizing, hex.
	OriginalInfoHash string `json:"original_info_hash,omitempty"`
	Name             string `json:"name"`
	// Metainfo is the sanitized .torrent file, bencoded, without announce URLs.
	Metainfo  []byte            `json:"metainfo"`
	Files     []File            `json:"files"`
	TotalSize int64             `json:"total_size"`
	Uploader  uint64            `json:"uploader"`
	Created   int64             `json:"created"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// SwarmHashes returns every 20-byte hash clients may announce this torrent
// under: the v1 hash and the truncated v2 hash, when present.
func (t *Torrent) SwarmHashes() []InfoHash {
	out := []InfoHash{t.ID}
	if t.InfoHashV2 != "" && len(t.InfoHashV2) == 64 {
		var h InfoHash
		if _, err := hex.Decode(h[:], []byte(t.InfoHashV2[:40])); err == nil && h != t.ID {
			out = append(out, h)
		}
	}
	return out
}

// TorrentRef is what the announce hot path needs to know about a swarm hash.
type TorrentRef struct {
	// ID is the torrent's primary hash; both hashes of a hybrid torrent map to it.
	ID        InfoHash
	TotalSize int64
}

// Stats are cumulative transfer counters of a user or a torrent.
type Stats struct {
	Uploaded   uint64 `json:"uploaded"`
	Downloaded uint64 `json:"downloaded"`
	Snatches   uint64 `json:"snatches"`
}

// StatsDelta is the change of one user's counters on one torrent.
type StatsDelta struct {
	UserID     uint64   `json:"user_id"`
	Torrent    InfoHash `json:"torrent"`
	Uploaded   uint64   `json:"uploaded"`
	Downloaded uint64   `json:"downloaded"`
	Snatches   uint64   `json:"snatches"`
}

// StatsBatch is one node's flush of accumulated deltas. (NodeID, Seq) makes
// it idempotent: the FSM applies a node's batches only in increasing Seq.
type StatsBatch struct {
	NodeID string       `json:"node_id"`
	Seq    uint64       `json:"seq"`
	Deltas []StatsDelta `json:"deltas"`
}

// ClientRule allows BitTorrent clients whose peer_id starts with Prefix.
type ClientRule struct {
	Prefix string `json:"prefix"`
	Name   string `json:"name"`
}

// Member is one node of the cluster as recorded in the replicated state.
type Member struct {
	NodeID         string `json:"node_id"`
	SiteURL        string `json:"site_url"`
	AnnounceURL    string `json:"announce_url"`
	UDPAnnounceURL string `json:"udp_announce_url,omitempty"`
	Institution    string `json:"institution,omitempty"`
	ClusterAddr    string `json:"cluster_addr"`
	// Features are the optional log encodings this node's build applies,
	// space-separated (raftstore.Features): writers use one only when every
	// member lists it, so a mixed-version cluster keeps applying.
	Features string `json:"features,omitempty"`
}

// MarshalText encodes h as lowercase hex, so JSON and map keys read well.
func (h InfoHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses 40 hex characters.
func (h *InfoHash) UnmarshalText(b []byte) error {
	v, err := ParseInfoHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// PasskeyBytes is a passkey's 32 hex digits as 16 bytes.
type PasskeyBytes [16]byte

// ParsePasskey decodes a passkey of 32 lowercase hex digits; ok is false
// for any other string. It runs on every announce: one table load per digit
// and no branches on the digits.
func ParsePasskey(s string) (k PasskeyBytes, ok bool) {
	if len(s) != 2*len(k) {
		return k, false
	}
	var digits byte // every digit's value ORed: above 0xf if one was not
	for i := range k {
		hi, lo := hexDigit[s[2*i]], hexDigit[s[2*i+1]]
		digits |= hi | lo
		k[i] = hi<<4 | lo
	}
	return k, digits <= 0xf
}

// hexDigit maps a lowercase hex digit to its value, any other byte to 0xff.
var hexDigit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()
