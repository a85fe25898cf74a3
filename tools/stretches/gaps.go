package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

// span is a stretch of time of one goroutine, running or in a system call.
type span struct {
	start, end trace.Time
	what       string // goroutine and where
}

func (s span) overlap(from, to trace.Time) trace.Time {
	return max(0, min(s.end, to)-max(s.start, from))
}

// gap is a time the UDP loop did not run.
type gap struct {
	g          trace.GoID
	start, end trace.Time
	after      string // the state it had left running for
}

// gaps lists the n longest times the answer loop's goroutines (a stack
// with -loop, udpWorker by default) did not run, up to trackerbench's flush, each with what the
// other goroutines ran and the system calls they were in meanwhile, and
// how long the Ps were idle. With one P, a gap filled by other goroutines
// is announces waiting; one filled by system calls is a P held in a
// system call (sysmon hands it off only after a while).
func gaps(path string, n int, out io.Writer) error {
	var (
		t0              trace.Time
		udp             = map[trace.GoID]bool{}
		lastStop        = map[trace.GoID]trace.Time{}
		lastState       = map[trace.GoID]string{}
		runStart        = map[trace.GoID]trace.Time{}
		sysStart        = map[trace.GoID]trace.Time{}
		sysWhere        = map[trace.GoID]string{}
		procIdle        = map[trace.ProcID]trace.Time{}
		all             []gap
		ran, sys, idles []span
	)
	err := loadEvents(path, func(ev *trace.Event) {
		if t0 == 0 {
			t0 = ev.Time()
		}
		if ev.Kind() != trace.EventStateTransition {
			return
		}
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceProc:
			p := st.Resource.Proc()
			from, to := st.Proc()
			if to == trace.ProcIdle {
				procIdle[p] = ev.Time()
			} else if from == trace.ProcIdle {
				if s, ok := procIdle[p]; ok {
					idles = append(idles, span{s, ev.Time(), "idle"})
				}
			}
			return
		case trace.ResourceGoroutine:
		default:
			return
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		w := where(st.Stack)
		if strings.Contains(w, *loop) {
			udp[g] = true
		}
		name := func() string { return fmt.Sprintf("g%d %s", g, w) }
		if !udp[g] {
			if to == trace.GoSyscall {
				sysStart[g], sysWhere[g] = ev.Time(), name()
			}
			if from == trace.GoSyscall {
				if s, ok := sysStart[g]; ok {
					sys = append(sys, span{s, ev.Time(), sysWhere[g]})
				}
				delete(sysStart, g)
			}
		}
		if to == trace.GoRunning {
			if udp[g] {
				if t, ok := lastStop[g]; ok {
					all = append(all, gap{g, t, ev.Time(), lastState[g]})
				}
			} else {
				runStart[g] = ev.Time()
			}
		}
		if from == trace.GoRunning {
			if udp[g] {
				lastStop[g], lastState[g] = ev.Time(), fmt.Sprint(to, " ", st.Reason)
			} else if s, ok := runStart[g]; ok {
				ran = append(ran, span{s, ev.Time(), name()})
			}
			delete(runStart, g)
		}
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b gap) int { return int((b.end - b.start) - (a.end - a.start)) })
	ms := func(t trace.Time) float64 { return float64(t) / 1e6 }
	fmt.Fprintln(out, "longest gaps of the UDP loop, and what ran in them (quiet ones, the Ps idle most of the gap, left out):")
	for _, gp := range all {
		if n == 0 {
			break
		}
		by := map[string]trace.Time{}
		var running, insys, idle trace.Time
		for _, s := range ran {
			if d := s.overlap(gp.start, gp.end); d > 0 {
				running += d
				by[s.what] += d
			}
		}
		var longest span
		for _, s := range sys {
			if d := s.overlap(gp.start, gp.end); d > 0 {
				insys += d
				if d > longest.overlap(gp.start, gp.end) {
					longest = s
				}
			}
		}
		for _, s := range idles {
			idle += s.overlap(gp.start, gp.end)
		}
		if 2*idle > gp.end-gp.start {
			continue // nothing to answer: the load had not started, or a lull
		}
		n--
		fmt.Fprintf(out, "  %7.2f ms at +%.3f s, after %s: others ran %.2f ms, in system calls %.2f ms, Ps idle %.2f ms\n",
			ms(gp.end-gp.start), float64(gp.start-t0)/1e9, gp.after, ms(running), ms(insys), ms(idle))
		top := make([]string, 0, len(by))
		for k := range by {
			top = append(top, k)
		}
		slices.SortFunc(top, func(a, b string) int { return int(by[b] - by[a]) })
		for _, k := range top[:min(4, len(top))] {
			fmt.Fprintf(out, "      ran %6.2f ms  %s\n", ms(by[k]), k)
		}
		if d := longest.overlap(gp.start, gp.end); d > 0 {
			fmt.Fprintf(out, "      longest system call %.2f ms  %s\n", ms(d), longest.what)
		}
	}
	return nil
}
