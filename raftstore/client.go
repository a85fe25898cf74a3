package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/seedbank/seedbank/model"
)

// Client reaches a running cluster from outside it, through any member's
// cluster port with the cluster key, for operator commands (seedbank user
// ...). Writes go to the leader through the member called.
type Client struct {
	addrs []string
	rpc   *rpcClient
}

// NewClient returns a client for the members at addrs.
func NewClient(addrs []string, key []byte, log *slog.Logger) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no cluster address given")
	}
	if len(key) < 16 {
		return nil, errors.New("cluster key must be at least 16 bytes")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newClusterMux(nil, nil, key, log)
	if err != nil {
		return nil, err
	}
	return &Client{addrs: addrs, rpc: &rpcClient{mux: m, timeout: 30 * time.Second}}, nil
}

// Close releases pooled connections.
func (c *Client) Close() { c.rpc.pool.closeAll() }

// do sends req to the members in turn until one answers.
func (c *Client) do(ctx context.Context, req *forwardRequest) (forwardResponse, error) {
	var last error
	for attempt := 0; ; attempt++ {
		for _, a := range c.addrs {
			resp, err := c.rpc.call(ctx, a, req)
			if err == nil {
				err = responseError(resp)
				if err == nil || !errors.Is(err, ErrNoLeader) {
					return resp, err
				}
			}
			if errors.Is(err, ErrClusterAuth) {
				return resp, err
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return forwardResponse{}, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(backoff(attempt)):
		}
	}
}

func (c *Client) apply(ctx context.Context, cmd command) error {
	data, err := encodeCommand(cmd)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, &forwardRequest{Op: "apply", Cmd: data})
	return err
}

// CreateUser adds a user; see Store.CreateUser.
func (c *Client) CreateUser(ctx context.Context, u model.User) error {
	return c.apply(ctx, &createUserCmd{User: u})
}

// UpdateUser replaces a user; see Store.UpdateUser.
func (c *Client) UpdateUser(ctx context.Context, u model.User) error {
	return c.apply(ctx, &updateUserCmd{User: u})
}

// UserByName reads a user from the member called.
func (c *Client) UserByName(ctx context.Context, name string) (model.User, error) {
	resp, err := c.do(ctx, &forwardRequest{Op: "user_by_name", Key: name})
	if err != nil {
		return model.User{}, err
	}
	var u model.User
	if err := json.Unmarshal(resp.Value, &u); err != nil {
		return model.User{}, fmt.Errorf("decode user: %w", err)
	}
	return u, nil
}

// RemoveServer removes node id from the raft configuration, through the
// leader (an operator removing a node that is gone for good).
func (c *Client) RemoveServer(ctx context.Context, id string) error {
	if !nodeIDRe.MatchString(id) {
		return invalid("node_id", "%q is not a node id", id)
	}
	_, err := c.do(ctx, &forwardRequest{Op: "remove", NodeID: id})
	return err
}

// RemoveMember forgets a node's public URLs; see Store.RemoveMember.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.apply(ctx, &removeMemberCmd{NodeID: id})
}

// DeleteRecord removes (kind, key); see Store.DeleteRecord.
func (c *Client) DeleteRecord(ctx context.Context, kind, key string) error {
	return c.apply(ctx, &deleteRecordCmd{Kind: kind, Key: key})
}
