package web

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/model"
)

// Web seeds (BEP 19 url-list) of a dataset.
//
// The stored .torrent keeps the url-list the uploader gave, and its bytes
// never change (the replicated store refuses a new metainfo, so the info
// hash stays a permanent identifier). An edit stores the current list in
// the metadata field metaWebSeeds instead, one URL a line; when that field
// is present it replaces the stored url-list in every downloaded .torrent.
// It travels in the ordinary update_torrent command, so an older node
// applies it like any other metadata field (and, not knowing it, serves
// the upload's url-list until it is upgraded).
const (
	metaWebSeeds = "web_seeds"
	// fieldWebSeeds is the edit form's field (one URL a line).
	fieldWebSeeds = metaWebSeeds

	maxWebSeeds     = 20
	maxWebSeedBytes = 1024
)

// webSeedsOf returns t's current web seeds.
func webSeedsOf(t *model.Torrent) []string {
	if v, ok := t.Metadata[metaWebSeeds]; ok {
		return splitLines(v)
	}
	return storedWebSeeds(t.Metainfo)
}

// storedWebSeeds reads the url-list of a stored .torrent.
func storedWebSeeds(metainfo []byte) []string {
	var top map[string]bencode.RawMessage
	if err := bencode.DecodeBytes(metainfo, &top); err != nil {
		return nil
	}
	raw, ok := top["url-list"]
	if !ok {
		return nil
	}
	var list []string
	if bencode.DecodeBytes(raw, &list) == nil {
		return list
	}
	var one string
	if bencode.DecodeBytes(raw, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

// withoutWebSeeds returns the stored .torrent without its url-list, the
// other top-level values byte for byte (so the info hash is unchanged).
func withoutWebSeeds(metainfo []byte) ([]byte, error) {
	var top map[string]bencode.RawMessage
	if err := bencode.DecodeBytes(metainfo, &top); err != nil {
		return nil, fmt.Errorf("read stored torrent: %w", err)
	}
	if _, ok := top["url-list"]; !ok {
		return metainfo, nil
	}
	delete(top, "url-list")
	out, err := bencode.EncodeBytes(top)
	if err != nil {
		return nil, fmt.Errorf("write stored torrent without url-list: %w", err)
	}
	return out, nil
}

func splitLines(v string) []string {
	var out []string
	for _, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// parseWebSeeds checks a new list of web seed URLs: http or https,
// absolute with a host, no credentials, at most maxWebSeedBytes each and
// maxWebSeeds in all. Entries of the current list are kept as they are
// (an upload's url-list may hold ftp URLs, and up to 64), so an edit that
// leaves them alone never fails on them. Blank entries are skipped and
// duplicates dropped. The message names the first bad entry.
func parseWebSeeds(list, current []string) ([]string, string) {
	var out []string
	for i, u := range list {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if slices.Contains(current, u) {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
			continue
		}
		if why := checkWebSeed(u); why != "" {
			return nil, fmt.Sprintf("Web seed %d (%s) %s.", i+1, clipURL(u), why)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if limit := max(maxWebSeeds, len(current)); len(out) > limit {
		return nil, fmt.Sprintf("At most %d web seeds; there are %d.", limit, len(out))
	}
	return out, ""
}

func checkWebSeed(u string) string {
	if len(u) > maxWebSeedBytes {
		return fmt.Sprintf("is longer than %d bytes", maxWebSeedBytes)
	}
	if !utf8.ValidString(u) {
		return "is not valid UTF-8"
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f {
			return "contains a space or a control character"
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return "is not a URL"
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return "is not an http:// or https:// URL"
	}
	if p.Hostname() == "" {
		return "has no host"
	}
	if p.User != nil {
		return "must not contain a user name or password"
	}
	if p.Fragment != "" {
		return "must not have a #fragment"
	}
	return ""
}

// clipURL shortens u for a message.
func clipURL(u string) string {
	if len(u) <= 80 {
		return u
	}
	cut := 77
	for cut > 0 && !utf8.RuneStart(u[cut]) {
		cut--
	}
	return u[:cut] + "…"
}
