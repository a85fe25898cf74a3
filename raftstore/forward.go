package raftstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The forwarding service runs on the cluster port behind the same
// authentication as raft. A follower sends a write to the leader and gets
// back the log index it was applied at, then waits until its own FSM has
// applied that index (read-your-writes on the node the caller talked to).

const maxFrame = MaxCommandBytes + 4096

type forwardRequest struct {
	Op     string `json:"op"` // "apply", "join", "remove"
	Cmd    []byte `json:"cmd,omitempty"`
	NodeID string `json:"node_id,omitempty"`
	Addr   string `json:"addr,omitempty"`
	// Hops counts forwards, so a stale leader view cannot loop a request.
	Hops int `json:"hops"`
}

type forwardResponse struct {
	Index uint64 `json:"index"`
	Code  string `json:"code,omitempty"`
	Err   string `json:"err,omitempty"`
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

// serveForward handles one forwarded request per connection.
func (s *Store) serveForward(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.cfg.ApplyTimeout + 5*time.Second))
	var req forwardRequest
	if err := readFrame(c, &req); err != nil {
		s.log.Warn("bad forward request", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	resp := s.handleForward(ctx, &req)
	if err := writeFrame(c, resp); err != nil {
		s.log.Warn("write forward response", "remote", c.RemoteAddr().String(), "err", err)
	}
}

func (s *Store) handleForward(ctx context.Context, req *forwardRequest) forwardResponse {
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
	resp, err := s.call(ctx, string(addr), req)
	if err != nil {
		return forwardResponse{Err: err.Error(), Retry: true}
	}
	return resp
}

// call sends one request to a cluster address.
func (s *Store) call(ctx context.Context, addr string, req *forwardRequest) (forwardResponse, error) {
	c, err := s.mux.dial(ctx, addr, streamForward)
	if err != nil {
		return forwardResponse{}, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if err := writeFrame(c, req); err != nil {
		return forwardResponse{}, fmt.Errorf("forward to %s: %w", addr, err)
	}
	var resp forwardResponse
	if err := readFrame(c, &resp); err != nil {
		return forwardResponse{}, fmt.Errorf("forward to %s: read answer: %w", addr, err)
	}
	return resp, nil
}

// responseError turns a forwarded answer back into an error callers can
// branch on with errors.Is.
func responseError(resp forwardResponse) error {
	if resp.Err == "" {
		return nil
	}
	if e, ok := applyErrors[resp.Code]; ok {
		return e
	}
	if resp.Retry {
		return fmt.Errorf("%w: %s", ErrNoLeader, resp.Err)
	}
	return errors.New(resp.Err)
}
