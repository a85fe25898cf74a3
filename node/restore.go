package node

import (
	"fmt"
	"io"
	"net"

	"github.com/seedbank/seedbank/raftstore"
)

// RestoreBackup makes cfg.DataDir the data dir of a new single-node cluster
// holding the state in backup (written by `seedbank backup`). The node gets
// its identity and a cluster key (cfg.ClusterKey, else a new one, returned
// when new) and then starts with `seedbank serve` on the same cluster
// address; more nodes join it as usual.
func RestoreBackup(cfg Config, backup io.Reader) (newKey string, applied uint64, err error) {
	if err := cfg.Validate(); err != nil {
		return "", 0, fmt.Errorf("config: %w", err)
	}
	addr := cfg.Advertise
	if addr == "" {
		addr = cfg.ClusterAddr
	}
	if host, port, err := net.SplitHostPort(addr); err != nil || port == "0" || net.ParseIP(host) == nil || net.ParseIP(host).IsUnspecified() {
		return "", 0, fmt.Errorf("restore needs a fixed cluster address (--cluster or --advertise as IP:port, not port 0 or 0.0.0.0), got %q", addr)
	}
	id, _, err := loadIdentity(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return "", 0, err
	}
	key, created, err := loadClusterKey(cfg.DataDir, cfg.ClusterKey, false)
	if err != nil {
		return "", 0, err
	}
	if applied, err = raftstore.RestoreDataDir(cfg.DataDir, id.NodeID, addr, backup); err != nil {
		return "", 0, err
	}
	if created {
		newKey = encodeKey(key.Primary())
	}
	return newKey, applied, nil
}
