//go:build !linux

package announce

import (
	"context"
	"net"
)

// serveFast is the Linux fast path (httpserve_linux.go); elsewhere every
// connection takes the regular path.
func (s *httpServer) serveFast(_ context.Context, _ net.Listener) (bool, error) {
	return false, nil
}
