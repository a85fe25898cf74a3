package raftstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// The forwarding service runs on the cluster port behind the same
// authentication as raft. A follower sends a write to the leader and gets
// back the log index it was applied at, then waits until its own FSM has
// applied that index (read-your-writes on the node the caller talked to).

const maxFrame = MaxCommandBytes + 4096

type forwardRequest struct {
	Op     string `json:"op"` // "apply", "join", "remove", "user_by_name"
	Cmd    []byte `json:"cmd,omitempty"`
	NodeID string `json:"node_id,omitempty"`
	Addr   string `json:"addr,omitempty"`
	Key    string `json:"key,omitempty"`
	// Hops counts forwards, so a stale leader view cannot loop a request.
	Hops int `json:"hops"`
}

type forwardResponse struct {
	Index uint64 `json:"index"`
	Code  string `json:"code,omitempty"`
	Err   string `json:"err,omitempty"`
	// Value carries the answer of a read op.
	Value json.RawMessage `json:"value,omitempty"`
	// Retry marks errors worth retrying elsewhere (no leader, lost leadership).
	Retry bool `json:"retry,omitempty"`
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("frame of %d bytes over the %d limit", len(b), maxFrame)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(append(hdr[:], b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("frame of %d bytes over the %d limit", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serveForward answers forwarded requests on one connection until the peer
// closes it; connections are pooled by the caller.
func (s *Store) serveForward(c net.Conn) {
	defer c.Close()
	for {
		// An idle pooled connection may wait a while for its next request.
		_ = c.SetReadDeadline(time.Now().Add(forwardIdle))
		var req forwardRequest
		if err := readFrame(c, &req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("bad forward request", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
		resp := s.handleForward(ctx, &req)
		cancel()
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(c, resp); err != nil {
			s.log.Warn("write forward response", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
	}
}

// forwardIdle is how long a pooled forwarding connection may sit unused.
const forwardIdle = 60 * time.Second

// connPool keeps idle authenticated forwarding connections per address, so
// a forwarded write costs a round trip, not a TLS handshake.
type connPool struct {
	mu   sync.Mutex
	idle map[string][]pooledConn
}

type pooledConn struct {
	c     net.Conn
	since time.Time
}

const maxIdlePerAddr = 8

func (p *connPool) get(addr string) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		return nil
	}
	list := p.idle[addr]
	for len(list) > 0 {
		pc := list[len(list)-1]
		list = list[:len(list)-1]
		if time.Since(pc.since) < forwardIdle/2 {
			p.idle[addr] = list
			return pc.c
		}
		pc.c.Close()
	}
	p.idle[addr] = list
	return nil
}

func (p *connPool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[string][]pooledConn{}
	}
	if len(p.idle[addr]) >= maxIdlePerAddr {
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], pooledConn{c: c, since: time.Now()})
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range p.idle {
		for _, pc := range list {
			pc.c.Close()
		}
	}
	p.idle = nil
}

func (s *Store) handleForward(ctx context.Context, req *forwardRequest) forwardResponse {
	if req.Op == "user_by_name" {
		u, err := s.UserByName(req.Key)
		if err != nil {
			return forwardResponse{Err: err.Error(), Code: applyErrorCode(err)}
		}
		v, _ := json.Marshal(u)
		return forwardResponse{Value: v}
	}
	var idx uint64
	var err error
	if !s.IsLeader() {
		if req.Hops >= 1 {
			return forwardResponse{Err: ErrNoLeader.Error(), Retry: true}
		}
		req.Hops++
		return s.forwardToLeader(ctx, req)
	}
	switch req.Op {
	case "apply":
		if _, derr := decodeCommand(req.Cmd); derr != nil {
			return forwardResponse{Err: derr.Error()}
		}
		idx, err = s.applyAsLeader(ctx, req.Cmd)
	case "join":
		idx, err = s.addServer(req.NodeID, req.Addr)
	case "remove":
		idx, err = s.removeServer(req.NodeID)
	default:
		return forwardResponse{Err: fmt.Sprintf("unknown op %q", req.Op)}
	}
	resp := forwardResponse{Index: idx}
	if err != nil {
		resp.Err = err.Error()
		resp.Code = applyErrorCode(err)
		resp.Retry = errors.Is(err, ErrNoLeader)
	}
	return resp
}

// forwardToLeader sends req to the current leader and returns its answer.
func (s *Store) forwardToLeader(ctx context.Context, req *forwardRequest) forwardResponse {
	addr, _ := s.raft.LeaderWithID()
	if addr == "" {
		return forwardResponse{Err: ErrNoLeader.Error(), Retry: true}
	}
	resp, err := s.rpc.call(ctx, string(addr), req)
	if err != nil {
		return forwardResponse{Err: err.Error(), Retry: true}
	}
	return resp
}

// rpcClient sends forwarding requests over pooled authenticated connections.
type rpcClient struct {
	mux     *clusterMux
	pool    connPool
	timeout time.Duration
}

// call sends one request to a cluster address, over a pooled connection
// when one is idle. A pooled connection that fails before the request was
// written is replaced by a fresh one; after that the error is returned, as
// the request may have been applied.
func (r *rpcClient) call(ctx context.Context, addr string, req *forwardRequest) (forwardResponse, error) {
	if c := r.pool.get(addr); c != nil {
		if resp, sent, err := r.roundTrip(ctx, c, req); err == nil {
			r.pool.put(addr, c)
			return resp, nil
		} else if sent {
			c.Close()
			return forwardResponse{}, fmt.Errorf("forward to %s: %w", addr, err)
		}
		c.Close()
	}
	c, err := r.mux.dial(ctx, addr, streamForward)
	if err != nil {
		return forwardResponse{}, err
	}
	resp, _, err := r.roundTrip(ctx, c, req)
	if err != nil {
		c.Close()
		return forwardResponse{}, fmt.Errorf("forward to %s: %w", addr, err)
	}
	r.pool.put(addr, c)
	return resp, nil
}

// roundTrip writes req and reads the answer; sent reports whether the
// peer could have seen the request (a stale pooled connection fails on the
// read of the first byte, which still counts as sent; we check for EOF).
func (r *rpcClient) roundTrip(ctx context.Context, c net.Conn, req *forwardRequest) (forwardResponse, bool, error) {
	deadline := time.Now().Add(r.timeout)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	if err := writeFrame(c, req); err != nil {
		return forwardResponse{}, false, err
	}
	var resp forwardResponse
	if err := readFrame(c, &resp); err != nil {
		// A peer that closed an idle connection answers EOF at once
		// without reading the request.
		return forwardResponse{}, !errors.Is(err, io.EOF), fmt.Errorf("read answer: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return resp, true, nil
}

// responseError turns a forwarded answer back into an error callers can
// branch on with errors.Is.
func responseError(resp forwardResponse) error {
	if resp.Err == "" {
		return nil
	}
	if e, ok := applyErrors[resp.Code]; ok {
		if resp.Err != e.Error() {
			return remoteError{msg: resp.Err, is: e} // keep the leader's detail
		}
		return e
	}
	if resp.Retry {
		if resp.Err == ErrNoLeader.Error() {
			return ErrNoLeader
		}
		return fmt.Errorf("%w: %s", ErrNoLeader, resp.Err)
	}
	return errors.New(resp.Err)
}

// remoteError is an error from another node: its text, matching a sentinel.
type remoteError struct {
	msg string
	is  error
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.is }
