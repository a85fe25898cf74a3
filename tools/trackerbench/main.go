// Command trackerbench measures seedbank's tracker beside opentracker with
// the same load generator (tools/loadgen) in the same run: the trackers
// pinned to one core, the generator to another, 100,000 torrents x 3 peers
// by default, HTTP with a new connection per announce, HTTP keep-alive and
// UDP. It reports valid announces per second, the tracker's CPU time per
// announce (utime+stime from /proc/<pid>/stat over each phase divided by the
// answered announces), and latency at half of the peak rate.
//
// Usage:
//
//	trackerbench [run] [flags]   the comparison (see -h)
//	trackerbench mem [flags]     tracker memory per peer with 1,000,000 peers
//	trackerbench serve [flags]   internal: the seedbank node run re-executes
//
// Load goes to 127.0.0.1 only; every phase is bounded in time.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "serve" || args[0] == "mem") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = run(args)
	case "serve":
		err = serve(args)
	case "mem":
		err = mem(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trackerbench:", err)
		os.Exit(1)
	}
}
