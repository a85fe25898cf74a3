package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seedbank/seedbank/tools/loadgen"
)

// tracker is one tracker process under test.
type tracker struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser // seedbank's command channel
	stdout  *bufio.Scanner
	swarms  *loadgen.Swarms
	prefRSS int64
	paused  bool
	resumed bool // continued since the last phase
}

func (t *tracker) pid() int { return t.cmd.Process.Pid }

// phase is one measured Run.
type phase struct {
	res  *loadgen.Result
	cpu  time.Duration // tracker utime+stime
	sys  time.Duration // tracker stime (part of cpu)
	gen  time.Duration // generator utime+stime
	load string
}

func (p phase) cpuPerAnnounce() time.Duration {
	if p.res.OK == 0 {
		return 0
	}
	return p.cpu / time.Duration(p.res.OK)
}

// sysPerAnnounce is the kernel's part of cpuPerAnnounce.
func (p phase) sysPerAnnounce() time.Duration {
	if p.res.OK == 0 {
		return 0
	}
	return p.sys / time.Duration(p.res.OK)
}

// answered reports whether the phase was measured and got answers (a
// tracker not among the targets has no phases).
func (p phase) answered() bool { return p.res != nil && p.res.OK > 0 }

func (p phase) genBusy() float64 { return p.gen.Seconds() / p.res.Elapsed.Seconds() }

type runFlags struct {
	seed                        uint64
	users, torrents, peers      int
	dur                         time.Duration
	conc, halfConc, prefillConc int
	modes, targets              string
	opentracker                 string
	trackerCPU, genCPU          string
	profileDir, out             string
	traceDir                    string
	settle                      time.Duration
	statsFlush                  time.Duration
	trackerProcs                int
	rounds                      int
}

