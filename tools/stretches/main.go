// Command stretches reads a Go execution trace (trackerbench -trace) and
// lists the longest stretches that goroutines other than the UDP tracker
// loop ran without a break, with where each stopped, plus the wait of the
// UDP loop goroutines from runnable to running, up to the flush that
// trackerbench makes after the load (a log event). With the tracker on one
// core, every such stretch is time in which no announce is answered, so
// this shows what makes the latency tail (BENCHMARKS.md).
//
//	go run ./tools/stretches [-n 25] [-from] [-gaps 10] trace-udp.out
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

type stretch struct {
	g     trace.GoID
	dur   trace.Time
	where string
	from  string // where the goroutine had stopped before the stretch
}

var (
	from = flag.Bool("from", false, "also show where each listed stretch's goroutine had stopped before it")
	loop = flag.String("loop", "udpWorker", "the answer loop's goroutines: those with a frame containing this (serveConn for kept-alive HTTP connections)")
)

func main() {
	n := flag.Int("n", 25, "stretches to list")
	nGaps := flag.Int("gaps", 0, "also list this many of the UDP loop's longest gaps, with what ran in each")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: stretches [-n N] [-from] [-gaps N] [-loop NAME] TRACE")
		os.Exit(2)
	}
	err := run(flag.Arg(0), *n, os.Stdout)
	if err == nil && *nGaps > 0 {
		err = gaps(flag.Arg(0), *nGaps, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stretches:", err)
		os.Exit(1)
	}
}

// where names a stack by its first frames of interest and its root.
func where(s trace.Stack) string {
	var all, ours []string
	for f := range s.Frames() {
		fn := f.Func[strings.LastIndex(f.Func, "/")+1:]
		all = append(all, fn)
		if len(ours) < 3 && (strings.Contains(f.Func, "seedbank") || strings.Contains(f.Func, "raft") ||
			strings.Contains(f.Func, "bbolt") || strings.Contains(f.Func, "gcBgMarkWorker")) {
			ours = append(ours, fn)
		}
	}
	w := strings.Join(ours, " < ")
	if len(all) > 3 {
		w += " ... " + strings.Join(all[len(all)-3:], " < ")
	}
	return w
}

// loadEvents calls fn with each event of the trace at path up to
// trackerbench's end-of-phase flush (a log event it writes): what follows
// is that flush, not the load.
func loadEvents(path string, fn func(ev *trace.Event)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if ev.Kind() == trace.EventLog && ev.Log().Category == "trackerbench" && ev.Log().Message == "flush" {
			return nil
		}
		fn(&ev)
	}
}

func run(path string, n int, out io.Writer) error {
	started := map[trace.GoID]trace.Time{}
	runnable := map[trace.GoID]trace.Time{}
	udp := map[trace.GoID]bool{}
	created := map[trace.GoID]string{} // where a goroutine started, for one that exits
	stopped := map[trace.GoID]string{} // where a goroutine last stopped running
	var all []stretch
	var waits []trace.Time
	err := loadEvents(path, func(ev *trace.Event) {
		if ev.Kind() != trace.EventStateTransition {
			return
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			return
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		if from == trace.GoNotExist {
			created[g] = where(st.Stack)
		}
		switch to {
		case trace.GoRunnable:
			runnable[g] = ev.Time()
		case trace.GoRunning:
			started[g] = ev.Time()
			if t0, ok := runnable[g]; ok && udp[g] {
				waits = append(waits, ev.Time()-t0)
			}
			delete(runnable, g)
		}
		if from == trace.GoRunning {
			if t0, ok := started[g]; ok {
				w := where(st.Stack)
				if w == "" {
					w = where(ev.Stack())
				}
				if w == "" && created[g] != "" {
					w = "(exits) started at " + created[g]
				}
				if strings.Contains(w, *loop) {
					udp[g] = true
				}
				all = append(all, stretch{g, ev.Time() - t0, w, stopped[g]})
			}
			delete(started, g)
			stopped[g] = where(st.Stack)
		}
		if to == trace.GoNotExist {
			delete(created, g)
			delete(stopped, g)
		}
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b stretch) int { return int(b.dur - a.dur) })
	var total trace.Time
	over1, over5 := 0, 0
	fmt.Fprintln(out, "longest stretches of goroutines other than the UDP loop:")
	for _, s := range all {
		if udp[s.g] {
			continue
		}
		if n > 0 {
			fmt.Fprintf(out, "  %7.2f ms  g%-6d %s\n", float64(s.dur)/1e6, s.g, s.where)
			if *from && s.from != "" {
				fmt.Fprintf(out, "             from %s\n", s.from)
			}
			n--
		}
		total += s.dur
		if s.dur > 1e6 {
			over1++
		}
		if s.dur > 5e6 {
			over5++
		}
	}
	fmt.Fprintf(out, "other goroutines ran %.0f ms: %d stretches over 1 ms, %d over 5 ms\n", float64(total)/1e6, over1, over5)
	if len(waits) > 0 {
		slices.Sort(waits)
		q := func(p float64) float64 { return float64(waits[int(p*float64(len(waits)-1))]) / 1e6 }
		fmt.Fprintf(out, "UDP loop runnable -> running: %d waits, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
			len(waits), q(0.5), q(0.99), q(0.999), q(1))
	}
	return nil
}
