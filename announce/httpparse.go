package announce

import (
	"bufio"
	"bytes"
	"errors"
	"net/url"
	"unsafe"
)

// The tracker's own HTTP/1.1 request parser: it reads a request head (the
// request line and the header fields) from a bufio.Reader and keeps only
// what an announce or scrape needs. It allocates nothing for a well-formed
// request: the request line and the few header values it keeps are copied
// into one reused buffer, and the strings it returns point into that buffer.

// Request head limits.
const (
	// maxRequestLine bounds the request line; longer gets 414. It is also
	// the size of the connection's read buffer. A scrape of MaxScrapeHashes
	// (64) fully escaped hashes is about 4.6 KB.
	maxRequestLine = 8 << 10
	// maxHeaderBytes bounds the whole head; more gets 431.
	maxHeaderBytes = 16 << 10
	// maxHeaderFields bounds the number of header fields; more gets 431.
	maxHeaderFields = 100
)

// httpError is a request the server answers with an error status and then
// closes the connection.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var (
	errBadRequestLine = &httpError{400, "malformed request line"}
	errBadHeader      = &httpError{400, "malformed header field"}
	errMissingHost    = &httpError{400, "missing required Host header"}
	errBadPath        = &httpError{400, "malformed request path"}
	errBadLength      = &httpError{400, "malformed Content-Length"}
	errURITooLong     = &httpError{414, "request URI too long"}
	errHeadTooLarge   = &httpError{431, "request header fields too large"}
	errVersion        = &httpError{505, "HTTP version not supported: use HTTP/1.1 or HTTP/1.0"}
)

// httpRequest is one parsed request head. Its strings point into the
// parser's buffer: they are valid until the next parse.
type httpRequest struct {
	method   string
	path     string // percent-decoded, like net/url's Path
	rawQuery string
	http11   bool
	// keepAlive: the client lets the connection stay open after the
	// response (HTTP/1.1 without "Connection: close", or HTTP/1.0 with
	// "Connection: keep-alive").
	keepAlive bool
	// hasBody: the request announced a body (Content-Length > 0 or a
	// Transfer-Encoding); the server does not read it and closes after the
	// response.
	hasBody bool
	xff     []string // X-Forwarded-For values, kept only when wanted
	xRealIP []string // X-Real-IP values, kept only when wanted
}

// headParser parses request heads into reused memory. Not safe for
// concurrent use; one per connection.
type headParser struct {
	buf   []byte // request line and kept header values
	spans []span // xff / x-real-ip values in buf
	req   httpRequest
}

type span struct {
	start, end int
	realIP     bool
}

// view returns buf[start:end] as a string without copying. The string is
// valid until buf is overwritten by the next parse; callers must not keep it.
func view(buf []byte, start, end int) string {
	if start >= end {
		return ""
	}
	return unsafe.String(&buf[start], end-start)
}

// parse reads one request head from br. wantProxy says whether to keep the
// X-Forwarded-For and X-Real-IP values (the peer is a trusted proxy). It
// returns an *httpError for a malformed or too large request and the read
// error (io.EOF, a timeout) when the connection ends or stalls.
func (p *headParser) parse(br *bufio.Reader, wantProxy bool) (*httpRequest, error) {
	p.buf = p.buf[:0]
	p.spans = p.spans[:0]
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errURITooLong
		}
		return nil, err
	}
	total := len(line)
	line = trimEOL(line)
	p.buf = append(p.buf, line...)
	line = p.buf
	// METHOD SP request-target SP HTTP-version
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, errBadRequestLine
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1+1 || sp2 == len(line)-1 {
		return nil, errBadRequestLine
	}
	r := &p.req
	*r = httpRequest{xff: r.xff[:0], xRealIP: r.xRealIP[:0]}
	if !validToken(line[:sp1]) {
		return nil, errBadRequestLine
	}
	switch string(line[sp2+1:]) {
	case "HTTP/1.1":
		r.http11, r.keepAlive = true, true
	case "HTTP/1.0":
	default:
		if bytes.HasPrefix(line[sp2+1:], []byte("HTTP/")) {
			return nil, errVersion
		}
		return nil, errBadRequestLine
	}
	ts, te := sp1+1, sp2
	target := line[ts:te]
	if bytes.IndexByte(target, ' ') >= 0 {
		return nil, errBadRequestLine
	}
	// Absolute form (a request sent as to a proxy): drop scheme and host.
	if target[0] != '/' {
		i := bytes.Index(target, []byte("://"))
		if i <= 0 {
			return nil, errBadPath
		}
		j := bytes.IndexByte(target[i+3:], '/')
		if j < 0 {
			target = nil
		} else {
			ts += i + 3 + j
			target = line[ts:te]
		}
		if len(target) == 0 {
			return nil, errBadPath
		}
	}
	pe, qs := te, te
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		pe, qs = ts+q, ts+q+1
	}

	hasHost, sawClose := false, false
	for fields := 0; ; fields++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errHeadTooLarge
			}
			return nil, err
		}
		total += len(line)
		if total > maxHeaderBytes || fields >= maxHeaderFields {
			return nil, errHeadTooLarge
		}
		line = trimEOL(line)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validToken(line[:colon]) {
			return nil, errBadHeader // also rejects obsolete line folding
		}
		name, val := line[:colon], trimOWS(line[colon+1:])
		switch {
		case asciiEqualFold(name, "host"):
			hasHost = true
		case asciiEqualFold(name, "connection"):
			if hasToken(val, "close") {
				sawClose = true
			} else if !r.http11 && hasToken(val, "keep-alive") {
				r.keepAlive = true
			}
		case asciiEqualFold(name, "content-length"):
			n, ok := parseDecimal(val)
			if !ok {
				return nil, errBadLength
			}
			if n > 0 {
				r.hasBody = true
			}
		case asciiEqualFold(name, "transfer-encoding"):
			r.hasBody = true
		case wantProxy && asciiEqualFold(name, "x-forwarded-for"):
			p.keep(val, false)
		case wantProxy && asciiEqualFold(name, "x-real-ip"):
			p.keep(val, true)
		}
	}
	if r.http11 && !hasHost {
		return nil, errMissingHost
	}
	if r.hasBody || sawClose {
		r.keepAlive = false
	}
	// p.buf does not grow any more: views into it are stable from here.
	buf := p.buf
	r.method = view(buf, 0, sp1)
	r.path = view(buf, ts, pe)
	r.rawQuery = view(buf, qs, te)
	if bytes.IndexByte(buf[ts:pe], '%') >= 0 {
		// Rare: an escaped path. Decode it like net/url (allocates).
		dec, err := url.PathUnescape(r.path)
		if err != nil {
			return nil, errBadPath
		}
		r.path = dec
	}
	for _, s := range p.spans {
		if v := view(buf, s.start, s.end); s.realIP {
			r.xRealIP = append(r.xRealIP, v)
		} else {
			r.xff = append(r.xff, v)
		}
	}
	return r, nil
}

// keep copies a header value into buf for the proxy headers.
func (p *headParser) keep(val []byte, realIP bool) {
	start := len(p.buf)
	p.buf = append(p.buf, val...)
	p.spans = append(p.spans, span{start, len(p.buf), realIP})
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1] // '\n'
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// trimOWS trims spaces and tabs around a header value.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (lower
// case), ignoring case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var part []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		if asciiEqualFold(trimOWS(part), token) {
			return true
		}
	}
	return false
}

// validToken reports whether b is a non-empty RFC 9110 token.
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// parseDecimal parses a Content-Length value.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
