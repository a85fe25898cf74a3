package announce

import (
	"bytes"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/seedbank/seedbank/model"
)

// Allocation budget of an HTTP announce, measured by BenchmarkAnnounceHTTP
// with a direct ServeHTTP call: 0 allocations in this package on the success
// path (pooled state, hand-written bencode, shared header slices). net/http's
// own request parsing is outside the budget. Failures allocate their
// *ParamError.

// Shared header values; net/http only reads them.
var (
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
	hdrNoStore   = []string{"no-store"}
)

// Client address failures.
var (
	errProxyNoAddr = errors.New("cannot tell your address: the proxy in front of the tracker sent no valid X-Forwarded-For or X-Real-IP header")
	errNoAddr      = errors.New("cannot tell your address from the connection")
)

type httpHandler struct{ t *Tracker }

// ServeHTTP answers GET .../<passkey>/announce and .../<passkey>/scrape with
// a bencoded dictionary and status 200, failures included. Other paths get
// 404 and other methods 405. It serves the same answers as Tracker.ServeTCP,
// through net/http.
func (h httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	passkey, action, ok := splitTrackerPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	t := h.t
	st := t.getState()
	tr := trackerRequest{rawQuery: r.URL.RawQuery, xff: r.Header["X-Forwarded-For"], xRealIP: r.Header["X-Real-Ip"]}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		tr.remote = ap.Addr()
	}
	st.buf = t.trackerResponse(st, action, passkey, &tr)
	hd := w.Header()
	hd["Content-Type"] = hdrTextPlain
	hd["Cache-Control"] = hdrNoStore
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(st.buf)
	}
	t.putState(st)
}

// trackerRequest is what the tracker reads from an HTTP request, whichever
// server parsed it. Its strings may point into a reused buffer: they are
// valid only while the request is answered.
type trackerRequest struct {
	rawQuery string
	remote   netip.Addr // the connection's peer; invalid if unknown
	xff      []string   // X-Forwarded-For values, in order
	xRealIP  []string   // X-Real-IP values
}

// trackerResponse answers an announce or scrape (action) into st.buf and
// returns it.
func (t *Tracker) trackerResponse(st *announceState, action, passkey string, r *trackerRequest) []byte {
	if action == actionAnnounce {
		return t.httpAnnounce(st, r, passkey)
	}
	return t.httpScrape(st, r, passkey)
}

// Tracker path actions.
const (
	actionAnnounce = "announce"
	actionScrape   = "scrape"
)

// splitTrackerPath splits ".../<passkey>/announce" (or scrape), wherever the
// handler is mounted. passkey is "" when the path has none.
func splitTrackerPath(p string) (passkey, action string, ok bool) {
	switch {
	case strings.HasSuffix(p, "/announce"):
		action = actionAnnounce
	case strings.HasSuffix(p, "/scrape"):
		action = actionScrape
	default:
		return "", "", false
	}
	rest := p[:len(p)-len(action)-1]
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		passkey = rest[i+1:]
	}
	return passkey, action, true
}

func (t *Tracker) httpAnnounce(st *announceState, r *trackerRequest, passkey string) []byte {
	buf := st.buf[:0]
	q := &st.q
	if err := parseAnnounceQuery(r.rawQuery, q); err != nil {
		return appendFailure(buf, err.Error())
	}
	addr, err := t.clientAddr(r)
	if err != nil {
		return appendFailure(buf, err.Error())
	}
	if q.seen&seenIP != 0 && t.cfg.AllowIPParam {
		if addr, err = parseIPParam(q.ip); err != nil {
			return appendFailure(buf, err.Error())
		}
	}
	req := &st.req
	*req = announceRequest{
		infoHash:   q.infoHash,
		peerID:     q.peerID,
		addr:       addr,
		port:       q.port,
		uploaded:   q.uploaded,
		downloaded: q.downloaded,
		left:       q.left,
		event:      q.event,
		numWant:    q.numWant,
		family:     familyAny,
	}
	peers, c, err := t.announce(passkey, req, st.peers[:0])
	st.peers = peers
	if err != nil {
		return appendFailure(buf, err.Error())
	}
	buf = append(buf, 'd')
	buf = appendKeyInt(buf, "complete", int64(c.seeders))
	buf = appendKeyInt(buf, "downloaded", int64(c.snatches))
	buf = appendKeyInt(buf, "incomplete", int64(c.leechers))
	buf = appendKeyInt(buf, "interval", int64(t.cfg.Interval.Seconds()))
	buf = appendKeyInt(buf, "min interval", int64(t.cfg.MinInterval.Seconds()))
	if q.compact {
		buf = appendCompactPeers(buf, peers)
	} else {
		buf = appendDictPeers(buf, peers, q.noPeerID)
	}
	buf = appendBString(buf, "tracker id")
	buf = appendBString(buf, t.cfg.NodeID)
	return append(buf, 'e')
}

