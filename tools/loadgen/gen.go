package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mode is a transport.
type Mode string

// The transports.
const (
	HTTPClose     Mode = "http-close"     // a new TCP connection per announce
	HTTPKeepAlive Mode = "http-keepalive" // one connection per worker, reused
	UDP           Mode = "udp"            // BEP 15, one socket per worker
)

// Target is one tracker under test.
type Target struct {
	Name     string
	HTTPAddr string // host:port of the HTTP tracker
	UDPAddr  string // host:port of the UDP tracker
	Passkeys bool   // send /<passkey>/announce (and the BEP 41 option)
	// SelfInPeers: the tracker may list the announcing peer itself
	// (opentracker does), so a swarm answers up to PeersPer peers, not
	// PeersPer-1.
	SelfInPeers bool
}

// Swarms is the client side of a fixture against one target: what each
// peer last told the tracker. Runs against the same Swarms continue the
// peers' histories; a Swarms must not be used by two runs at once.
type Swarms struct {
	F      *Fixture
	Target Target
	peers  []peerState
}

type peerState struct {
	up, down, left uint64
	stopped        bool
	started        bool
}

// NewSwarms returns the fixture's peers, none announced yet.
func NewSwarms(f *Fixture, t Target) *Swarms {
	return &Swarms{F: f, Target: t, peers: make([]peerState, f.Peers())}
}

// Run is one phase of load.
type Run struct {
	Mode    Mode
	Workers int
	// Duration bounds the phase. Prefill runs until every peer announced
	// once or Duration passes.
	Duration time.Duration
	// Rate, if positive, paces announces at this many per second (open
	// loop; latency counts from each announce's release by the pacer). Zero runs
	// each worker back to back (closed loop, for peak throughput).
	Rate float64
	// Prefill sends event=started once for every peer instead of periodic
	// announces.
	Prefill bool
	Timeout time.Duration // per request; default 2s
	Seed    uint64
}

// Result is what a Run measured.
type Result struct {
	Mode      Mode
	Target    string
	OK        int64 // valid responses
	Failed    int64 // errors and invalid responses
	Behind    int64 // paced announces the workers could not start on time (dropped)
	Reconnect int64 // keep-alive connections the server had closed
	Elapsed   time.Duration
	PeersSum  int64
	Errors    map[string]int64 // failure class -> count
	Example   map[string]string
	lat       []time.Duration // sorted
	// Slow are the valid answers that took longer than SlowThreshold, by
	// release time (at most maxSlow per worker), to line stalls up with
	// the tracker's background work.
	Slow []Slow
}

// Slow is one answer slower than SlowThreshold.
type Slow struct {
	At  time.Time     // when the announce was released
	Lat time.Duration // how long its answer took
}

// SlowThreshold is the latency from which an answer is kept in Result.Slow.
const SlowThreshold = 20 * time.Millisecond

const maxSlow = 4096

// PerSec returns valid responses per second.
func (r *Result) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Latency returns the q-quantile (0..1) of the latencies of valid responses.
func (r *Result) Latency(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)-1))
	return r.lat[i]
}

// ErrorSummary is a one-line list of failure classes.
func (r *Result) ErrorSummary() string {
	if len(r.Errors) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d (e.g. %s)", k, r.Errors[k], r.Example[k]))
	}
	return strings.Join(parts, "; ")
}

type workerResult struct {
	ok, failed, reconnect, peers int64
	errors                       map[string]int64
	example                      map[string]string
	lat                          []time.Duration
	slow                         []Slow
}

func (w *workerResult) fail(err error) {
	w.failed++
	class := errorClass(err)
	if w.errors == nil {
		w.errors, w.example = map[string]int64{}, map[string]string{}
	}
	if w.errors[class] == 0 {
		w.example[class] = err.Error()
	}
	w.errors[class]++
}

