// Package loadgen drives BitTorrent trackers with HTTP and UDP announces and
// validates every answer. It is the engine of tools/trackerbench: a fixture
// of swarms (info hashes, peers, passkeys), closed-loop and rate-paced
// workers, latency samples, and strict validators for bencoded announce
// responses and BEP 15 packets.
//
// The validators allocate nothing, so the generator spends its core on
// sending requests, not on checking them.
package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// AnnounceResult is what a valid announce response said.
type AnnounceResult struct {
	Interval   int64
	Complete   int64 // seeders; -1 when absent
	Incomplete int64 // leechers; -1 when absent
	Peers      int   // IPv4 peers in the compact list
}

// Errors the validators return; wrapped with details.
var (
	ErrBencode  = errors.New("malformed bencode")
	ErrFailure  = errors.New("tracker failure")
	ErrResponse = errors.New("invalid announce response")
	ErrHTTP     = errors.New("invalid HTTP response")
	ErrUDP      = errors.New("invalid UDP packet")
)

const maxDepth = 16

// ValidateAnnounceBody checks a bencoded HTTP announce response to a
// compact=1 request: one dictionary and nothing after it, no "failure
// reason", a positive integer "interval", and "peers" a byte string of 6-byte
// entries, at most maxPeers of them. Keys must be byte strings in strictly
// increasing order (BEP 3). It does not allocate.
func ValidateAnnounceBody(b []byte, maxPeers int) (AnnounceResult, error) {
	res := AnnounceResult{Complete: -1, Incomplete: -1}
	if len(b) == 0 || b[0] != 'd' {
		return res, fmt.Errorf("%w: not a dictionary", ErrBencode)
	}
	i := 1
	var prev []byte
	haveInterval, havePeers := false, false
	for {
		if i >= len(b) {
			return res, fmt.Errorf("%w: unterminated dictionary", ErrBencode)
		}
		if b[i] == 'e' {
			i++
			break
		}
		key, next, err := parseString(b, i)
		if err != nil {
			return res, fmt.Errorf("%w: key: %v", ErrBencode, err)
		}
		if prev != nil && bytes.Compare(prev, key) >= 0 {
			return res, fmt.Errorf("%w: keys not sorted (%q after %q)", ErrBencode, key, prev)
		}
		prev = key
		i = next
		if i >= len(b) {
			return res, fmt.Errorf("%w: key %q has no value", ErrBencode, key)
		}
		switch string(key) {
		case "failure reason":
			msg, _, err := parseString(b, i)
			if err != nil {
				return res, fmt.Errorf("%w: failure reason: %v", ErrBencode, err)
			}
			return res, fmt.Errorf("%w: %.200s", ErrFailure, msg)
		case "interval", "complete", "incomplete":
			v, next, err := parseInt(b, i)
			if err != nil {
				return res, fmt.Errorf("%w: %s: %v", ErrResponse, key, err)
			}
			switch key[0] {
			case 'i':
				if string(key) == "interval" {
					res.Interval, haveInterval = v, true
				} else {
					res.Incomplete = v
				}
			case 'c':
				res.Complete = v
			}
			if v < 0 {
				return res, fmt.Errorf("%w: %s is negative", ErrResponse, key)
			}
			i = next
		case "peers":
			p, next, err := parseString(b, i)
			if err != nil {
				return res, fmt.Errorf("%w: peers is not a compact string: %v", ErrResponse, err)
			}
			if len(p)%6 != 0 {
				return res, fmt.Errorf("%w: peers is %d bytes, not a multiple of 6", ErrResponse, len(p))
			}
			res.Peers, havePeers = len(p)/6, true
			i = next
		default:
			next, err := skipValue(b, i, 1)
			if err != nil {
				return res, fmt.Errorf("%w: value of %q: %v", ErrBencode, key, err)
			}
			i = next
		}
	}
	if i != len(b) {
		return res, fmt.Errorf("%w: %d bytes after the dictionary", ErrBencode, len(b)-i)
	}
	if !haveInterval || res.Interval <= 0 {
		return res, fmt.Errorf("%w: no positive interval", ErrResponse)
	}
	if !havePeers {
		return res, fmt.Errorf("%w: no peers", ErrResponse)
	}
	if res.Peers > maxPeers {
		return res, fmt.Errorf("%w: %d peers, at most %d possible", ErrResponse, res.Peers, maxPeers)
	}
	return res, nil
}

// parseString parses a bencoded byte string at b[i:].
func parseString(b []byte, i int) (s []byte, next int, err error) {
	n, j := 0, i
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		if j-i >= 9 {
			return nil, 0, errors.New("string length too long")
		}
		n = n*10 + int(b[j]-'0')
	}
	if j == i || j >= len(b) || b[j] != ':' {
		return nil, 0, errors.New("expected a byte string")
	}
	if j-i > 1 && b[i] == '0' {
		return nil, 0, errors.New("leading zero in string length")
	}
	j++
	if n > len(b)-j {
		return nil, 0, errors.New("string runs past the end")
	}
	return b[j : j+n], j + n, nil
}

