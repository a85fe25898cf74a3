package announce

import "strconv"

// The tracker's responses are tiny fixed-shape bencoded dictionaries, written
// by hand into a reused buffer: no reflection, no allocation. Callers write
// dictionary keys in sorted order, as bencoding requires.

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// appendBInt appends i<v>e.
func appendBInt(dst []byte, v int64) []byte {
	dst = append(dst, 'i')
	dst = appendInt(dst, v)
	return append(dst, 'e')
}

// appendBString appends <len>:<s>.
func appendBString(dst []byte, s string) []byte {
	dst = appendInt(dst, int64(len(s)))
	dst = append(dst, ':')
	return append(dst, s...)
}

// appendBBytes appends <len>:<b>.
func appendBBytes(dst, b []byte) []byte {
	dst = appendInt(dst, int64(len(b)))
	dst = append(dst, ':')
	return append(dst, b...)
}

// appendKeyInt appends the dictionary entry key: i<v>e.
func appendKeyInt(dst []byte, key string, v int64) []byte {
	return appendBInt(appendBString(dst, key), v)
}

// appendFailure appends a whole failure response.
func appendFailure(dst []byte, reason string) []byte {
	dst = append(dst, 'd')
	dst = appendBString(dst, "failure reason")
	dst = appendBString(dst, reason)
	return append(dst, 'e')
}
