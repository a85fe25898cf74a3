package announce

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config configures a Tracker. The zero value of every field except NodeID and
// QueuePath means "use the default"; WithDefaults holds all defaults.
type Config struct {
	// NodeID names this node in stats batches and is sent as "tracker id".
	// Required.
	NodeID string
	// QueuePath is the bbolt file of pending stats batches and peer counters.
	// Required.
	QueuePath string

	// Interval is the announce interval told to clients. Default 30m.
	Interval time.Duration
	// MinInterval is the "min interval" told to clients. Default 60s.
	MinInterval time.Duration
	// PeerTTL is how long a local peer stays listed without announcing.
	// Default 2*Interval.
	PeerTTL time.Duration
	// RemotePeerTTL, when set, expires remote peers that no PutRemote has
	// refreshed for that long. Default 0: remote peers live until the gossip
	// layer removes them.
	RemotePeerTTL time.Duration
	// CounterTTL is how long a peer's last counters are kept without an
	// announce. Default 6h (at least 2*PeerTTL).
	CounterTTL time.Duration
	// SweepInterval is how often expired peers and counters are removed.
	// Default 1m.
	SweepInterval time.Duration

	// NumWantDefault is the number of peers given when numwant is absent.
	// Default 50 (or NumWantMax if lower).
	NumWantDefault int
	// NumWantMax caps numwant. Default 200.
	NumWantMax int
	// MaxScrapeHashes caps the info_hash values of one scrape. Default 64.
	MaxScrapeHashes int

	// FlushInterval is how often accumulated stats are flushed to the
	// queue and committed. Default 10s.
	FlushInterval time.Duration
	// FlushSlices cuts each periodic flush into that many slices of the
	// accountant's shards, each its own queue transaction and batch, with
	// pauses between them (FlushSpread), so the flush never holds a core
	// for long and announces keep being answered in between. A divisor of
	// 64; default 64 (one shard a slice).
	FlushSlices int
	// FlushSpread is the time a periodic flush spreads its slices over.
	// Default FlushInterval/2.
	FlushSpread time.Duration
	// CommitTimeout bounds one CommitStats call. Default 10s.
	CommitTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between failed commits.
	// Defaults 500ms and 30s.
	RetryMin, RetryMax time.Duration
	// CloseTimeout bounds how long Close tries to commit pending batches.
	// Default 5s.
	CloseTimeout time.Duration

	// MaxRate is the highest plausible transfer rate of one peer, bytes per
	// second; faster counter jumps are not counted. Default 1.25e9 (10 Gbit/s).
	MaxRate int64
	// JumpSlack is added to every plausibility limit. Default 64 MiB.
	JumpSlack int64

	// TrustedProxies are the addresses whose X-Forwarded-For / X-Real-IP
	// headers are believed. Default none.
	TrustedProxies []netip.Prefix
	// AllowIPParam lets clients choose their listed address with the HTTP
	// "ip" parameter or the UDP IP field. Default false.
	AllowIPParam bool
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 30*time.Minute)
	def(&c.MinInterval, 60*time.Second)
	def(&c.PeerTTL, 2*c.Interval)
	def(&c.CounterTTL, max(6*time.Hour, 2*c.PeerTTL))
	def(&c.SweepInterval, time.Minute)
	def(&c.FlushInterval, 10*time.Second)
	def(&c.FlushSpread, c.FlushInterval/2)
	if c.FlushSlices <= 0 {
		c.FlushSlices = 64
	}
	def(&c.CommitTimeout, 10*time.Second)
	def(&c.RetryMin, 500*time.Millisecond)
	def(&c.RetryMax, 30*time.Second)
	def(&c.CloseTimeout, 5*time.Second)
	if c.NumWantMax <= 0 {
		c.NumWantMax = 200
	}
	if c.NumWantDefault <= 0 {
		c.NumWantDefault = min(50, c.NumWantMax)
	}
	if c.MaxScrapeHashes <= 0 {
		c.MaxScrapeHashes = 64
	}
	if c.MaxRate <= 0 {
		c.MaxRate = 1_250_000_000
	}
	if c.JumpSlack <= 0 {
		c.JumpSlack = 64 << 20
	}
	return c
}

// validate checks a defaulted config.
func (c *Config) validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("NodeID is required"))
	}
	if len(c.NodeID) > 255 {
		errs = append(errs, errors.New("NodeID is longer than 255 bytes"))
	}
	if c.QueuePath == "" {
		errs = append(errs, errors.New("QueuePath is required"))
	}
	if c.MinInterval > c.Interval {
		errs = append(errs, fmt.Errorf("MinInterval %v exceeds Interval %v", c.MinInterval, c.Interval))
	}
	if c.PeerTTL < c.Interval {
		errs = append(errs, fmt.Errorf("PeerTTL %v is shorter than Interval %v: peers would expire between announces", c.PeerTTL, c.Interval))
	}
	if c.CounterTTL < c.PeerTTL {
		errs = append(errs, fmt.Errorf("CounterTTL %v is shorter than PeerTTL %v", c.CounterTTL, c.PeerTTL))
	}
	if c.NumWantDefault > c.NumWantMax {
		errs = append(errs, fmt.Errorf("NumWantDefault %d exceeds NumWantMax %d", c.NumWantDefault, c.NumWantMax))
	}
	if c.FlushSlices > numStatsShards || numStatsShards%c.FlushSlices != 0 {
		errs = append(errs, fmt.Errorf("FlushSlices %d is not a divisor of %d", c.FlushSlices, numStatsShards))
	}
	if c.FlushSpread >= c.FlushInterval {
		errs = append(errs, fmt.Errorf("FlushSpread %v is not shorter than FlushInterval %v", c.FlushSpread, c.FlushInterval))
	}
	if c.RetryMin > c.RetryMax {
		errs = append(errs, fmt.Errorf("RetryMin %v exceeds RetryMax %v", c.RetryMin, c.RetryMax))
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("invalid trusted proxy prefix %v", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("announce config: %w", err)
	}
	return nil
}