// parseInt parses a bencoded integer at b[i:].
func parseInt(b []byte, i int) (v int64, next int, err error) {
	if i >= len(b) || b[i] != 'i' {
		return 0, 0, errors.New("expected an integer")
	}
	j := i + 1
	neg := false
	if j < len(b) && b[j] == '-' {
		neg = true
		j++
	}
	start := j
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		if j-start >= 18 {
			return 0, 0, errors.New("integer too long")
		}
		v = v*10 + int64(b[j]-'0')
	}
	if j == start || j >= len(b) || b[j] != 'e' {
		return 0, 0, errors.New("malformed integer")
	}
	if (j-start > 1 && b[start] == '0') || (neg && v == 0) {
		return 0, 0, errors.New("non-canonical integer")
	}
	if neg {
		v = -v
	}
	return v, j + 1, nil
}

// skipValue returns the index after the bencoded value at b[i:].
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errors.New("nested too deeply")
	}
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch c := b[i]; {
	case c == 'i':
		_, next, err := parseInt(b, i)
		return next, err
	case c >= '0' && c <= '9':
		_, next, err := parseString(b, i)
		return next, err
	case c == 'l' || c == 'd':
		i++
		for {
			if i >= len(b) {
				return 0, errors.New("unterminated list or dictionary")
			}
			if b[i] == 'e' {
				return i + 1, nil
			}
			if c == 'd' {
				_, next, err := parseString(b, i)
				if err != nil {
					return 0, err
				}
				i = next
			}
			next, err := skipValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = next
		}
	default:
		return 0, fmt.Errorf("unexpected byte %q", c)
	}
}

// BEP 15 constants.
const (
	UDPProtocolID  = 0x41727101980
	udpConnect     = 0
	udpAnnounce    = 1
	udpError       = 3
	udpAnnounceLen = 98
)

// ValidateUDPConnect checks a BEP 15 connect response for transaction id tid
// and returns its connection id.
func ValidateUDPConnect(pkt []byte, tid uint32) (uint64, error) {
	if err := udpHeader(pkt, tid, udpConnect); err != nil {
		return 0, err
	}
	if len(pkt) != 16 {
		return 0, fmt.Errorf("%w: connect response is %d bytes, want 16", ErrUDP, len(pkt))
	}
	return binary.BigEndian.Uint64(pkt[8:]), nil
}

// ValidateUDPAnnounce checks a BEP 15 IPv4 announce response for transaction
// id tid: action 1, a positive interval, and 6-byte peers, at most maxPeers.
// An error packet (action 3) is returned as ErrFailure with its message.
func ValidateUDPAnnounce(pkt []byte, tid uint32, maxPeers int) (AnnounceResult, error) {
	res := AnnounceResult{Complete: -1, Incomplete: -1}
	if err := udpHeader(pkt, tid, udpAnnounce); err != nil {
		return res, err
	}
	if len(pkt) < 20 {
		return res, fmt.Errorf("%w: announce response is %d bytes, want at least 20", ErrUDP, len(pkt))
	}
	if (len(pkt)-20)%6 != 0 {
		return res, fmt.Errorf("%w: peer list is %d bytes, not a multiple of 6", ErrUDP, len(pkt)-20)
	}
	res.Interval = int64(binary.BigEndian.Uint32(pkt[8:]))
	res.Incomplete = int64(binary.BigEndian.Uint32(pkt[12:]))
	res.Complete = int64(binary.BigEndian.Uint32(pkt[16:]))
	res.Peers = (len(pkt) - 20) / 6
	if res.Interval <= 0 {
		return res, fmt.Errorf("%w: interval %d", ErrUDP, res.Interval)
	}
	if res.Peers > maxPeers {
		return res, fmt.Errorf("%w: %d peers, at most %d possible", ErrUDP, res.Peers, maxPeers)
	}
	return res, nil
}

// udpHeader checks the action and transaction id of a response; an error
// packet with the right transaction id becomes ErrFailure.
func udpHeader(pkt []byte, tid uint32, action uint32) error {
	if len(pkt) < 8 {
		return fmt.Errorf("%w: %d bytes", ErrUDP, len(pkt))
	}
	if got := binary.BigEndian.Uint32(pkt[4:]); got != tid {
		return fmt.Errorf("%w: transaction id %#x, want %#x", ErrUDP, got, tid)
	}
	switch got := binary.BigEndian.Uint32(pkt); got {
	case action:
		return nil
	case udpError:
		return fmt.Errorf("%w: %.200s", ErrFailure, pkt[8:])
	default:
		return fmt.Errorf("%w: action %d, want %d", ErrUDP, got, action)
	}
}
