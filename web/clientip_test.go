package web

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// X-Forwarded-For counts only from a trusted proxy: a client that reaches
// the node directly cannot choose its address for the login rate limits.
func TestClientIPTrustsOnlyProxies(t *testing.T) {
	s := &Server{cfg: Config{TrustProxyHeaders: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}
	cases := []struct{ remote, xff, want string }{
		{"127.0.0.1:5000", "203.0.113.7", "203.0.113.7"},
		{"127.0.0.1:5000", "198.51.100.1, 203.0.113.7", "203.0.113.7"},
		{"127.0.0.2:5000", "203.0.113.7", "127.0.0.2"},
		{"127.0.0.1:5000", "", "127.0.0.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientIP(r); got != c.want {
			t.Errorf("%s with XFF %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	s.cfg.TrustProxyHeaders = false
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	if got := s.clientIP(r); got != "127.0.0.1" {
		t.Errorf("headers trusted while off: %s", got)
	}
}
