package raftstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The cluster port carries raft and the internal forwarding service. Every
// connection is TLS 1.3 and then proves knowledge of the cluster key in both
// directions with an HMAC over TLS keying material, so only holders of the
// key can talk to a node, and a relay in the middle (two TLS sessions with
// different keying material) cannot pass the check. Certificates are
// throwaway: trust comes from the shared key, not from a CA.

// Stream kinds, the first byte after authentication.
const (
	streamRaft    byte = 'R'
	streamForward byte = 'F'
	streamBackup  byte = 'B'
	// streamJoin is authenticated with the join secret instead of the
	// cluster key; the server answers with the cluster key and closes.
	streamJoin byte = 'J'
)

const (
	authLabel   = "seedbank cluster auth v1"
	authTimeout = 5 * time.Second
)

// ErrClusterAuth means the peer does not hold the cluster key.
var ErrClusterAuth = errors.New("cluster authentication failed (wrong or missing cluster key)")

// ErrJoinSecret means a join secret was refused: wrong, rotated, or the
// cluster has none yet.
var ErrJoinSecret = errors.New("join secret refused (wrong or rotated; an admin finds the current one on the site's Cluster page)")

// clusterMux accepts authenticated cluster connections and hands raft
// streams to the raft transport and forward streams to the forward handler.
type clusterMux struct {
	ln        net.Listener
	advertise net.Addr
	key       []byte
	// accept are further keys a connecting node may prove (rotation).
	accept    [][]byte
	tlsServer *tls.Config
	tlsClient *tls.Config
	log       *slog.Logger

	dialTCP   func(ctx context.Context, addr string) (net.Conn, error)
	raftConns chan net.Conn
	forward   func(net.Conn)
	backup    func(net.Conn)
	// joinSecret returns the current join secret, "" when there is none.
	joinSecret func() string

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup

	// conns are the accepted connections still open, closed on shutdown so
	// idle pooled forwarding connections do not hold it up.
	connMu sync.Mutex
	conns  map[net.Conn]struct{}
}

func newClusterMux(ln net.Listener, advertise net.Addr, key []byte, log *slog.Logger) (*clusterMux, error) {
	cert, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	m := &clusterMux{
		ln:        ln,
		advertise: advertise,
		key:       key,
		tlsServer: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		// Trust comes from the HMAC exchange below, not from the certificate.
		tlsClient: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec
		log:       log,
		raftConns: make(chan net.Conn),
		closed:    make(chan struct{}),
	}
	return m, nil
}

func (m *clusterMux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Error("cluster listener stopped", "err", err)
			return
		}
		if !m.track(c) {
			c.Close()
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer m.untrack(c)
			m.handle(c)
		}()
	}
}

func (m *clusterMux) handle(raw net.Conn) {
	_ = raw.SetDeadline(time.Now().Add(authTimeout))
	c := tls.Server(raw, m.tlsServer)
	kind, err := m.serverAuth(c)
	if err != nil {
		m.log.Warn("refused cluster connection", "remote", raw.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	switch kind {
	case streamRaft:
		select {
		case m.raftConns <- c:
		case <-m.closed:
			c.Close()
		}
	case streamBackup:
		if m.backup == nil {
			c.Close()
			return
		}
		m.backup(c)
	case streamJoin:
		// The joiner proved the join secret: hand it the cluster key.
		_ = raw.SetDeadline(time.Now().Add(authTimeout))
		var b []byte
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.key)))
		if _, err := c.Write(append(b, m.key...)); err != nil {
			m.log.Warn("send cluster key to joining node", "remote", raw.RemoteAddr().String(), "err", err)
		} else {
			m.log.Info("gave the cluster key to a node holding the join secret", "remote", raw.RemoteAddr().String())
		}
		c.Close()
	case streamForward:
		if m.forward == nil {
			c.Close()
			return
		}
		m.forward(c)
	default:
		c.Close()
	}
}

