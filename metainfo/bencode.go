package metainfo

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
)

// This file holds the strict, bounded bencode reader used on untrusted
// uploads. zeebo/bencode (used for encoding) is not used to decode uploads:
// v1.0.0 allocates a string's declared length before reading it (an input of
// a dozen bytes can ask for 2 GiB), recurses without a depth limit, and
// copies integers in raw mode without checking them.
//
// Reading happens in two steps. scanner.value checks a whole document once:
// syntax, canonical integers and string lengths, no duplicate dictionary
// keys, nesting at most maxNesting. Its only allocation is a scratch stack of
// key slices. After that, the helpers below (skip, dictItems, listItems...)
// walk the checked bytes and assume they are valid; they must only be given
// spans of a checked document.

// maxNesting bounds how deeply lists and dictionaries may nest. A v2 file
// tree uses one level per path element, so this also bounds v2 path depth.
const maxNesting = 200

// scanner checks that data is strict bencode. data must be shorter than
// 4 GiB (checkDocument ensures it).
type scanner struct {
	data []byte
	keys []span // keys of the dictionaries being read, innermost last
}

// span locates bytes of scanner.data; 8 bytes where a slice takes 24.
type span struct{ lo, hi uint32 }

func (s *scanner) bytes(sp span) []byte { return s.data[sp.lo:sp.hi] }

// checkDocument checks that data is one strict bencoded dictionary and
// nothing else.
func checkDocument(data []byte) error {
	if len(data) == 0 || data[0] != 'd' {
		return fmt.Errorf("%w: a .torrent file starts with a dictionary ('d')", ErrNotBencode)
	}
	if len(data) >= 1<<32 {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	s := scanner{data: data}
	end, err := s.value(0, 0)
	if err != nil {
		return err
	}
	if end != len(data) {
		return fmt.Errorf("%w: %d bytes of trailing data after the torrent", ErrNotBencode, len(data)-end)
	}
	return nil
}

func (s *scanner) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrNotBencode, pos, fmt.Sprintf(format, args...))
}

// value checks the value starting at pos and returns the position after it.
func (s *scanner) value(pos, depth int) (int, error) {
	if pos >= len(s.data) {
		return 0, s.errorf(pos, "unexpected end of data")
	}
	switch c := s.data[pos]; {
	case c == 'i':
		return s.integer(pos)
	case c >= '0' && c <= '9':
		return s.str(pos)
	case c == 'l':
		if depth >= maxNesting {
			return 0, fmt.Errorf("%w: lists and dictionaries nest deeper than %d levels", ErrTooLarge, maxNesting)
		}
		pos++
		for {
			if pos >= len(s.data) {
				return 0, s.errorf(pos, "unterminated list")
			}
			if s.data[pos] == 'e' {
				return pos + 1, nil
			}
			var err error
			if pos, err = s.value(pos, depth+1); err != nil {
				return 0, err
			}
		}
	case c == 'd':
		if depth >= maxNesting {
			return 0, fmt.Errorf("%w: lists and dictionaries nest deeper than %d levels", ErrTooLarge, maxNesting)
		}
		start := len(s.keys)
		sorted := true
		pos++
		for {
			if pos >= len(s.data) {
				return 0, s.errorf(pos, "unterminated dictionary")
			}
			if s.data[pos] == 'e' {
				if !sorted {
					keys := s.keys[start:]
					slices.SortFunc(keys, func(a, b span) int { return bytes.Compare(s.bytes(a), s.bytes(b)) })
					for i := 1; i < len(keys); i++ {
						if k := s.bytes(keys[i]); bytes.Equal(s.bytes(keys[i-1]), k) {
							return 0, s.errorf(pos, "duplicate dictionary key %q", clip(string(k)))
						}
					}
				}
				s.keys = s.keys[:start]
				return pos + 1, nil
			}
			if c := s.data[pos]; c < '0' || c > '9' {
				return 0, s.errorf(pos, "dictionary key is not a string")
			}
			end, err := s.str(pos)
			if err != nil {
				return 0, err
			}
			key := span{uint32(end - len(strBytes(s.data[pos:end]))), uint32(end)}
			if n := len(s.keys); n > start {
				switch bytes.Compare(s.bytes(s.keys[n-1]), s.bytes(key)) {
				case 0:
					return 0, s.errorf(pos, "duplicate dictionary key %q", clip(string(s.bytes(key))))
				case 1:
					sorted = false
				}
			}
			s.keys = append(s.keys, key)
			if pos, err = s.value(end, depth+1); err != nil {
				return 0, err
			}
		}
	default:
		return 0, s.errorf(pos, "unexpected byte %q", c)
	}
}

// integer checks "i<decimal>e": no leading zeros, no "-0", fits in int64.
func (s *scanner) integer(pos int) (int, error) {
	i := pos + 1
	end := bytes.IndexByte(s.data[i:min(len(s.data), i+22)], 'e')
	if end < 0 {
		return 0, s.errorf(pos, "unterminated or overlong integer")
	}
	digits := s.data[i : i+end]
	d := digits
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || (d[0] == '0' && len(digits) > 1) {
		return 0, s.errorf(pos, "integer %q is not canonical", digits)
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, s.errorf(pos, "integer %q has a non-digit", digits)
		}
	}
	if _, err := strconv.ParseInt(string(digits), 10, 64); err != nil {
		return 0, s.errorf(pos, "integer %q does not fit in 64 bits", digits)
	}
	return i + end + 1, nil
}

