package announce

import (
	"strings"

	"github.com/seedbank/seedbank/model"
)

// announceQuery is an HTTP announce's query string, decoded without
// allocating: binary values land in fixed arrays, the rest are substrings of
// the raw query.
type announceQuery struct {
	infoHash   model.InfoHash
	peerID     [20]byte
	port       uint16
	uploaded   uint64
	downloaded uint64
	left       uint64
	event      event
	numWant    int // -1: not given
	compact    bool
	noPeerID   bool
	ip         string // raw (still escaped) "ip" value; "" when absent
	seen       uint16 // seen* bits of the parameters present
}

const (
	seenInfoHash uint16 = 1 << iota
	seenPeerID
	seenPort
	seenUploaded
	seenDownloaded
	seenLeft
	seenEvent
	seenNumWant
	seenCompact
	seenNoPeerID
	seenIP
	seenKey
)

// maxKeyLen bounds the "key" parameter (BEP 7 suggests 8 hex chars).
const maxKeyLen = 64

// parseAnnounceQuery decodes raw into q. It returns a *ParamError naming the
// first missing or malformed parameter. Unknown parameters are ignored; a
// known one given twice is an error.
func parseAnnounceQuery(raw string, q *announceQuery) error {
	*q = announceQuery{numWant: -1, compact: true}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		key, val, _ := strings.Cut(pair, "=")
		var bit uint16
		var err error
		switch key {
		case "info_hash":
			bit = seenInfoHash
			err = unescape20(q.infoHash[:], val, "info_hash")
		case "peer_id":
			bit = seenPeerID
			err = unescape20(q.peerID[:], val, "peer_id")
		case "port":
			bit = seenPort
			var v uint64
			v, err = parseUint(val, "port")
			if err == nil && (v == 0 || v > 65535) {
				err = &ParamError{"port", "must be between 1 and 65535"}
			}
			q.port = uint16(v)
		case "uploaded":
			bit = seenUploaded
			q.uploaded, err = parseUint(val, "uploaded")
		case "downloaded":
			bit = seenDownloaded
			q.downloaded, err = parseUint(val, "downloaded")
		case "left":
			bit = seenLeft
			q.left, err = parseUint(val, "left")
		case "event":
			bit = seenEvent
			q.event, err = parseEvent(val)
		case "numwant":
			bit = seenNumWant
			q.numWant, err = parseNumWant(val)
		case "compact":
			bit = seenCompact
			q.compact = val != "0"
		case "no_peer_id":
			bit = seenNoPeerID
			q.noPeerID = val == "1"
		case "ip":
			bit = seenIP
			q.ip = val
		case "key":
			bit = seenKey
			if len(val) > 3*maxKeyLen {
				err = &ParamError{"key", "too long"}
			}
		default:
			continue
		}
		if err != nil {
			return err
		}
		if q.seen&bit != 0 {
			return &ParamError{key, "given more than once"}
		}
		q.seen |= bit
	}
	for _, r := range [...]struct {
		bit  uint16
		name string
	}{
		{seenInfoHash, "info_hash"},
		{seenPeerID, "peer_id"},
		{seenPort, "port"},
		{seenUploaded, "uploaded"},
		{seenDownloaded, "downloaded"},
		{seenLeft, "left"},
	} {
		if q.seen&r.bit == 0 {
			return &ParamError{r.name, "missing"}
		}
	}
	return nil
}

// parseScrapeQuery appends the info_hash values of raw to dst, at most max.
func parseScrapeQuery(raw string, dst []model.InfoHash, max int) ([]model.InfoHash, error) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		key, val, _ := strings.Cut(pair, "=")
		if key != "info_hash" {
			continue
		}
		if len(dst) >= max {
			return dst, &ParamError{"info_hash", "too many in one scrape (the limit is " + itoa(max) + ")"}
		}
		var h model.InfoHash
		if err := unescape20(h[:], val, "info_hash"); err != nil {
			return dst, err
		}
		dst = append(dst, h)
	}
	if len(dst) == 0 {
		return dst, &ParamError{"info_hash", "missing: this tracker only scrapes the torrents named"}
	}
	return dst, nil
}

func parseEvent(v string) (event, error) {
	switch v {
	case "", "empty":
		return eventNone, nil
	case "started":
		return eventStarted, nil
	case "completed":
		return eventCompleted, nil
	case "stopped":
		return eventStopped, nil
	case "paused":
		return eventPaused, nil
	}
	return 0, &ParamError{"event", "must be started, completed, stopped, paused or empty"}
}

func parseNumWant(v string) (int, error) {
	if strings.HasPrefix(v, "-") {
		if _, err := parseUint(v[1:], "numwant"); err != nil {
			return 0, err
		}
		return -1, nil // negative: the default
	}
	n, err := parseUint(v, "numwant")
	if err != nil {
		return 0, err
	}
	return int(min(n, 1<<30)), nil
}

// parseUint parses a non-negative decimal of at most 20 digits.
func parseUint(s, name string) (uint64, error) {
	if s == "" {
		return 0, &ParamError{name, "empty"}
	}
	if len(s) > 20 {
		return 0, &ParamError{name, "not a number"}
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, &ParamError{name, "not a number"}
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, &ParamError{name, "too large"}
		}
		v = v*10 + d
	}
	return v, nil
}

// unescape20 percent-decodes s into exactly 20 bytes of dst.
func unescape20(dst []byte, s, name string) error {
	n, ok := unescapeInto(dst, s)
	if !ok {
		return &ParamError{name, "malformed percent-encoding or longer than 20 bytes"}
	}
	if n != 20 {
		return &ParamError{name, "must be 20 bytes, got " + itoa(n)}
	}
	return nil
}

// unescapeInto percent-decodes s into dst ("+" is a space) and returns the
// length. ok is false for a bad escape or when dst is too small.
func unescapeInto(dst []byte, s string) (n int, ok bool) {
	for i := 0; i < len(s); i++ {
		if n >= len(dst) {
			return n, false
		}
		c := s[i]
		switch c {
		case '%':
			if i+2 >= len(s) {
				return n, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return n, false
			}
			c = hi<<4 | lo
			i += 2
		case '+':
			c = ' '
		}
		dst[n] = c
		n++
	}
	return n, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// itoa formats a small non-negative int (errors only).
func itoa(n int) string {
	return string(appendInt(nil, int64(n)))
}
