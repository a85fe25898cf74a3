package announce

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"
)

// connIDWindow is the lifetime unit of a UDP connection id. An id is accepted
// in the window it was made and the next one, so it lives at least
// connIDWindow (BEP 15 asks for 2 minutes) and at most twice that.
const connIDWindow = 2 * time.Minute

// connIDs makes and checks stateless BEP 15 connection ids: the first 8
// bytes of SHA-256(secret || window || client ip || client port). The secret
// is random per process; the window number rotates the effective key every
// connIDWindow. All inputs have a fixed length, so this keyed hash is a MAC.
// It allocates nothing. The input is 42 bytes, so SHA-256 hashes one 64-byte
// block (with a 32-byte secret it was 58 bytes and two blocks); 128 bits of
// secret are plenty for a 64-bit tag that lives four minutes.
type connIDs struct {
	secret [16]byte
}

func (c *connIDs) init() {
	rand.Read(c.secret[:])
}

func (c *connIDs) mac(window int64, addr netip.AddrPort) uint64 {
	var in [16 + 8 + 16 + 2]byte
	copy(in[:16], c.secret[:])
	binary.BigEndian.PutUint64(in[16:], uint64(window))
	ip := addr.Addr().Unmap().As16()
	copy(in[24:], ip[:])
	binary.BigEndian.PutUint16(in[40:], addr.Port())
	sum := sha256.Sum256(in[:])
	return binary.BigEndian.Uint64(sum[:8])
}

func windowOf(now time.Time) int64 { return now.Unix() / int64(connIDWindow/time.Second) }

// make returns the connection id for addr at now.
func (c *connIDs) make(addr netip.AddrPort, now time.Time) uint64 {
	return c.mac(windowOf(now), addr)
}

// valid reports whether id was made for addr in now's window or the one before.
func (c *connIDs) valid(id uint64, addr netip.AddrPort, now time.Time) bool {
	w := windowOf(now)
	var got, want [8]byte
	binary.BigEndian.PutUint64(got[:], id)
	binary.BigEndian.PutUint64(want[:], c.mac(w, addr))
	if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
		return true
	}
	binary.BigEndian.PutUint64(want[:], c.mac(w-1, addr))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