// str checks "<length>:<bytes>" and that the bytes are all present.
func (s *scanner) str(pos int) (int, error) {
	n := 0
	i := pos
	for ; i < len(s.data) && s.data[i] != ':'; i++ {
		c := s.data[i]
		if c < '0' || c > '9' {
			return 0, s.errorf(pos, "string length has a non-digit")
		}
		if i > pos && s.data[pos] == '0' {
			return 0, s.errorf(pos, "string length has a leading zero")
		}
		if n > (len(s.data)-c2i(c))/10 {
			return 0, s.errorf(pos, "string is longer than the data")
		}
		n = n*10 + c2i(c)
	}
	if i >= len(s.data) {
		return 0, s.errorf(pos, "unterminated string length")
	}
	if n > len(s.data)-i-1 {
		return 0, s.errorf(pos, "string of %d bytes runs past the end of the data", n)
	}
	return i + 1 + n, nil
}

func c2i(c byte) int { return int(c - '0') }

// The helpers below assume their input is a span of a checked document.

// skip returns the position after the value starting at pos.
func skip(data []byte, pos int) int {
	switch c := data[pos]; c {
	case 'i':
		for data[pos] != 'e' {
			pos++
		}
		return pos + 1
	case 'l', 'd':
		pos++
		for data[pos] != 'e' {
			pos = skip(data, pos)
		}
		return pos + 1
	default:
		n := 0
		for ; data[pos] != ':'; pos++ {
			n = n*10 + c2i(data[pos])
		}
		return pos + 1 + n
	}
}

// strBytes returns the content of the encoded string raw.
func strBytes(raw []byte) []byte {
	return raw[bytes.IndexByte(raw, ':')+1:]
}

// asString returns the content of raw if it is a string.
func asString(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return nil, false
	}
	return strBytes(raw), true
}

// asInt returns the value of raw if it is an integer.
func asInt(raw []byte) (int64, bool) {
	if len(raw) < 3 || raw[0] != 'i' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw[1:len(raw)-1]), 10, 64)
	return n, err == nil
}

func isDict(raw []byte) bool { return len(raw) > 0 && raw[0] == 'd' }
func isList(raw []byte) bool { return len(raw) > 0 && raw[0] == 'l' }

// item is one entry of a dictionary: its key and the encoded value.
type item struct {
	key []byte
	val []byte
}

func compareItems(a, b item) int { return bytes.Compare(a.key, b.key) }

// dictItems returns the entries of the dictionary raw, in input order.
func dictItems(raw []byte) []item {
	return appendDictItems(make([]item, 0, countItems(raw)/2), raw)
}

// appendDictItems appends the entries of the dictionary raw to dst.
func appendDictItems(dst []item, raw []byte) []item {
	pos := 1
	for raw[pos] != 'e' {
		kEnd := skip(raw, pos)
		vEnd := skip(raw, kEnd)
		dst = append(dst, item{key: strBytes(raw[pos:kEnd]), val: raw[kEnd:vEnd]})
		pos = vEnd
	}
	return dst
}

// pick returns the entries of the dictionary raw whose key is one of keys,
// in one pass, allocating only for those: a dictionary stuffed with other
// keys costs no memory.
func pick(raw []byte, keys ...string) []item {
	return appendPick(make([]item, 0, len(keys)), raw, keys...)
}

// appendPick is pick appending to out.
func appendPick(out []item, raw []byte, keys ...string) []item {
	pos := 1
	for raw[pos] != 'e' {
		kEnd := skip(raw, pos)
		vEnd := skip(raw, kEnd)
		key := strBytes(raw[pos:kEnd])
		for _, k := range keys {
			if string(key) == k {
				out = append(out, item{key: key, val: raw[kEnd:vEnd]})
				break
			}
		}
		pos = vEnd
	}
	return out
}

// lookup returns the value of key in items, or nil.
func lookup(items []item, key string) []byte {
	for _, it := range items {
		if string(it.key) == key {
			return it.val
		}
	}
	return nil
}

// countItems returns the number of values in the list raw, or twice the
// number of entries of the dictionary raw, without allocating.
func countItems(raw []byte) int {
	n := 0
	for pos := 1; raw[pos] != 'e'; pos = skip(raw, pos) {
		n++
	}
	return n
}

// listItems returns the values of the list raw.
func listItems(raw []byte) [][]byte { return appendListItems(nil, raw) }

// appendListItems appends the values of the list raw to out.
func appendListItems(out [][]byte, raw []byte) [][]byte {
	pos := 1
	for raw[pos] != 'e' {
		end := skip(raw, pos)
		out = append(out, raw[pos:end])
		pos = end
	}
	return out
}

// appendString appends s as a bencoded string.
func appendString(dst []byte, s []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// appendCanonical appends raw re-encoded canonically: the keys of every
// dictionary at every level in sorted order. Strings and integers of a
// checked document are already canonical and are copied as they are.
func appendCanonical(dst, raw []byte) []byte {
	switch raw[0] {
	case 'd':
		items := dictItems(raw)
		slices.SortFunc(items, compareItems)
		dst = append(dst, 'd')
		for _, it := range items {
			dst = appendString(dst, it.key)
			dst = appendCanonical(dst, it.val)
		}
		return append(dst, 'e')
	case 'l':
		dst = append(dst, 'l')
		for pos := 1; raw[pos] != 'e'; {
			end := skip(raw, pos)
			dst = appendCanonical(dst, raw[pos:end])
			pos = end
		}
		return append(dst, 'e')
	default:
		return append(dst, raw...)
	}
}
