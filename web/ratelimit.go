package web

import (
	"sync"
	"time"
)

// limiter is an in-memory token bucket per key (client IP or account name).
// Each node limits on its own: an attacker spreading attempts over N nodes
// gets N times the rate, which is still slow against argon2id hashes.
type limiter struct {
	rate RateLimit
	mu   sync.Mutex
	b    map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds memory; full buckets are dropped first.
const maxBuckets = 100_000

func newLimiter(r RateLimit) *limiter { return &limiter{rate: r, b: map[string]*bucket{}} }

// allow takes one token for key and reports whether one was left, and if
// not, how long until the next.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b[key]
	if b == nil {
		if len(l.b) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.b[key] = b
	}
	b.tokens = min(float64(l.rate.Burst), b.tokens+float64(now.Sub(b.last))/float64(l.rate.Every))
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.rate.Every))
}

// prune drops buckets that have refilled; they behave like new ones.
func (l *limiter) prune(now time.Time) {
	for k, b := range l.b {
		if b.tokens+float64(now.Sub(b.last))/float64(l.rate.Every) >= float64(l.rate.Burst) {
			delete(l.b, k)
		}
	}
}