// appendCompactPeers appends "peers" (BEP 23, 6 bytes each) and, when there
// are IPv6 peers, "peers6" (BEP 7, 18 bytes each).
func appendCompactPeers(buf []byte, peers []Peer) []byte {
	n4, n6 := 0, 0
	for i := range peers {
		if peers[i].Addr.Addr().Is4() {
			n4++
		} else {
			n6++
		}
	}
	buf = appendBString(buf, "peers")
	buf = appendInt(buf, int64(6*n4))
	buf = append(buf, ':')
	for i := range peers {
		if a := peers[i].Addr; a.Addr().Is4() {
			buf = appendCompact(buf, a)
		}
	}
	if n6 > 0 {
		buf = appendBString(buf, "peers6")
		buf = appendInt(buf, int64(18*n6))
		buf = append(buf, ':')
		for i := range peers {
			if a := peers[i].Addr; !a.Addr().Is4() {
				buf = appendCompact(buf, a)
			}
		}
	}
	return buf
}

// appendCompact appends a's address bytes (4 or 16) and big-endian port.
func appendCompact(buf []byte, a netip.AddrPort) []byte {
	if ip := a.Addr(); ip.Is4() {
		b := ip.As4()
		buf = append(buf, b[:]...)
	} else {
		b := ip.As16()
		buf = append(buf, b[:]...)
	}
	return append(buf, byte(a.Port()>>8), byte(a.Port()))
}

// appendDictPeers appends "peers" as the original BEP 3 list of dicts.
func appendDictPeers(buf []byte, peers []Peer, noPeerID bool) []byte {
	buf = appendBString(buf, "peers")
	buf = append(buf, 'l')
	var ipb [64]byte
	for i := range peers {
		p := &peers[i]
		buf = append(buf, 'd')
		buf = appendBString(buf, "ip")
		buf = appendBBytes(buf, p.Addr.Addr().AppendTo(ipb[:0]))
		if !noPeerID {
			buf = appendBString(buf, "peer id")
			buf = appendBBytes(buf, p.ID[:])
		}
		buf = appendKeyInt(buf, "port", int64(p.Addr.Port()))
		buf = append(buf, 'e')
	}
	return append(buf, 'e')
}

func (t *Tracker) httpScrape(st *announceState, r *trackerRequest, passkey string) []byte {
	buf := st.buf[:0]
	if _, err := t.authorize(passkey); err != nil {
		return appendFailure(buf, err.Error())
	}
	hashes, err := parseScrapeQuery(r.rawQuery, st.hashes[:0], t.cfg.MaxScrapeHashes)
	st.hashes = hashes
	if err != nil {
		return appendFailure(buf, err.Error())
	}
	slices.SortFunc(hashes, func(a, b model.InfoHash) int { return bytes.Compare(a[:], b[:]) })
	hashes = slices.Compact(hashes)
	buf = append(buf, 'd')
	buf = appendBString(buf, "files")
	buf = append(buf, 'd')
	for _, h := range hashes {
		c, ok := t.scrapeOne(h)
		if !ok {
			continue // unregistered hashes are left out
		}
		buf = appendBBytes(buf, h[:])
		buf = append(buf, 'd')
		buf = appendKeyInt(buf, "complete", int64(c.seeders))
		buf = appendKeyInt(buf, "downloaded", int64(c.snatches))
		buf = appendKeyInt(buf, "incomplete", int64(c.leechers))
		buf = append(buf, 'e')
	}
	return append(buf, 'e', 'e')
}

// clientAddr returns the announcing client's address: the connection's
// peer, or, when that peer is a trusted proxy, the rightmost untrusted
// address of X-Forwarded-For (else X-Real-IP).
func (t *Tracker) clientAddr(r *trackerRequest) (netip.Addr, error) {
	if !r.remote.IsValid() {
		return netip.Addr{}, errNoAddr
	}
	ip := r.remote.Unmap()
	if !t.trustedProxy(ip) {
		return ip, nil
	}
	if xff := r.xff; len(xff) > 0 {
		var leftmost netip.Addr
		for i := len(xff) - 1; i >= 0; i-- {
			s := xff[i]
			for s != "" {
				j := strings.LastIndexByte(s, ',')
				part := strings.TrimSpace(s[j+1:])
				s = s[:max(j, 0)]
				if part == "" {
					continue
				}
				a, ok := parseForwardedAddr(part)
				if !ok {
					return netip.Addr{}, errProxyNoAddr
				}
				if !t.trustedProxy(a) {
					return a, nil
				}
				leftmost = a
			}
		}
		if leftmost.IsValid() {
			return leftmost, nil
		}
	}
	if xr := r.xRealIP; len(xr) > 0 {
		if a, ok := parseForwardedAddr(strings.TrimSpace(xr[0])); ok {
			return a, nil
		}
	}
	return netip.Addr{}, errProxyNoAddr
}

func (t *Tracker) trustedProxy(ip netip.Addr) bool {
	for _, p := range t.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseForwardedAddr parses "ip", "ip:port" or "[ip6]:port".
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// parseIPParam decodes the "ip" parameter: a literal IPv4 or IPv6 address.
func parseIPParam(raw string) (netip.Addr, error) {
	var b [64]byte
	n, ok := unescapeInto(b[:], raw)
	if ok {
		if a, err := netip.ParseAddr(string(b[:n])); err == nil && a.Zone() == "" {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, &ParamError{"ip", "must be an IPv4 or IPv6 address"}
}
