package loadgen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestValidateAnnounceBody(t *testing.T) {
	peers := func(n int) string { return strings.Repeat("\x7f\x00\x00\x01\x27\x11", n) }
	tests := []struct {
		name      string
		body      string
		maxPeers  int
		wantPeers int
		wantErr   error
	}{
		{"seedbank style", "d8:completei1e10:downloadedi0e10:incompletei2e8:intervali1800e12:min intervali60e5:peers12:" + peers(2) + "10:tracker id4:nodee", 2, 2, nil},
		{"opentracker style", "d8:completei0e10:downloadedi0e10:incompletei2e8:intervali1953e12:min intervali976e5:peers12:" + peers(2) + "e", 3, 2, nil},
		{"no peers yet", "d8:intervali60e5:peers0:e", 2, 0, nil},
		{"peers6 ignored", "d8:intervali60e5:peers6:" + peers(1) + "6:peers618:" + strings.Repeat("x", 18) + "e", 2, 1, nil},
		{"failure reason", "d14:failure reason15:unknown passkeye", 2, 0, ErrFailure},
		{"too many peers", "d8:intervali60e5:peers18:" + peers(3) + "e", 2, 0, ErrResponse},
		{"ragged peers", "d8:intervali60e5:peers7:1234567e", 2, 0, ErrResponse},
		{"peers as a list", "d8:intervali60e5:peerslee", 2, 0, ErrResponse},
		{"no interval", "d5:peers0:e", 2, 0, ErrResponse},
		{"zero interval", "d8:intervali0e5:peers0:e", 2, 0, ErrResponse},
		{"negative count", "d8:completei-1e8:intervali60e5:peers0:e", 2, 0, ErrResponse},
		{"no peers key", "d8:intervali60ee", 2, 0, ErrResponse},
		{"interval a string", "d8:interval2:60e", 2, 0, ErrResponse},
		{"unsorted keys", "d8:intervali60e8:completei1e5:peers0:e", 2, 0, ErrBencode},
		{"duplicate key", "d8:intervali60e8:intervali60e5:peers0:e", 2, 0, ErrBencode},
		{"not a dict", "l8:intervale", 2, 0, ErrBencode},
		{"empty", "", 2, 0, ErrBencode},
		{"html error page", "<html>502</html>", 2, 0, ErrBencode},
		{"unterminated", "d8:intervali60e5:peers0:", 2, 0, ErrBencode},
		{"trailing bytes", "d8:intervali60e5:peers0:ee", 2, 0, ErrBencode},
		{"string past end", "d8:intervali60e5:peers99:abce", 2, 0, ErrResponse},
		{"leading zero int", "d8:intervali060e5:peers0:e", 2, 0, ErrResponse},
		{"negative zero", "d8:intervali-0e5:peers0:e", 2, 0, ErrResponse},
		{"bad nested value", "d1:ad1:bi1x" + "e5:peers0:e", 2, 0, ErrBencode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ValidateAnnounceBody([]byte(tc.body), tc.maxPeers)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if res.Peers != tc.wantPeers {
				t.Fatalf("peers = %d, want %d", res.Peers, tc.wantPeers)
			}
		})
	}
}

func TestValidateAnnounceBodyAllocs(t *testing.T) {
	body := []byte("d8:completei1e10:downloadedi0e10:incompletei2e8:intervali1800e12:min intervali60e5:peers6:\x7f\x00\x00\x01\x27\x11e")
	if n := testing.AllocsPerRun(100, func() { ValidateAnnounceBody(body, 2) }); n != 0 {
		t.Fatalf("%v allocations per validation, want 0", n)
	}
}

