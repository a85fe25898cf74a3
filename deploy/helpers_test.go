// Package deploy holds the tests of the deployment files in this folder: the
// FROM-scratch image and the 3-node compose cluster, the systemd unit, and
// the nginx TLS proxy in front of a real node.
package deploy

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/bencode"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/metainfo"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/node"
)

// startTestNode starts a single-node cluster on kernel-chosen loopback
// ports (no UDP tracker) with mod applied to its config, and waits for its
// leader and its member record (the announce URLs .torrent files get).
func startTestNode(t *testing.T, mod func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr, cfg.TrackerAddr, cfg.ClusterAddr, cfg.Gossip = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.UDPAddr = ""
	cfg.AnnounceInterval = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Store().WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eventually(20*time.Second, func() error {
		if len(n.Store().Members()) == 0 {
			return errors.New("the node has not recorded its member URLs")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// addUser creates an enabled member with a fresh passkey.
func addUser(t *testing.T, n *node.Node, name string, extra map[string]string) model.User {
	t.Helper()
	id, err := auth.NewID()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := auth.NewPasskey()
	if err != nil {
		t.Fatal(err)
	}
	u := model.User{ID: id, Username: name, Email: name + "@example.org", PasswordHash: "unused",
		Passkey: pk, Role: model.RoleMember, Enabled: true, Created: time.Now().UnixMilli(), Extra: extra}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Store().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// addDataset registers a tiny one-file torrent, sanitized as the site does,
// and returns its v1 info hash (20 bytes).
func addDataset(t *testing.T, n *node.Node, uploader model.User, name string) []byte {
	t.Helper()
	raw := fmt.Sprintf("d4:infod6:lengthi10e4:name%d:%s12:piece lengthi16384e6:pieces20:01234567890123456789ee", len(name), name)
	parsed, err := metainfo.Parse([]byte(raw), metainfo.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	san, err := metainfo.Sanitize(parsed, node.Default().Source)
	if err != nil {
		t.Fatal(err)
	}
	tr := model.Torrent{ID: san.ID, InfoHashV1: san.InfoHashV1Hex(), InfoHashV2: san.InfoHashV2Hex(),
		OriginalInfoHash: parsed.OriginalInfoHash(), Name: parsed.Name, Metainfo: san.Metainfo,
		Files: parsed.Files, TotalSize: parsed.TotalSize, Uploader: uploader.ID, Created: time.Now().UnixMilli(),
		Metadata: map[string]string{"title": "Test dataset " + name, "category": "raw-reads", "license": "CC0-1.0"}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Store().PutTorrent(ctx, tr); err != nil {
		t.Fatal(err)
	}
	ih, err := hex.DecodeString(san.InfoHashV1Hex())
	if err != nil || len(ih) != 20 {
		t.Fatalf("v1 info hash %q: %v", san.InfoHashV1Hex(), err)
	}
	return ih
}

// repoRoot is the module root (the parent of this folder).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", root, err)
	}
	return root
}

// freePort returns a port that is free on 127.0.0.1 for TCP and, when udp
// is set, for UDP as well.
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !udp {
			return port
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return 0
}

// announceResult is a decoded HTTP announce answer.
type announceResult struct {
	Failure  string
	Interval int64
	Peers    []netip.AddrPort
	Raw      []byte
}

// announce sends one HTTP announce for the 20-byte info hash ih with the
// given client, and decodes the bencoded answer.
func announce(ctx context.Context, c *http.Client, base, passkey string, ih []byte, peerID string, port int, left int64) (announceResult, error) {
	q := url.Values{}
	q.Set("info_hash", string(ih))
	q.Set("peer_id", peerID)
	q.Set("port", fmt.Sprint(port))
	q.Set("uploaded", "0")
	q.Set("downloaded", "0")
	q.Set("left", fmt.Sprint(left))
	q.Set("compact", "1")
	q.Set("numwant", "50")
	q.Set("event", "started")
	u := strings.TrimRight(base, "/") + "/" + passkey + "/announce?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return announceResult{}, err
	}
	res, err := c.Do(req)
	if err != nil {
		return announceResult{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return announceResult{}, err
	}
	return decodeAnnounce(raw)
}

func decodeAnnounce(raw []byte) (announceResult, error) {
	var m map[string]bencode.RawMessage
	if err := bencode.DecodeBytes(raw, &m); err != nil {
		return announceResult{Raw: raw}, fmt.Errorf("announce answer is not a bencoded dict: %w: %q", err, raw)
	}
	out := announceResult{Raw: raw}
	if v, ok := m["failure reason"]; ok {
		if err := bencode.DecodeBytes(v, &out.Failure); err != nil {
			return out, fmt.Errorf("failure reason: %w", err)
		}
		return out, nil
	}
	if v, ok := m["interval"]; ok {
		if err := bencode.DecodeBytes(v, &out.Interval); err != nil {
			return out, fmt.Errorf("interval: %w", err)
		}
	}
	if v, ok := m["peers"]; ok {
		var compact string
		if err := bencode.DecodeBytes(v, &compact); err != nil {
			return out, fmt.Errorf("peers is not a compact string: %w: %q", err, raw)
		}
		b := []byte(compact)
		if len(b)%6 != 0 {
			return out, fmt.Errorf("compact peers of %d bytes", len(b))
		}
		for i := 0; i < len(b); i += 6 {
			ip, _ := netip.AddrFromSlice(b[i : i+4])
			out.Peers = append(out.Peers, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[i+4:i+6])))
		}
	}
	return out, nil
}

// hasPeer reports whether peers holds an entry with port (and, when ip is
// valid, that address).
func hasPeer(peers []netip.AddrPort, ip netip.Addr, port uint16) bool {
	for _, p := range peers {
		if p.Port() == port && (!ip.IsValid() || p.Addr() == ip) {
			return true
		}
	}
	return false
}

// eventually retries fn every 200ms until it returns nil or d passes, and
// returns the last error.
func eventually(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// getStatus GETs u and returns the status and body.
func getStatus(ctx context.Context, c *http.Client, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, bytes.TrimSpace(body), nil
}