// errorClass groups errors for the report.
func errorClass(err error) string {
	for _, e := range []error{ErrFailure, ErrBencode, ErrResponse, ErrHTTP, ErrUDP, errConnGone, os.ErrDeadlineExceeded} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	s := err.Error()
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// Do runs r against s and returns what it measured. It stops by itself
// after r.Duration (or earlier when ctx is done).
func (s *Swarms) Do(ctx context.Context, r Run) (*Result, error) {
	if r.Workers <= 0 {
		r.Workers = 32
	}
	if r.Timeout <= 0 {
		r.Timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, r.Duration)
	defer cancel()
	clients := make([]client, r.Workers)
	for w := range clients {
		c, err := s.newClient(r.Mode, r.Timeout, uint32(w))
		if err != nil {
			for _, c := range clients[:w] {
				c.close()
			}
			return nil, err
		}
		clients[w] = c
	}
	var tokens chan time.Time
	var behind int64
	var pacer sync.WaitGroup
	if r.Rate > 0 && !r.Prefill {
		tokens = make(chan time.Time, 1<<14)
		pacer.Go(func() { behind = pace(ctx, r.Rate, tokens) })
	}
	results := make([]workerResult, r.Workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range r.Workers {
		wg.Go(func() {
			defer clients[w].close()
			rng := rand.New(rand.NewPCG(r.Seed, uint64(w)))
			s.work(ctx, &r, w, clients[w], rng, tokens, &results[w])
		})
	}
	wg.Wait()
	// A request in flight when the phase ends may take up to Timeout:
	// rates are over the phase's window, not its stragglers.
	elapsed := time.Since(start)
	if !r.Prefill {
		elapsed = min(elapsed, r.Duration)
	}
	pacer.Wait()
	res := &Result{Mode: r.Mode, Target: s.Target.Name, Elapsed: elapsed, Behind: behind,
		Errors: map[string]int64{}, Example: map[string]string{}}
	for i := range results {
		wr := &results[i]
		res.OK += wr.ok
		res.Failed += wr.failed
		res.Reconnect += wr.reconnect
		res.PeersSum += wr.peers
		res.lat = append(res.lat, wr.lat...)
		res.Slow = append(res.Slow, wr.slow...)
		for k, v := range wr.errors {
			if res.Errors[k] == 0 {
				res.Example[k] = wr.example[k]
			}
			res.Errors[k] += v
		}
	}
	slices.Sort(res.lat)
	slices.SortFunc(res.Slow, func(a, b Slow) int { return a.At.Compare(b.At) })
	return res, nil
}

func (s *Swarms) newClient(m Mode, timeout time.Duration, w uint32) (client, error) {
	switch m {
	case HTTPClose:
		return newHTTPClient(s.Target.HTTPAddr, false, timeout), nil
	case HTTPKeepAlive:
		return newHTTPClient(s.Target.HTTPAddr, true, timeout), nil
	case UDP:
		return newUDPClient(s.Target.UDPAddr, timeout, w+1)
	}
	return nil, fmt.Errorf("unknown mode %q", m)
}

// pace sends rate tokens a second, each the time it is due, until ctx is
// done; it returns how many it had to drop because the workers were busy.
func pace(ctx context.Context, rate float64, tokens chan<- time.Time) (dropped int64) {
	defer close(tokens)
	start := time.Now()
	var sent int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return dropped
		case now := <-tick.C:
			// Go's timers wake about once a millisecond at best, so tokens
			// are released in small bursts and stamped with their release
			// time: latency then counts queueing in the generator when the
			// tracker falls behind, but not the pacer's own granularity.
			due := int64(now.Sub(start).Seconds() * rate)
			for ; sent < due; sent++ {
				select {
				case tokens <- now:
				default:
					dropped++
				}
			}
		}
	}
}

// work is one worker. It owns the peers g with g % Workers == w, so peer
// state needs no lock.
func (s *Swarms) work(ctx context.Context, r *Run, w int, c client, rng *rand.Rand, tokens <-chan time.Time, res *workerResult) {
	owned := (len(s.peers) - w + r.Workers - 1) / r.Workers
	if owned <= 0 {
		return
	}
	maxPeers := s.F.PeersPer - 1
	if s.Target.SelfInPeers {
		maxPeers = s.F.PeersPer
	}
	res.lat = make([]time.Duration, 0, 1<<14)
	var a announceArgs
	a.maxPeers = maxPeers
	a.reconnectedCount = &res.reconnect
	next := 0
	for {
		var sched time.Time
		if tokens != nil {
			var ok bool
			select {
			case sched, ok = <-tokens:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
		} else {
			if ctx.Err() != nil {
				return
			}
			sched = time.Now()
		}
		var g int
		if r.Prefill {
			if next >= owned {
				return
			}
			g = w + next*r.Workers
			next++
		} else {
			g = w + rng.IntN(owned)*r.Workers
		}
		p := &s.peers[g]
		np := s.plan(p, g, r.Prefill, rng, &a)
		out, err := c.announce(&a)
		if err != nil {
			res.fail(fmt.Errorf("peer %d event %d: %w", g, a.event, err))
			continue
		}
		lat := time.Since(sched)
		res.lat = append(res.lat, lat)
		if lat > SlowThreshold && len(res.slow) < maxSlow {
			res.slow = append(res.slow, Slow{At: sched, Lat: lat})
		}
		res.ok++
		res.peers += int64(out.Peers)
		*p = np
	}
}

// Transfer per periodic announce, well under any plausibility limit.
const (
	stepDown = 256 << 10
	stepUp   = 128 << 10
)

// plan fills a with peer g's next announce and returns the peer's state
// after it succeeds: 2% stop, 3% of leechers complete, a stopped peer
// starts again, the rest are regular announces with some transfer. The
// first peer of each swarm starts as a seeder.
func (s *Swarms) plan(p *peerState, g int, prefill bool, rng *rand.Rand, a *announceArgs) peerState {
	hash, passkey, peerID, port := s.F.Peer(g)
	a.hash, a.peerID, a.port = hash, peerID, port
	if s.Target.Passkeys {
		a.passkey = passkey
	} else {
		a.passkey = ""
	}
	np := *p
	switch {
	case prefill || !p.started:
		np = peerState{started: true, left: TorrentSize}
		if g%s.F.PeersPer == 0 {
			np.left = 0
		}
		a.event = EventStarted
	case p.stopped:
		np.stopped = false
		a.event = EventStarted
	default:
		switch x := rng.IntN(100); {
		case x < 2:
			np.stopped = true
			a.event = EventStopped
		case x < 5 && p.left > 0:
			np.down += p.left
			np.left = 0
			a.event = EventCompleted
		default:
			if np.left > 0 {
				d := min(np.left, stepDown)
				np.left -= d
				np.down += d
			}
			np.up += stepUp
			a.event = EventNone
		}
		if np.left == 0 && a.event == EventNone && p.left > 0 {
			a.event = EventCompleted
		}
	}
	a.up, a.down, a.left = np.up, np.down, np.left
	return np
}
