//go:build !linux

package announce

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// xnetBatcher is the udpBatcher of other systems: golang.org/x/net's
// batch calls, one datagram per system call where the system has no
// recvmmsg.
type xnetBatcher struct {
	conn interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
		WriteBatch(ms []ipv4.Message, flags int) (int, error)
	}
	in   []ipv4.Message
	out  []ipv4.Message
	nout int
}

func newUDPBatcher(conn *net.UDPConn, _ bool) (udpBatcher, error) {
	b := &xnetBatcher{in: make([]ipv4.Message, udpBatch), out: make([]ipv4.Message, udpBatch)}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		b.conn = ipv4.NewPacketConn(conn)
	} else {
		b.conn = ipv6.NewPacketConn(conn) // also a dual-stack socket's IPv4 clients
	}
	buf := make([]byte, udpBatch*udpBufSize)
	for i := range b.in {
		b.in[i].Buffers = [][]byte{buf[i*udpBufSize : (i+1)*udpBufSize : (i+1)*udpBufSize]}
		b.out[i].Buffers = make([][]byte, 1)
	}
	return b, nil
}

func (b *xnetBatcher) read() (int, error) { return b.conn.ReadBatch(b.in, 0) }

func (b *xnetBatcher) datagram(i int) ([]byte, netip.AddrPort, bool) {
	m := &b.in[i]
	ua, ok := m.Addr.(*net.UDPAddr)
	if !ok || m.N >= udpBufSize {
		return nil, netip.AddrPort{}, false
	}
	return m.Buffers[0][:m.N], ua.AddrPort(), true
}

func (b *xnetBatcher) reply(i int, msg []byte) {
	if b.nout == len(b.out) {
		return
	}
	w := &b.out[b.nout]
	w.Buffers[0] = msg
	w.Addr = b.in[i].Addr
	b.nout++
}

func (b *xnetBatcher) send(refused func(to netip.AddrPort, err error)) error {
	ms := b.out[:b.nout]
	b.nout = 0
	for len(ms) > 0 {
		n, err := b.conn.WriteBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var to netip.AddrPort
			if ua, ok := ms[0].Addr.(*net.UDPAddr); ok {
				to = ua.AddrPort()
			}
			refused(to, err)
			ms = ms[1:] // the batch fails only on its first datagram
			continue
		}
		ms = ms[max(n, 1):]
	}
	return nil
}
