package metainfo

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/seedbank/seedbank/model"
	"github.com/zeebo/bencode"
)

const (
	maxWebSeeds  = 64   // url-list entries kept per torrent
	maxURLBytes  = 2048 // longest web seed or announce URL
	maxSourceLen = 128  // longest source tag
)

// Sanitized is the stored form of a torrent, made by Sanitize.
type Sanitized struct {
	// Metainfo is the bencoded .torrent without any announce URL: the
	// sanitized info dictionary plus comment, created by, creation date,
	// piece layers (v2) and url-list, keys in canonical order.
	Metainfo []byte
	// IsV1 and IsV2 say which hashes below are set.
	IsV1, IsV2 bool
	// InfoHashV1 is the SHA-1 of the sanitized info dictionary (v1, hybrid).
	InfoHashV1 [20]byte
	// InfoHashV2 is its SHA-256 (v2, hybrid).
	InfoHashV2 [32]byte
	// ID is the primary swarm hash: InfoHashV1 when IsV1, else InfoHashV2
	// truncated to 20 bytes.
	ID model.InfoHash
}

// InfoHashV1Hex returns InfoHashV1 as lowercase hex, or "" without v1.
func (s Sanitized) InfoHashV1Hex() string {
	if !s.IsV1 {
		return ""
	}
	return hex.EncodeToString(s.InfoHashV1[:])
}

// InfoHashV2Hex returns InfoHashV2 as lowercase hex, or "" without v2.
func (s Sanitized) InfoHashV2Hex() string {
	if !s.IsV2 {
		return ""
	}
	return hex.EncodeToString(s.InfoHashV2[:])
}

// SwarmHashes returns the 20-byte hashes clients announce the torrent under:
// ID first, then the truncated v2 hash of a hybrid torrent.
func (s Sanitized) SwarmHashes() []model.InfoHash {
	out := []model.InfoHash{s.ID}
	if s.IsV1 && s.IsV2 {
		out = append(out, model.InfoHash(s.InfoHashV2[:20]))
	}
	return out
}

// storedFile is the top-level dictionary Sanitize writes. zeebo/bencode
// writes struct fields in sorted key order.
type storedFile struct {
	Comment      string             `bencode:"comment,omitempty"`
	CreatedBy    string             `bencode:"created by,omitempty"`
	CreationDate int64              `bencode:"creation date,omitempty"`
	Info         bencode.RawMessage `bencode:"info"`
	PieceLayers  bencode.RawMessage `bencode:"piece layers,omitempty"`
	URLList      []string           `bencode:"url-list,omitempty"`
}

// Sanitize makes the stored form of t. The info dictionary is rebuilt with
// private=1 and source=source and every other key and value of the uploaded
// info dictionary kept (piece data never changes; values are only
// re-encoded to put the keys of nested dictionaries in canonical order). So the same upload and source give the same bytes and
// info hashes on every node. The top level keeps only comment, created by,
// creation date (taken from t's fields as they are now), piece layers (only
// the layers the files need) and url-list (t.WebSeeds, checked again); it
// drops announce, announce-list, nodes, httpseeds and every other key.
//
// source must be 1 to 128 bytes of printable UTF-8, else ErrBadSource. t must
// come from Parse, else ErrNoInfo; an edited WebSeeds entry that is not a
// valid URL gives ErrBadWebSeed. A torrent Parse accepted never fails
// otherwise. t is not modified.
func Sanitize(t *Torrent, source string) (Sanitized, error) {
	if t == nil || len(t.info) == 0 {
		return Sanitized{}, fmt.Errorf("%w: the torrent was not made by Parse", ErrNoInfo)
	}
	if err := checkSource(source); err != nil {
		return Sanitized{}, err
	}
	seeds, err := cleanWebSeeds(nil, t.WebSeeds)
	if err != nil {
		return Sanitized{}, err
	}

	items := appendDictItems(make([]item, 0, countItems(t.info)/2+2), t.info)
	items = slices.DeleteFunc(items, func(it item) bool { return string(it.key) == "private" || string(it.key) == "source" })
	items = append(items,
		item{key: []byte("private"), val: []byte("i1e")},
		item{key: []byte("source"), val: appendString(nil, []byte(source))})
	slices.SortFunc(items, compareItems)
	info := make([]byte, 0, len(t.info)+len(source)+32)
	info = append(info, 'd')
	for _, it := range items {
		info = appendString(info, it.key)
		info = appendCanonical(info, it.val)
	}
	info = append(info, 'e')

	size := len(info) + len(t.pieceLayers) + len(t.Comment) + len(t.CreatedBy) + 128
	for _, u := range seeds {
		size += len(u) + 8
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	err = bencode.NewEncoder(buf).Encode(storedFile{
		Comment:      t.Comment,
		CreatedBy:    t.CreatedBy,
		CreationDate: t.CreationDate,
		Info:         info,
		PieceLayers:  t.pieceLayers,
		URLList:      seeds,
	})
	if err != nil {
		return Sanitized{}, fmt.Errorf("metainfo: encoding the sanitized torrent: %w", err)
	}
	s := Sanitized{Metainfo: buf.Bytes(), IsV1: t.IsV1, IsV2: t.IsV2}
	if t.IsV1 {
		s.InfoHashV1 = sha1.Sum(info)
		s.ID = s.InfoHashV1
	}
	if t.IsV2 {
		s.InfoHashV2 = sha256.Sum256(info)
		if !t.IsV1 {
			s.ID = model.InfoHash(s.InfoHashV2[:20])
		}
	}
	return s, nil
}

func checkSource(source string) error {
	if source == "" || len(source) > maxSourceLen {
		return fmt.Errorf("%w: it must have 1 to %d bytes, not %d", ErrBadSource, maxSourceLen, len(source))
	}
	if !utf8.ValidString(source) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrBadSource, source)
	}
	for _, r := range source {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q has a control character", ErrBadSource, source)
		}
	}
	return nil
}