func run(args []string) error {
	var rf runFlags
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.Uint64Var(&rf.seed, "seed", 1, "fixture and load seed")
	fs.IntVar(&rf.users, "users", 1000, "users (passkeys); peers are spread across them")
	fs.IntVar(&rf.torrents, "torrents", 100_000, "torrents")
	fs.IntVar(&rf.peers, "peers", 3, "peers per torrent, prefilled")
	fs.DurationVar(&rf.dur, "dur", 15*time.Second, "length of each measured phase (max 30s)")
	fs.IntVar(&rf.conc, "conc", 32, "concurrent requests in the peak (closed-loop) phase")
	fs.IntVar(&rf.halfConc, "half-conc", 64, "workers in the half-peak (paced) phase")
	fs.IntVar(&rf.prefillConc, "prefill-conc", 32, "concurrent requests while prefilling")
	fs.StringVar(&rf.modes, "modes", "http-close,http-keepalive,udp", "transports to measure")
	fs.StringVar(&rf.targets, "targets", "seedbank,opentracker", "trackers to measure")
	fs.StringVar(&rf.opentracker, "opentracker", "/usr/bin/opentracker", "opentracker binary")
	fs.StringVar(&rf.trackerCPU, "tracker-cpu", "0", "CPU the trackers are pinned to (taskset -c)")
	fs.StringVar(&rf.genCPU, "gen-cpu", "1", "CPU the generator is pinned to; empty: no pinning")
	fs.StringVar(&rf.traceDir, "trace", "", "directory for Go execution traces of seedbank's half-peak phases (trace-<mode>.out)")
	fs.StringVar(&rf.profileDir, "profile", "", "directory for seedbank CPU profiles of each peak phase (cpu-<mode>.prof)")
	fs.StringVar(&rf.out, "out", "", "also write the markdown report to this file")
	fs.DurationVar(&rf.settle, "settle", 0, "idle time after the prefill, charged to it")
	fs.DurationVar(&rf.statsFlush, "stats-flush", 0, "seedbank's stats flush interval (node -stats-flush); 0: the node's default")
	fs.IntVar(&rf.rounds, "rounds", 1, "measure the modes this many times, alternating which tracker goes first; the table shows medians")
	fs.IntVar(&rf.trackerProcs, "tracker-procs", 0, "GOMAXPROCS of the seedbank process; 0: Go's default (the CPUs it is pinned to)")
	fs.Parse(args)
	if rf.dur > 30*time.Second || rf.dur <= 0 {
		return fmt.Errorf("-dur must be in (0, 30s]")
	}
	if rf.rounds < 1 || rf.rounds > 9 {
		return fmt.Errorf("-rounds must be in [1, 9]")
	}
	if err := pinSelf(rf.genCPU); err != nil {
		return err
	}
	if rf.traceDir != "" {
		if err := os.MkdirAll(rf.traceDir, 0o755); err != nil {
			return fmt.Errorf("trace directory: %w", err)
		}
	}
	if rf.profileDir != "" {
		if err := os.MkdirAll(rf.profileDir, 0o755); err != nil {
			return fmt.Errorf("profile directory: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	tmp, err := os.MkdirTemp("", "trackerbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	loadStart := loadAvg()
	started := time.Now().UTC()

	var trackers []*tracker
	defer func() {
		for _, t := range trackers {
			t.stop()
		}
	}()
	var fixture *loadgen.Fixture
	for _, name := range strings.Split(rf.targets, ",") {
		switch name {
		case "seedbank":
			t, f, err := startSeedbank(ctx, &rf, tmp, name, "")
			if err != nil {
				return err
			}
			trackers = append(trackers, t)
			fixture = f
		case "opentracker":
			if fixture == nil {
				fixture = loadgen.NewFixture(rf.seed, rf.users, rf.torrents, rf.peers)
			}
			t, err := startOpentracker(ctx, &rf, tmp, fixture)
			if err != nil {
				return err
			}
			trackers = append(trackers, t)
		default:
			bin, ok := strings.CutPrefix(name, "seedbank@")
			if !ok {
				return fmt.Errorf("unknown target %q (want seedbank, opentracker or seedbank@PATH)", name)
			}
			t, f, err := startSeedbank(ctx, &rf, tmp, name, bin)
			if err != nil {
				return err
			}
			trackers = append(trackers, t)
			if fixture == nil {
				fixture = f
			}
		}
	}
	failed := false
	note := func(t *tracker, what string, p phase) {
		r := p.res
		fmt.Fprintf(os.Stderr, "%-11s %-15s %-8s %8.0f ann/s  cpu %6.1f µs/ann (sys %5.1f)  p50 %6.2f ms  p99 %6.2f ms  ok %d failed %d behind %d reconn %d  avg peers %.2f  gen %3.0f%%  load %s\n",
			t.name, r.Mode, what, r.PerSec(), us(p.cpuPerAnnounce()), us(p.sysPerAnnounce()), ms(r.Latency(0.5)), ms(r.Latency(0.99)),
			r.OK, r.Failed, r.Behind, r.Reconnect, float64(r.PeersSum)/max(1, float64(r.OK)), 100*p.genBusy(), p.load)
		if r.Failed > 0 {
			failed = true
			fmt.Fprintf(os.Stderr, "    failures: %s\n", r.ErrorSummary())
		}
	}
	// Both trackers share a core: the one not measured is stopped
	// (SIGSTOP), so its background work (seedbank's stats flush, raft)
	// cannot steal the core from the other; it resumes for its own phases,
	// which are then charged with it.
	only := func(t *tracker) {
		for _, o := range trackers {
			if o != t {
				o.pause()
			}
		}
		t.resume()
	}
	prefill := map[string]phase{}
	for _, t := range trackers {
		only(t)
		p, err := measure(ctx, t, loadgen.Run{Mode: loadgen.UDP, Workers: rf.prefillConc, Duration: 5 * time.Minute, Prefill: true, Seed: rf.seed}, rf.settle)
		if err != nil {
			return err
		}
		t.prefRSS, _ = rssBytes(t.pid())
		note(t, "prefill", p)
		prefill[t.name] = p
	}
	phases := map[key]phase{}
	modes := strings.Split(rf.modes, ",")
	for round := range rf.rounds {
		// Alternate the order, so neither tracker always gets the
		// machine right after the other one ran.
		order := slices.Clone(trackers)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		first := round == 0 // profiles and traces: the first round only
		for _, m := range modes {
			mode := loadgen.Mode(m)
			for _, t := range order {
				only(t)
				profiling := first && rf.profileDir != "" && t.name == "seedbank"
				if profiling {
					if err := t.command("profile " + filepath.Join(rf.profileDir, "cpu-"+m+".prof")); err != nil {
						return err
					}
				}
				p, err := measure(ctx, t, loadgen.Run{Mode: mode, Workers: rf.conc, Duration: rf.dur, Seed: rf.seed + 1}, 0)
				if err != nil {
					return err
				}
				if profiling {
					if err := t.command("stopprofile"); err != nil {
						return err
					}
				}
				note(t, "peak", p)
				phases[key{t.name, m, "peak", round}] = p
			}
			for _, t := range order {
				only(t)
				rate := phases[key{t.name, m, "peak", round}].res.PerSec() / 2
				tracing := first && rf.traceDir != "" && t.name == "seedbank"
				if tracing {
					if err := t.command("trace " + filepath.Join(rf.traceDir, "trace-"+m+".out")); err != nil {
						return err
					}
				}
				p, err := measure(ctx, t, loadgen.Run{Mode: mode, Workers: rf.halfConc, Duration: rf.dur, Rate: rate, Seed: rf.seed + 2}, 0)
				if err != nil {
					return err
				}
				if tracing {
					if err := t.command("stoptrace"); err != nil {
						return err
					}
				}
				printStalls(t.name, m, p.res.Slow)
				note(t, "half", p)
				phases[key{t.name, m, "half", round}] = p
			}
		}
	}
	// The report.
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Run %s on %s: %d CPUs (%s), trackers on CPU %s, generator on CPU %s; load average %s at start, %s at end.\n",
		started.Format("2006-01-02 15:04 UTC"), host, onlineCPUs(), cpuModel(), rf.trackerCPU, rf.genCPU, loadStart, loadAvg())
	fmt.Fprintf(&b, "Fixture: %d torrents x %d peers (%d peers), %d users; peak phases %d concurrent requests for %v, half-peak phases paced at half the peak rate for %v.\n\n",
		rf.torrents, rf.peers, rf.torrents*rf.peers, rf.users, rf.conc, rf.dur, rf.dur)
	names := make([]string, len(trackers))
	for i, t := range trackers {
		names[i] = t.name
	}
	writeTable(&b, names, modes, rf.rounds, phases)
	b.WriteString("\n")
	for _, t := range trackers {
		p := prefill[t.name]
		fmt.Fprintf(&b, "- %s prefill (UDP, event=started for every peer, CPU including %v idle after it and the stats flush): %.0f ann/s, %.1f µs CPU/ann, %d failed; RSS after prefill %.0f MiB.\n",
			t.name, rf.settle, p.res.PerSec(), us(p.cpuPerAnnounce()), p.res.Failed, float64(t.prefRSS)/(1<<20))
	}
	for r := range rf.rounds {
		for _, m := range modes {
			for _, t := range trackers {
				for _, what := range []string{"peak", "half"} {
					p := phases[key{t.name, m, what, r}]
					if p.res.Failed > 0 || p.res.Behind > 0 {
						fmt.Fprintf(&b, "- %s %s %s: %d failed (%s), %d paced announces dropped.\n", t.name, m, what, p.res.Failed, p.res.ErrorSummary(), p.res.Behind)
					}
					if p.res.Reconnect > 0 && what == "peak" {
						fmt.Fprintf(&b, "- %s %s: the server closed %d kept-alive connections (client reconnected).\n", t.name, m, p.res.Reconnect)
					}
				}
			}
		}
	}
	fmt.Print(b.String())
	if rf.out != "" {
		if err := os.WriteFile(rf.out, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if failed {
		return errors.New("some announces failed validation (see above)")
	}
	return nil
}

// key names one measured phase.
type key struct {
	tracker, mode, what string
	round               int
}

// writeTable writes the results table of trackers names over modes: medians
// over rounds, the CPU ratio seedbank / opentracker when both ran, and the
// per-round ratios (also of seedbank to each seedbank@PATH target).
func writeTable(b *strings.Builder, names, modes []string, rounds int, phases map[key]phase) {
	// median of f over the rounds of tracker t's phase (mode, what).
	median := func(t, m, what string, f func(phase) float64) float64 {
		var v []float64
		for r := range rounds {
			if p := phases[key{t, m, what, r}]; p.answered() {
				v = append(v, f(p))
			}
		}
		return medianOf(v)
	}
	cpuUS := func(p phase) float64 { return us(p.cpuPerAnnounce()) }
	b.WriteString("| transport | tracker | peak ann/s | CPU µs/ann at peak | CPU ratio seedbank/opentracker | p50 / p99 at half peak (ms) | CPU µs/ann at half peak | failed | generator CPU at peak |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var ratios []string
	for _, m := range modes {
		var rs []float64
		ot := "opentracker"
		for r := range rounds {
			sb, o := phases[key{"seedbank", m, "peak", r}], phases[key{ot, m, "peak", r}]
			if sb.answered() && o.answered() {
				rs = append(rs, float64(sb.cpuPerAnnounce())/float64(o.cpuPerAnnounce()))
			}
		}
		for _, t := range names {
			ratio := ""
			if t == "seedbank" && len(rs) > 0 {
				ratio = fmt.Sprintf("**%.2f**", medianOf(rs))
			}
			var failed int64
			for r := range rounds {
				for _, what := range []string{"peak", "half"} {
					if p := phases[key{t, m, what, r}]; p.res != nil {
						failed += p.res.Failed
					}
				}
			}
			fmt.Fprintf(b, "| %s | %s | %.0f | %.1f | %s | %.2f / %.2f | %.1f | %d | %.0f%% |\n",
				m, t,
				median(t, m, "peak", func(p phase) float64 { return p.res.PerSec() }),
				median(t, m, "peak", cpuUS), ratio,
				median(t, m, "half", func(p phase) float64 { return ms(p.res.Latency(0.5)) }),
				median(t, m, "half", func(p phase) float64 { return ms(p.res.Latency(0.99)) }),
				median(t, m, "half", cpuUS),
				failed,
				median(t, m, "peak", func(p phase) float64 { return 100 * p.genBusy() }))
		}
		if rounds > 1 && len(rs) > 0 {
			var each []string
			for _, r := range rs {
				each = append(each, fmt.Sprintf("%.2f", r))
			}
			ratios = append(ratios, fmt.Sprintf("- %s: CPU ratio at peak in each round %s (median in the table).", m, strings.Join(each, ", ")))
		}
	}
	for _, t := range names {
		if !strings.HasPrefix(t, "seedbank@") {
			continue
		}
		for _, m := range modes {
			var each []string
			var rs []float64
			for r := range rounds {
				a, o := phases[key{"seedbank", m, "peak", r}], phases[key{t, m, "peak", r}]
				if a.answered() && o.answered() {
					rs = append(rs, float64(a.cpuPerAnnounce())/float64(o.cpuPerAnnounce()))
					each = append(each, fmt.Sprintf("%.3f", rs[len(rs)-1]))
				}
			}
			if len(rs) > 0 {
				ratios = append(ratios, fmt.Sprintf("- %s: CPU at peak, seedbank / %s: median %.3f (rounds %s).", m, t, medianOf(rs), strings.Join(each, ", ")))
			}
		}
	}
	if rounds > 1 || len(ratios) > 0 {
		fmt.Fprintf(b, "\nMedians over %d rounds; each round measures every mode on every target, the order alternating.\n", rounds)
		for _, l := range ratios {
			b.WriteString(l + "\n")
		}
	}
}

// medianOf returns the median of v (the mean of the middle two for an even
// count), or 0 for none.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measure runs r against t and samples the tracker's and the generator's
// CPU time around it, an idle settle period after it, and (for seedbank) a
// stats flush, so the work the phase left behind is charged to it.
func measure(ctx context.Context, t *tracker, r loadgen.Run, settle time.Duration) (phase, error) {
	if t.resumed {
		// Just continued after SIGSTOP: let overdue timers (Go runtime,
		// raft, stats loops) run before the phase, not inside it.
		time.Sleep(resumeWarmup)
		t.resumed = false
	}
	load := loadAvg()
	u0, s0, err := cpuTimes(t.pid())
	if err != nil {
		return phase{}, err
	}
	g0, _ := cpuTime(os.Getpid())
	res, err := t.swarms.Do(ctx, r)
	if err != nil {
		return phase{}, fmt.Errorf("%s %s: %w", t.name, r.Mode, err)
	}
	time.Sleep(settle)
	if t.stdin != nil {
		// seedbank flushes stats every 10s; flush now so the accounting of
		// this phase's announces is charged to it, not to the next phase.
		if err := t.command("flush"); err != nil {
			return phase{}, err
		}
	}
	u1, s1, err := cpuTimes(t.pid())
	if err != nil {
		return phase{}, fmt.Errorf("%s exited during the run: %w", t.name, err)
	}
	g1, _ := cpuTime(os.Getpid())
	return phase{res: res, cpu: u1 + s1 - u0 - s0, sys: s1 - s0, gen: g1 - g0, load: load}, nil
}

// pinSelf re-executes this process under taskset -c cpu, once.
func pinSelf(cpu string) error {
	if cpu == "" || os.Getenv("TRACKERBENCH_PINNED") != "" || allowedCPUs() == cpu {
		return nil
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("taskset not found (install util-linux, or pass -gen-cpu ''): %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(), "TRACKERBENCH_PINNED=1")
	return syscall.Exec(taskset, append([]string{"taskset", "-c", cpu, self}, os.Args[1:]...), env)
}

// pinned prefixes argv with taskset -c cpu.
func pinned(cpu string, argv ...string) *exec.Cmd {
	if cpu == "" {
		return exec.Command(argv[0], argv[1:]...)
	}
	return exec.Command("taskset", append([]string{"-c", cpu}, argv...)...)
}

// startSeedbank starts a seedbank node as target name, served by this
// binary or, when bin is set, by the trackerbench at bin (built from
// another commit: an A/B comparison within one run).
func startSeedbank(ctx context.Context, rf *runFlags, tmp, name, bin string) (*tracker, *loadgen.Fixture, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	self := bin
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, nil, err
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	fixturePath := filepath.Join(tmp, "fixture-"+strconv.Itoa(port)+".txt")
	cmd := pinned(rf.trackerCPU, self, "serve", "-seed", strconv.FormatUint(rf.seed, 10),
		"-users", strconv.Itoa(rf.users), "-torrents", strconv.Itoa(rf.torrents), "-peers", strconv.Itoa(rf.peers),
		"-http", addr, "-udp", addr, "-fixture", fixturePath, "-stats-flush", rf.statsFlush.String())
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "TRACKERBENCH_PINNED=")
	if rf.trackerProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(rf.trackerProcs))
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "starting %s: %s\n", name, strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	t := &tracker{name: name, cmd: cmd, stdin: stdin, stdout: bufio.NewScanner(stdout)}
	ready := make(chan error, 1)
	go func() {
		if !t.stdout.Scan() || t.stdout.Text() != "READY" {
			ready <- fmt.Errorf("%s serve did not print READY (%q)", name, t.stdout.Text())
			return
		}
		ready <- nil
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		t.stop()
		return nil, nil, err
	}
	f, err := loadgen.ReadFixture(fixturePath)
	if err != nil {
		t.stop()
		return nil, nil, err
	}
	t.swarms = loadgen.NewSwarms(f, loadgen.Target{Name: "seedbank", HTTPAddr: addr, UDPAddr: addr, Passkeys: true})
	return t, f, nil
}

// command sends one line to seedbank serve and waits for its "OK".
func (t *tracker) command(line string) error {
	if _, err := io.WriteString(t.stdin, line+"\n"); err != nil {
		return err
	}
	if !t.stdout.Scan() || !strings.HasPrefix(t.stdout.Text(), "OK ") {
		return fmt.Errorf("seedbank serve: no answer to %q", line)
	}
	return nil
}

func startOpentracker(ctx context.Context, rf *runFlags, tmp string, f *loadgen.Fixture) (*tracker, error) {
	dir := filepath.Join(tmp, "opentracker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.Chmod(tmp, 0o755) // opentracker runs as nobody
	whitelist := filepath.Join(dir, "whitelist.txt")
	if err := f.WriteWhitelist(whitelist); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := []string{rf.opentracker, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-P", strconv.Itoa(port), "-d", dir, "-w", whitelist}
	if os.Geteuid() == 0 {
		// opentracker refuses to run as root.
		argv = append([]string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}, argv...)
	}
	cmd := pinned(rf.trackerCPU, argv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "starting opentracker: %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &tracker{name: "opentracker", cmd: cmd,
		swarms: loadgen.NewSwarms(f, loadgen.Target{Name: "opentracker", HTTPAddr: addr, UDPAddr: addr, SelfInPeers: true})}
	// Ready once it answers an announce of a whitelisted hash (the
	// whitelist loads in the background).
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := loadgen.Probe(addr, &f.Hashes[len(f.Hashes)-1])
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.stop()
			return nil, fmt.Errorf("opentracker not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return t, nil
}

// pause stops the tracker process (SIGSTOP); resume continues it.
func (t *tracker) pause() {
	if t.cmd != nil && t.cmd.Process != nil && !t.paused {
		t.cmd.Process.Signal(syscall.SIGSTOP)
		t.paused = true
	}
}

func (t *tracker) resume() {
	if t.cmd != nil && t.cmd.Process != nil && t.paused {
		t.cmd.Process.Signal(syscall.SIGCONT)
		t.paused, t.resumed = false, true
	}
}

// resumeWarmup is the pause between continuing a stopped tracker and
// measuring it.
const resumeWarmup = 2 * time.Second

// stop ends the tracker process this run started.
func (t *tracker) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	t.resume()
	if t.stdin != nil {
		io.WriteString(t.stdin, "quit\n")
		t.stdin.Close()
	} else {
		t.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.cmd.Process.Kill()
		<-done
	}
	t.cmd = nil
}

// printStalls lists the bursts of slow answers (over loadgen.SlowThreshold)
// of a half-peak phase by wall-clock time: answers released within 50 ms of
// each other form one burst.
func printStalls(tracker, mode string, slow []loadgen.Slow) {
	if len(slow) == 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "  %s %s half peak: %d answers slower than %v (kept at most 4096 per worker); bursts:\n", tracker, mode, len(slow), loadgen.SlowThreshold)
	for i := 0; i < len(slow); {
		j, worst := i, slow[i].Lat
		for j+1 < len(slow) && slow[j+1].At.Sub(slow[j].At) < 50*time.Millisecond {
			j++
			worst = max(worst, slow[j].Lat)
		}
		fmt.Fprintf(os.Stderr, "    %s +%v: %d slow, worst %v\n", slow[i].At.Format("15:04:05.000"),
			slow[j].At.Sub(slow[i].At).Round(time.Millisecond), j-i+1, worst.Round(time.Millisecond))
		i = j + 1
	}
}
