package loadgen

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
)

// Fixture is the benchmark's world: users with passkeys and torrents, each
// with PeersPer peers. Peer g (0 <= g < len(Hashes)*PeersPer) belongs to
// torrent g/PeersPer, uses the passkey of user g%len(Passkeys), and listens
// on port PortBase + g%PeersPer, so peers of one swarm differ by address too
// (opentracker keys peers by address).
type Fixture struct {
	Passkeys []string   // 32 lowercase hex each
	Hashes   [][20]byte // info hashes
	PeersPer int
}

// PortBase is the first peer port.
const PortBase = 10000

// TorrentSize is the size every fixture torrent claims; leechers start with
// this much left.
const TorrentSize = 1 << 30

// NewFixture makes a fixture deterministically from seed.
func NewFixture(seed uint64, users, torrents, peersPer int) *Fixture {
	rng := rand.New(rand.NewPCG(seed, 0x5eedba4c))
	f := &Fixture{
		Passkeys: make([]string, users),
		Hashes:   make([][20]byte, torrents),
		PeersPer: peersPer,
	}
	var pk [16]byte
	for i := range f.Passkeys {
		fill(rng, pk[:])
		f.Passkeys[i] = hex.EncodeToString(pk[:])
	}
	for i := range f.Hashes {
		fill(rng, f.Hashes[i][:])
	}
	return f
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// Peers returns the number of peers.
func (f *Fixture) Peers() int { return len(f.Hashes) * f.PeersPer }

// Peer describes peer g.
func (f *Fixture) Peer(g int) (hash *[20]byte, passkey string, peerID [20]byte, port uint16) {
	hash = &f.Hashes[g/f.PeersPer]
	passkey = f.Passkeys[g%len(f.Passkeys)]
	copy(peerID[:], "-SB0100-")
	n := g
	for i := 19; i >= 8; i-- {
		peerID[i] = byte('0' + n%10)
		n /= 10
	}
	return hash, passkey, peerID, uint16(PortBase + g%f.PeersPer)
}

// WriteTo writes the fixture as text: "peers <n>", then "u <passkey>" and
// "t <hex info hash>" lines.
func (f *Fixture) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "peers %d\n", f.PeersPer)
	for _, p := range f.Passkeys {
		bw.WriteString("u " + p + "\n")
	}
	for _, h := range f.Hashes {
		bw.WriteString("t " + hex.EncodeToString(h[:]) + "\n")
	}
	return 0, bw.Flush()
}

// WriteWhitelist writes the info hashes as hex, one a line (opentracker's
// whitelist format).
func (f *Fixture) WriteWhitelist(path string) error {
	var sb strings.Builder
	for _, h := range f.Hashes {
		sb.WriteString(hex.EncodeToString(h[:]))
		sb.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// ReadFixture reads what WriteTo wrote.
func ReadFixture(path string) (*Fixture, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	f := &Fixture{}
	sc := bufio.NewScanner(file)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		switch {
		case strings.HasPrefix(s, "peers "):
			if _, err := fmt.Sscanf(s, "peers %d", &f.PeersPer); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		case strings.HasPrefix(s, "u ") && len(s) == 34:
			f.Passkeys = append(f.Passkeys, s[2:])
		case strings.HasPrefix(s, "t ") && len(s) == 42:
			var h [20]byte
			if _, err := hex.Decode(h[:], []byte(s[2:])); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			f.Hashes = append(f.Hashes, h)
		default:
			return nil, fmt.Errorf("%s:%d: unexpected line %q", path, line, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if f.PeersPer <= 0 || len(f.Passkeys) == 0 || len(f.Hashes) == 0 {
		return nil, fmt.Errorf("%s: incomplete fixture", path)
	}
	return f, nil
}
