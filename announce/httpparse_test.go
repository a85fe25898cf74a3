package announce

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequestHead(t *testing.T) {
	tests := []struct {
		name, raw       string
		proxy           bool
		method, path, q string
		keepAlive       bool
		xff, xri        []string
		err             *httpError
	}{
		{name: "announce", raw: "GET /pk/announce?a=1&b=2 HTTP/1.1\r\nHost: h\r\n\r\n", method: "GET", path: "/pk/announce", q: "a=1&b=2", keepAlive: true},
		{name: "bare LF", raw: "GET /x HTTP/1.1\nHost: h\n\n", method: "GET", path: "/x", keepAlive: true},
		{name: "close any case", raw: "GET /x HTTP/1.1\r\nhost: h\r\nCONNECTION: Upgrade, Close\r\n\r\n", method: "GET", path: "/x"},
		{name: "1.0", raw: "HEAD /x? HTTP/1.0\r\n\r\n", method: "HEAD", path: "/x"},
		{name: "1.0 keep-alive", raw: "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", method: "GET", path: "/x", keepAlive: true},
		{name: "body", raw: "GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", method: "GET", path: "/x"},
		{name: "chunked", raw: "GET /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", method: "GET", path: "/x"},
		{name: "zero length", raw: "GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", method: "GET", path: "/x", keepAlive: true},
		{name: "proxy headers kept", proxy: true, raw: "GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For:  1.2.3.4, 5.6.7.8 \r\nx-real-ip: 9.9.9.9\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
			method: "GET", path: "/x", keepAlive: true, xff: []string{"1.2.3.4, 5.6.7.8", "10.0.0.1"}, xri: []string{"9.9.9.9"}},
		{name: "proxy headers ignored", raw: "GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", method: "GET", path: "/x", keepAlive: true},
		{name: "escaped path", raw: "GET /a%2Fb/announce?x=%41 HTTP/1.1\r\nHost: h\r\n\r\n", method: "GET", path: "/a/b/announce", q: "x=%41", keepAlive: true},
		{name: "absolute", raw: "GET http://h:1/p?q HTTP/1.1\r\nHost: h\r\n\r\n", method: "GET", path: "/p", q: "q", keepAlive: true},
		{name: "empty line", raw: "\r\n", err: errBadRequestLine},
		{name: "two spaces", raw: "GET  /x HTTP/1.1\r\nHost: h\r\n\r\n", err: errBadRequestLine},
		{name: "space in target", raw: "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", err: errBadRequestLine},
		{name: "version", raw: "GET /x HTTP/3\r\n\r\n", err: errVersion},
		{name: "not http", raw: "GET /x FTP/1.0\r\n\r\n", err: errBadRequestLine},
		{name: "no host", raw: "GET /x HTTP/1.1\r\n\r\n", err: errMissingHost},
		{name: "empty header name", raw: "GET /x HTTP/1.1\r\n: v\r\n\r\n", err: errBadHeader},
		{name: "space before colon", raw: "GET /x HTTP/1.1\r\nHost : h\r\n\r\n", err: errBadHeader},
		{name: "bad length", raw: "GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", err: errBadLength},
		{name: "absolute without path", raw: "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", err: errBadPath},
		{name: "bad path escape", raw: "GET /%G1 HTTP/1.1\r\nHost: h\r\n\r\n", err: errBadPath},
		{name: "long line", raw: "GET /" + strings.Repeat("x", maxRequestLine) + " HTTP/1.1\r\n\r\n", err: errURITooLong},
		{name: "long header", raw: "GET /x HTTP/1.1\r\nA: " + strings.Repeat("x", maxRequestLine) + "\r\n\r\n", err: errHeadTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p headParser
			r, err := p.parse(bufio.NewReaderSize(strings.NewReader(tc.raw), maxRequestLine), tc.proxy)
			if tc.err != nil {
				if err != tc.err {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.method != tc.method || r.path != tc.path || r.rawQuery != tc.q || r.keepAlive != tc.keepAlive {
				t.Fatalf("got %q %q %q keepAlive %v", r.method, r.path, r.rawQuery, r.keepAlive)
			}
			if strings.Join(r.xff, "|") != strings.Join(tc.xff, "|") || strings.Join(r.xRealIP, "|") != strings.Join(tc.xri, "|") {
				t.Fatalf("xff %q x-real-ip %q", r.xff, r.xRealIP)
			}
		})
	}
}

// TestParseRequestHeadEOF: a connection that ends is a read error, not a
// malformed request.
func TestParseRequestHeadEOF(t *testing.T) {
	for _, raw := range []string{"", "GET /x HTTP/1.1\r\n", "GET /x HTTP/1.1\r\nHost: h\r\n"} {
		var p headParser
		_, err := p.parse(bufio.NewReader(strings.NewReader(raw)), false)
		if !errors.Is(err, io.EOF) {
			t.Errorf("%q: %v, want EOF", raw, err)
		}
	}
}

// FuzzParseRequestHead parses a stream of request heads. It must never
// panic; every error is a read error or an *httpError; and a head that both
// this parser and net/http accept means the same method, path, query and
// connection handling to both.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET /0123456789abcdef0123456789abcdef/announce?info_hash=%12%34&peer_id=-TR4060-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=0&compact=1&event=started HTTP/1.1\r\nHost: 127.0.0.1:6969\r\nUser-Agent: Transmission/4.0.6\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip\r\n\r\n",
		"GET /pk/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /pk/scrape HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HEAD http://h:6969/pk/announce?x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4, [2001:db8::1]:5\r\nX-Real-IP: 5.6.7.8\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"GET /%2e%2E/a HTTP/1.1\nHost: h\n folded\n\n",
		"GET / HTTP/2.0\r\n\r\n",
		"\r\n\r\n",
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, proxy bool) {
		br := bufio.NewReaderSize(strings.NewReader(raw), maxRequestLine)
		var p headParser
		for i := range 8 {
			r, err := p.parse(br, proxy)
			if err != nil {
				var he *httpError
				if !errors.As(err, &he) && !errors.Is(err, io.EOF) {
					t.Fatalf("error of type %T: %v", err, err)
				}
				return
			}
			if !validToken([]byte(r.method)) || (r.hasBody && r.keepAlive) || (!proxy && len(r.xff)+len(r.xRealIP) > 0) {
				t.Fatalf("invalid result %+v", r)
			}
			if i == 0 && !r.hasBody {
				std, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(raw), maxRequestLine))
				if err == nil && (std.Method != r.method || std.URL.Path != r.path || std.URL.RawQuery != r.rawQuery || std.Close == r.keepAlive) {
					t.Fatalf("net/http: %s %q %q close %v; we: %s %q %q keep-alive %v",
						std.Method, std.URL.Path, std.URL.RawQuery, std.Close, r.method, r.path, r.rawQuery, r.keepAlive)
				}
			}
			if r.hasBody {
				return // the body is not read: the stream ends here
			}
		}
	})
}
