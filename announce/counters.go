package announce

import (
	"errors"
	"sync/atomic"
)

// resultCounters count announces by outcome for metrics; one atomic add per
// announce, no allocation.
type resultCounters struct {
	ok, unknownPasskey, malformedPasskey, disabled, unregistered, clientRefused, other atomic.Uint64
	scrapes                                                                            atomic.Uint64
	// lastEmpty is when the stats queue was last seen empty (Unix ns).
	lastEmpty atomic.Int64
}

func (c *resultCounters) count(err error) {
	switch {
	case err == nil:
		c.ok.Add(1)
	case errors.Is(err, ErrUnknownPasskey):
		c.unknownPasskey.Add(1)
	case errors.Is(err, ErrMalformedPasskey):
		c.malformedPasskey.Add(1)
	case errors.Is(err, ErrDisabledAccount):
		c.disabled.Add(1)
	case errors.Is(err, ErrUnregisteredTorrent):
		c.unregistered.Add(1)
	case errors.Is(err, ErrClientNotAllowed):
		c.clientRefused.Add(1)
	default:
		c.other.Add(1)
	}
}

// AnnounceCounts are cumulative announce outcomes since the tracker started.
type AnnounceCounts struct {
	OK, UnknownPasskey, MalformedPasskey, Disabled, Unregistered, ClientRefused, Other uint64
	Scrapes                                                                            uint64
}

// AnnounceCounts returns the announce outcomes counted so far.
func (t *Tracker) AnnounceCounts() AnnounceCounts {
	c := &t.counters
	return AnnounceCounts{
		OK: c.ok.Load(), UnknownPasskey: c.unknownPasskey.Load(), MalformedPasskey: c.malformedPasskey.Load(),
		Disabled: c.disabled.Load(), Unregistered: c.unregistered.Load(), ClientRefused: c.clientRefused.Load(),
		Other: c.other.Load(), Scrapes: c.scrapes.Load(),
	}
}