func udpPacket(action, tid uint32, rest ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, action)
	b = binary.BigEndian.AppendUint32(b, tid)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func TestValidateUDPAnnounce(t *testing.T) {
	peer := []byte{127, 0, 0, 1, 0x27, 0x11}
	tests := []struct {
		name      string
		pkt       []byte
		wantPeers int
		wantErr   error
	}{
		{"two peers", udpPacket(1, 7, u32(1800), u32(2), u32(1), peer, peer), 2, nil},
		{"no peers", udpPacket(1, 7, u32(1800), u32(0), u32(0)), 0, nil},
		{"error packet", udpPacket(3, 7, []byte("unknown passkey")), 0, ErrFailure},
		{"wrong transaction", udpPacket(1, 8, u32(1800), u32(0), u32(0)), 0, ErrUDP},
		{"wrong action", udpPacket(0, 7, u32(1800), u32(0), u32(0)), 0, ErrUDP},
		{"short", udpPacket(1, 7, u32(1800)), 0, ErrUDP},
		{"truncated header", []byte{0, 0, 0, 1}, 0, ErrUDP},
		{"ragged peers", udpPacket(1, 7, u32(1800), u32(0), u32(0), peer[:5]), 0, ErrUDP},
		{"zero interval", udpPacket(1, 7, u32(0), u32(0), u32(0)), 0, ErrUDP},
		{"too many peers", udpPacket(1, 7, u32(1800), u32(0), u32(0), peer, peer, peer), 0, ErrUDP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ValidateUDPAnnounce(tc.pkt, 7, 2)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || res.Peers != tc.wantPeers {
				t.Fatalf("got %+v, %v; want %d peers", res, err, tc.wantPeers)
			}
		})
	}
}

func TestValidateUDPConnect(t *testing.T) {
	id := binary.BigEndian.AppendUint64(nil, 0x1122334455667788)
	if got, err := ValidateUDPConnect(udpPacket(0, 9, id), 9); err != nil || got != 0x1122334455667788 {
		t.Fatalf("good connect: %x %v", got, err)
	}
	for name, pkt := range map[string][]byte{
		"wrong tid":   udpPacket(0, 8, id),
		"short":       udpPacket(0, 9, id[:4]),
		"error":       udpPacket(3, 9, []byte("go away")),
		"announce":    udpPacket(1, 9, id),
		"long packet": udpPacket(0, 9, id, id),
	} {
		if _, err := ValidateUDPConnect(pkt, 9); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadHTTPResponse(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		wantBody  string
		wantClose bool
		wantErr   bool
	}{
		{"keep-alive", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", "hello", false, false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", "hi", true, false},
		{"http/1.0 to EOF", "HTTP/1.0 200 OK\r\n\r\nbody", "body", true, false},
		{"no length, kept alive", "HTTP/1.1 200 OK\r\n\r\nbody", "", false, true},
		{"status 404", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "", false, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "", false, true},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhi", "", false, true},
		{"garbage", "SSH-2.0-OpenSSH\r\n", "", false, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, closed, err := ReadHTTPResponse(bufio.NewReader(strings.NewReader(tc.raw)), nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted: body %q", body)
				}
				return
			}
			if err != nil || string(body) != tc.wantBody || closed != tc.wantClose {
				t.Fatalf("got %q close=%v err=%v", body, closed, err)
			}
		})
	}
}

func TestRequestsRoundTrip(t *testing.T) {
	f := NewFixture(1, 3, 4, 3)
	s := NewSwarms(f, Target{Passkeys: true})
	var a announceArgs
	np := s.plan(&s.peers[4], 4, true, nil, &a)
	if a.event != EventStarted || np.left != TorrentSize || a.hash != &f.Hashes[1] || a.port != PortBase+1 {
		t.Fatalf("prefill plan: %+v %+v", a, np)
	}
	req := string(appendAnnounceRequest(nil, &a, false))
	if !strings.HasPrefix(req, "GET /"+f.Passkeys[1]+"/announce?info_hash=") || !strings.Contains(req, "&event=started HTTP/1.1\r\n") || !strings.HasSuffix(req, "Connection: close\r\n\r\n") {
		t.Fatalf("request: %q", req)
	}
	pkt := appendUDPAnnounce(nil, 42, 5, &a)
	if len(pkt) != udpAnnounceLen+3+len("/"+f.Passkeys[1]+"/announce") || pkt[udpAnnounceLen] != 2 || pkt[len(pkt)-1] != 0 {
		t.Fatalf("udp announce: % x", pkt)
	}
	g, err := ReadFixture(writeTemp(t, f))
	if err != nil || len(g.Hashes) != 4 || g.Passkeys[2] != f.Passkeys[2] || g.PeersPer != 3 {
		t.Fatalf("fixture round trip: %+v %v", g, err)
	}
}

func writeTemp(t *testing.T, f *Fixture) string {
	t.Helper()
	var sb strings.Builder
	if _, err := f.WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/fixture.txt"
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
