package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// NewPasskey returns 32 lowercase hex characters from crypto/rand.
func NewPasskey() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random passkey: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewID returns a random non-zero uint64 from crypto/rand.
func NewID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("read random id: %w", err)
		}
		// Keep ids below 2^53 so they survive JSON numbers in browsers.
		if id := binary.BigEndian.Uint64(b[:]) >> 11; id != 0 {
			return id, nil
		}
	}
}

var codeEncoding = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// NewCode returns a random code of n bytes of entropy, written with letters
// and digits that are hard to confuse (no 0/o, 1/l), for invites, recovery
// codes and API tokens.
func NewCode(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random code: %w", err)
	}
	return codeEncoding.EncodeToString(b), nil
}

// HashCode returns the hex SHA-256 of a high-entropy code. Codes from NewCode
// carry enough entropy that a fast hash is safe to store.
func HashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}