func macWith(c *tls.Conn, key []byte, role string) ([]byte, error) {
	st := c.ConnectionState()
	ekm, err := st.ExportKeyingMaterial(authLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("export keying material: %w", err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(role))
	h.Write(ekm)
	return h.Sum(nil), nil
}

// joinKey derives the MAC key of a join stream from the join secret.
func joinKey(secret string) []byte {
	k := sha256.Sum256([]byte("seedbank join secret v1\x00" + secret))
	return k[:]
}

// serverAuth checks the client's proof first, so a client without the key
// learns nothing, then sends its own and reads the stream kind. A join
// stream proves the join secret instead of the cluster key.
func (m *clusterMux) serverAuth(c *tls.Conn) (byte, error) {
	if err := c.Handshake(); err != nil {
		return 0, fmt.Errorf("tls handshake: %w", err)
	}
	var buf [33]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return 0, fmt.Errorf("read client proof: %w", err)
	}
	key := m.key
	if buf[32] == streamJoin {
		secret := ""
		if m.joinSecret != nil {
			secret = m.joinSecret()
		}
		if secret == "" {
			return 0, ErrJoinSecret
		}
		key = joinKey(secret)
	}
	candidates := [][]byte{key}
	if buf[32] != streamJoin {
		candidates = append(candidates, m.accept...)
	}
	matched := false
	for _, k := range candidates {
		want, err := macWith(c, k, "client")
		if err != nil {
			return 0, err
		}
		if hmac.Equal(buf[:32], want) {
			key, matched = k, true
			break
		}
	}
	if !matched {
		if buf[32] == streamJoin {
			return 0, ErrJoinSecret
		}
		return 0, ErrClusterAuth
	}
	mine, err := macWith(c, key, "server")
	if err != nil {
		return 0, err
	}
	if _, err := c.Write(mine); err != nil {
		return 0, fmt.Errorf("write server proof: %w", err)
	}
	return buf[32], nil
}

// dial opens an authenticated stream of the given kind to addr.
func (m *clusterMux) dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	return m.dialKey(ctx, addr, kind, m.key, ErrClusterAuth)
}

// dialKey opens a stream to addr proving key; authErr is the error when
// the server refuses or cannot prove the same key.
func (m *clusterMux) dialKey(ctx context.Context, addr string, kind byte, key []byte, authErr error) (net.Conn, error) {
	dialTCP := m.dialTCP
	if dialTCP == nil {
		var d net.Dialer
		dialTCP = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	raw, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	deadline := time.Now().Add(authTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = raw.SetDeadline(deadline)
	c := tls.Client(raw, m.tlsClient)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	mine, err := macWith(c, key, "client")
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Write(append(mine, kind)); err != nil {
		c.Close()
		return nil, fmt.Errorf("auth with %s: %w", addr, err)
	}
	var proof [32]byte
	if _, err := io.ReadFull(c, proof[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("auth with %s: %w", addr, authErr)
	}
	want, err := macWith(c, key, "server")
	if err != nil {
		c.Close()
		return nil, err
	}
	if !hmac.Equal(proof[:], want) {
		c.Close()
		return nil, fmt.Errorf("server %s: %w", addr, authErr)
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

func (m *clusterMux) track(c net.Conn) bool {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	select {
	case <-m.closed:
		return false
	default:
	}
	if m.conns == nil {
		m.conns = map[net.Conn]struct{}{}
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *clusterMux) untrack(c net.Conn) {
	m.connMu.Lock()
	delete(m.conns, c)
	m.connMu.Unlock()
}

func (m *clusterMux) close() error {
	var err error
	m.closeOnce.Do(func() {
		m.connMu.Lock()
		close(m.closed)
		for c := range m.conns {
			c.Close()
		}
		m.connMu.Unlock()
		err = m.ln.Close()
	})
	m.wg.Wait()
	return err
}

// raftLayer adapts clusterMux to raft.StreamLayer.
type raftLayer struct{ m *clusterMux }

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l raftLayer) Close() error   { return l.m.close() }
func (l raftLayer) Addr() net.Addr { return l.m.advertise }

func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.m.dial(ctx, string(addr), streamRaft)
}

func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate cluster tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "seedbank-node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create cluster tls cert: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
