package announce

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/model"
)

func TestParseAnnounceQuery(t *testing.T) {
	ih := model.InfoHash{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12, 0x34, 0x56, 0x78, 0x9a}
	base := "info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=-qB4520-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3"
	tests := []struct {
		name  string
		query string
		check func(q *announceQuery) bool
	}{
		{"defaults", base, func(q *announceQuery) bool {
			return q.infoHash == ih && string(q.peerID[:]) == "-qB4520-abcdefghijkl" && q.port == 6881 &&
				q.uploaded == 1 && q.downloaded == 2 && q.left == 3 && q.event == eventNone &&
				q.numWant == -1 && q.compact && !q.noPeerID && q.ip == ""
		}},
		{"event started", base + "&event=started", func(q *announceQuery) bool { return q.event == eventStarted }},
		{"event completed", base + "&event=completed", func(q *announceQuery) bool { return q.event == eventCompleted }},
		{"event stopped", base + "&event=stopped", func(q *announceQuery) bool { return q.event == eventStopped }},
		{"event paused", base + "&event=paused", func(q *announceQuery) bool { return q.event == eventPaused }},
		{"event empty", base + "&event=", func(q *announceQuery) bool { return q.event == eventNone }},
		{"numwant", base + "&numwant=80", func(q *announceQuery) bool { return q.numWant == 80 }},
		{"numwant negative means default", base + "&numwant=-1", func(q *announceQuery) bool { return q.numWant == -1 }},
		{"numwant huge", base + "&numwant=99999999999", func(q *announceQuery) bool { return q.numWant == 1<<30 }},
		{"compact=0", base + "&compact=0", func(q *announceQuery) bool { return !q.compact }},
		{"no_peer_id", base + "&no_peer_id=1", func(q *announceQuery) bool { return q.noPeerID }},
		{"ip kept raw", base + "&ip=10.0.0.1", func(q *announceQuery) bool { return q.ip == "10.0.0.1" }},
		{"key accepted", base + "&key=1A2B3C4D", func(q *announceQuery) bool { return true }},
		{"unknown parameters ignored", "supportcrypto=1&" + base + "&corrupt=0&redundant=0&trackerid=node-a&&", func(q *announceQuery) bool { return q.port == 6881 }},
		{"plus is a space", strings.Replace(base, "peer_id=-qB4520-abcdefghijkl", "peer_id=-qB4520-abcdefghij+l", 1), func(q *announceQuery) bool {
			return string(q.peerID[:]) == "-qB4520-abcdefghij l"
		}},
		{"lowercase escapes", "info_hash=" + escapeAll(ih[:], "%%%02x") + base[strings.Index(base, "&"):], func(q *announceQuery) bool { return q.infoHash == ih }},
		{"uppercase escapes", "info_hash=" + escapeAll(ih[:], "%%%02X") + base[strings.Index(base, "&"):], func(q *announceQuery) bool { return q.infoHash == ih }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q announceQuery
			if err := parseAnnounceQuery(tc.query, &q); err != nil {
				t.Fatal(err)
			}
			if !tc.check(&q) {
				t.Fatalf("parsed %+v", q)
			}
		})
	}
}

func escapeAll(b []byte, format string) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, format, c)
	}
	return sb.String()
}

func TestParseScrapeQuery(t *testing.T) {
	a, b := model.InfoHash{1}, model.InfoHash{2}
	q := "info_hash=" + url.QueryEscape(string(a[:])) + "&x=1&info_hash=" + url.QueryEscape(string(b[:]))
	got, err := parseScrapeQuery(q, nil, 10)
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := parseScrapeQuery(q, nil, 1); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("limit: %v", err)
	}
}

// encodeAnnounceQuery writes q back as a query string.
func encodeAnnounceQuery(q *announceQuery) string {
	s := fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=%d&downloaded=%d&left=%d&numwant=%d",
		url.QueryEscape(string(q.infoHash[:])), url.QueryEscape(string(q.peerID[:])), q.port, q.uploaded, q.downloaded, q.left, q.numWant)
	if !q.compact {
		s += "&compact=0"
	}
	if q.noPeerID {
		s += "&no_peer_id=1"
	}
	if ev := [...]string{"", "started", "completed", "stopped", "paused"}[q.event]; ev != "" {
		s += "&event=" + ev
	}
	return s
}

func FuzzParseAnnounceQuery(f *testing.F) {
	for _, s := range []string{
		"info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=-qB4520-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=0&event=started&numwant=200&compact=1&no_peer_id=1&key=1a2b3c",
		"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&uploaded=18446744073709551615&downloaded=0&left=1&numwant=-1",
		"info_hash=%zz&peer_id=&port=&uploaded=-1",
		"info_hash=a%&port=99999",
		"&&&=&==&info_hash&peer_id",
		"port=1&port=2",
		"ip=%31%30.0.0.1&ipv6=::1&event=paused",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var q announceQuery
		err := parseAnnounceQuery(raw, &q)
		if err != nil {
			if _, ok := err.(*ParamError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if q.port == 0 || q.numWant < -1 || q.event > eventPaused {
			t.Fatalf("invalid result %+v", q)
		}
		// The parse is a function of the values: encoding them again and
		// parsing gives the same request.
		var q2 announceQuery
		if err := parseAnnounceQuery(encodeAnnounceQuery(&q), &q2); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		q.ip, q.seen, q2.seen = "", 0, 0
		if q != q2 {
			t.Fatalf("round trip changed %+v into %+v", q, q2)
		}
		// Binary values agree with net/url's decoder.
		for _, pair := range strings.Split(raw, "&") {
			if v, ok := strings.CutPrefix(pair, "info_hash="); ok {
				if dec, err := url.QueryUnescape(v); err == nil && dec != string(q.infoHash[:]) {
					t.Fatalf("info_hash %q: url gives %x, we %x", v, dec, q.infoHash)
				}
			}
		}
	})
}
