// Package gossiptest injects network faults into test clusters: it wraps the
// memberlist transports and raft dialers of named nodes, cuts traffic
// between groups of nodes (a partition) and counts gossip bytes.
package gossiptest

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrPartitioned is returned for traffic the fault injector blocks.
var ErrPartitioned = errors.New("gossiptest: network partitioned")

// Net is the network of one test cluster. Its methods are safe for
// concurrent use.
type Net struct {
	mu     sync.Mutex
	owners map[string]string // address -> node name
	groups map[string]int    // node -> group while partitioned
	mute   map[string]bool   // nodes whose UDP packets are lost
	conns  map[*conn]struct{}

	bytes   atomic.Uint64
	packets atomic.Uint64
}

// New returns a healed network.
func New() *Net {
	return &Net{owners: map[string]string{}, conns: map[*conn]struct{}{}}
}

// Register tells the network which node owns addrs (its gossip and cluster
// addresses), so traffic to them can be blocked.
func (n *Net) Register(node string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		n.owners[a] = node
	}
}

// Partition cuts every node group off from the others. Nodes not listed
// can talk to everyone. Established cluster connections across the cut are
// closed.
func (n *Net) Partition(groups ...[]string) {
	n.mu.Lock()
	n.groups = map[string]int{}
	for i, g := range groups {
		for _, node := range g {
			n.groups[node] = i
		}
	}
	var cut []*conn
	for c := range n.conns {
		if n.blockedLocked(c.from, c.to) {
			cut = append(cut, c)
		}
	}
	n.mu.Unlock()
	for _, c := range cut {
		c.Conn.Close()
	}
}

// Heal ends the partition.
func (n *Net) Heal() {
	n.mu.Lock()
	n.groups = nil
	n.mu.Unlock()
}

// LosePackets makes every UDP packet node sends get lost (on) or go through
// again (off); its TCP streams are not touched.
func (n *Net) LosePackets(node string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mute == nil {
		n.mute = map[string]bool{}
	}
	n.mute[node] = on
}

func (n *Net) packetLost(from, toAddr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mute[from] || n.blockedLocked(from, toAddr)
}

// Blocked reports whether node from cannot reach address to now.
func (n *Net) Blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blockedLocked(from, to)
}

func (n *Net) blockedLocked(from, toAddr string) bool {
	if n.groups == nil {
		return false
	}
	to, ok := n.owners[toAddr]
	if !ok {
		return false
	}
	gf, okf := n.groups[from]
	gt, okt := n.groups[to]
	return okf && okt && gf != gt
}

// GossipBytes returns the bytes memberlist sent (packets and streams, both
// directions) since the last ResetCounters.
func (n *Net) GossipBytes() uint64 { return n.bytes.Load() }

// GossipPackets returns the UDP packets memberlist sent.
func (n *Net) GossipPackets() uint64 { return n.packets.Load() }

// ResetCounters zeroes the byte and packet counters.
func (n *Net) ResetCounters() {
	n.bytes.Store(0)
	n.packets.Store(0)
}

// Dial returns a raftstore.Config.Dial for node: it refuses blocked
// addresses and fails connections that a later partition cuts.
func (n *Net) Dial(node string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		if n.Blocked(node, addr) {
			return nil, ErrPartitioned
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return n.track(&conn{Conn: c, net: n, from: node, to: addr}), nil
	}
}

func (n *Net) track(c *conn) *conn {
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return c
}

// conn fails reads and writes while its ends are partitioned.
type conn struct {
	net.Conn
	net      *Net
	from, to string
	count    bool
	once     sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	if c.to != "" && c.net.Blocked(c.from, c.to) {
		c.Close()
		return 0, ErrPartitioned
	}
	return c.Conn.Read(b)
}

func (c *conn) Write(b []byte) (int, error) {
	if c.to != "" && c.net.Blocked(c.from, c.to) {
		c.Close()
		return 0, ErrPartitioned
	}
	n, err := c.Conn.Write(b)
	if c.count {
		c.net.bytes.Add(uint64(n))
	}
	return n, err
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.net.mu.Lock()
		delete(c.net.conns, c)
		c.net.mu.Unlock()
	})
	return c.Conn.Close()
}

// WrapTransport returns a gossip.Config.WrapTransport for node.
func (n *Net) WrapTransport(node string) func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		t := &transport{
			NodeAwareTransport: inner,
			net:                n,
			node:               node,
			packets:            make(chan *memberlist.Packet),
			streams:            make(chan net.Conn),
			done:               make(chan struct{}),
		}
		go t.forward()
		return t
	}
}

// transport drops packets and refuses streams across a partition, loses a
// muted node's packets and counts what memberlist sends.
type transport struct {
	memberlist.NodeAwareTransport
	net     *Net
	node    string
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func (t *transport) forward() {
	in, streams := t.NodeAwareTransport.PacketCh(), t.NodeAwareTransport.StreamCh()
	for {
		select {
		case <-t.done:
			return
		case p := <-in:
			if t.net.Blocked(t.node, p.From.String()) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case c := <-streams:
			select {
			case t.streams <- &conn{Conn: c, net: t.net, count: true}:
			case <-t.done:
				c.Close()
				return
			}
		}
	}
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *transport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.net.packetLost(t.node, a.Addr) {
		return time.Now(), nil // lost on the wire
	}
	t.net.bytes.Add(uint64(len(b)))
	t.net.packets.Add(1)
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.net.Blocked(t.node, a.Addr) {
		return nil, ErrPartitioned
	}
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return t.net.track(&conn{Conn: c, net: t.net, from: t.node, to: a.Addr, count: true}), nil
}

// Shutdown stops the inner transport first: its listeners block handing
// over packets until they exit, so forward must keep reading meanwhile
// (memberlist still reads ours until the transport is down).
func (t *transport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	t.once.Do(func() { close(t.done) })
	return err
}