// Personalize returns the .torrent a user downloads: the stored torrent
// sanitized (normally Sanitized.Metainfo) with announce set to
// announceURLs[0] and announce-list holding one tier with every URL of
// announceURLs (BEP 12; a client then fails over between nodes by itself).
// webSeeds (checked like url-list entries) are added to the stored url-list.
// The info dictionary's bytes are copied untouched, so the info hashes do
// not change. Announce URLs must be http, https or udp URLs; duplicates are
// dropped. Of the stored top-level keys only info, comment, created by,
// creation date, piece layers and url-list are kept (no nodes, no
// httpseeds), and keys are written in canonical order. sanitized is checked
// as strict bencode first; an error wraps ErrNotBencode, ErrNoInfo,
// ErrBadAnnounce or ErrBadWebSeed.
func Personalize(sanitized []byte, announceURLs []string, webSeeds []string) ([]byte, error) {
	if err := checkDocument(sanitized); err != nil {
		return nil, err
	}
	announce, err := cleanAnnounce(announceURLs)
	if err != nil {
		return nil, err
	}

	top := map[string]any{
		"announce":      announce[0],
		"announce-list": [][]string{announce},
	}
	var seeds []string
	haveInfo := false
	for _, it := range pick(sanitized, "info", "comment", "created by", "creation date", "piece layers", "url-list") {
		switch key := string(it.key); key {
		case "info":
			if !isDict(it.val) {
				return nil, fmt.Errorf("%w: \"info\" is not a dictionary", ErrNoInfo)
			}
			haveInfo = true
			top[key] = bencode.RawMessage(it.val)
		case "comment", "created by", "creation date", "piece layers":
			top[key] = bencode.RawMessage(it.val)
		case "url-list":
			if s, ok := asString(it.val); ok && len(s) > 0 {
				seeds = append(seeds, string(s))
			} else if isList(it.val) {
				for _, e := range listItems(it.val) {
					if s, ok := asString(e); ok {
						seeds = append(seeds, string(s))
					}
				}
			}
		}
	}
	if !haveInfo {
		return nil, fmt.Errorf("%w: no \"info\" key", ErrNoInfo)
	}
	if seeds, err = cleanWebSeeds(seeds, webSeeds); err != nil {
		return nil, err
	}
	if len(seeds) > 0 {
		top["url-list"] = seeds
	}
	out, err := bencode.EncodeBytes(top)
	if err != nil {
		return nil, fmt.Errorf("metainfo: encoding the personalised torrent: %w", err)
	}
	return out, nil
}

// cleanAnnounce checks announce URLs and drops duplicates, keeping order.
func cleanAnnounce(urls []string) ([]string, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: at least one announce URL is needed", ErrBadAnnounce)
	}
	out := make([]string, 0, len(urls))
	for _, u := range urls {
		if why := checkURL(u, "http", "https", "udp"); why != "" {
			return nil, fmt.Errorf("%w: %q: %s", ErrBadAnnounce, clip(u), why)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// cleanWebSeeds checks the web seeds in add, appends those not yet in dst
// and returns dst. Empty strings, which some tools write for "none", are
// skipped. Entries already in dst are trusted.
func cleanWebSeeds(dst []string, add []string) ([]string, error) {
	for _, u := range add {
		if u == "" {
			continue
		}
		if why := checkURL(u, "http", "https", "ftp"); why != "" {
			return nil, fmt.Errorf("%w: %q: %s", ErrBadWebSeed, clip(u), why)
		}
		if !slices.Contains(dst, u) {
			if len(dst) >= maxWebSeeds {
				return nil, fmt.Errorf("%w: more than %d web seeds", ErrBadWebSeed, maxWebSeeds)
			}
			dst = append(dst, u)
		}
	}
	return dst, nil
}

// checkURL returns why u is not an absolute URL with a host and one of the
// schemes, or "".
func checkURL(u string, schemes ...string) string {
	if len(u) > maxURLBytes {
		return fmt.Sprintf("longer than %d bytes", maxURLBytes)
	}
	if !utf8.ValidString(u) {
		return "not valid UTF-8"
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f {
			return "contains a space or control character"
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return "not a URL"
	}
	if !slices.Contains(schemes, p.Scheme) {
		return fmt.Sprintf("the scheme must be one of %s", strings.Join(schemes, ", "))
	}
	if p.Host == "" || p.Hostname() == "" {
		return "no host"
	}
	if p.User != nil {
		return "must not carry a user name or password"
	}
	return ""
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
