package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/node"
	"github.com/seedbank/seedbank/tools/loadgen"
)

// serve starts a seedbank node on a fresh data dir, registers the fixture's
// users and torrents, writes the fixture file, prints READY and then obeys
// commands on stdin, one a line:
//
//	profile <path>   start a CPU profile into path
//	stopprofile      stop it
//	trace <path>     start a Go execution trace (runtime/trace) into path
//	stoptrace        stop it
//	flush            flush and commit the tracker's accumulated stats
//	quit             (or end of input) stop the node and remove its data
var procStart = time.Now()

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	seed := fs.Uint64("seed", 1, "fixture seed")
	users := fs.Int("users", 1000, "users (passkeys)")
	torrents := fs.Int("torrents", 100_000, "torrents")
	peers := fs.Int("peers", 3, "peers per torrent")
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP tracker address")
	udpAddr := fs.String("udp", "127.0.0.1:0", "UDP tracker address")
	fixturePath := fs.String("fixture", "", "write the fixture here (required)")
	writers := fs.Int("writers", 64, "concurrent raft writes while registering the fixture")
	statsFlush := fs.Duration("stats-flush", 0, "stats flush interval; 0: the node's default")
	fs.Parse(args)
	if *fixturePath == "" {
		return fmt.Errorf("serve: -fixture is required")
	}

	dir, err := os.MkdirTemp("", "trackerbench-seedbank-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := node.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.ClusterAddr = "127.0.0.1:0"
	cfg.TrackerAddr = *httpAddr
	cfg.UDPAddr = *udpAddr
	cfg.LogLevel = "warn"
	if *statsFlush > 0 {
		cfg.StatsFlush = *statsFlush
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	n, err := node.Start(ctx, cfg, log)
	cancel()
	if err != nil {
		return fmt.Errorf("serve: start node: %w", err)
	}
	defer n.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := n.Store().WaitForLeader(ctx); err != nil {
		return err
	}

	f := loadgen.NewFixture(*seed, *users, *torrents, *peers)
	start := time.Now()
	created := time.Now().UnixMilli()
	err = parallel(*writers, len(f.Passkeys), func(i int) error {
		return n.Store().CreateUser(ctx, model.User{
			ID: uint64(i + 1), Username: fmt.Sprintf("bench%d", i+1), Email: fmt.Sprintf("bench%d@example.org", i+1),
			PasswordHash: "x", Passkey: f.Passkeys[i], Role: model.RoleMember, Enabled: true, Created: created,
		})
	})
	if err != nil {
		return fmt.Errorf("serve: create users: %w", err)
	}
	var done atomic.Int64
	err = parallel(*writers, len(f.Hashes), func(i int) error {
		h := f.Hashes[i]
		err := n.Store().PutTorrent(ctx, model.Torrent{
			ID: h, InfoHashV1: hex.EncodeToString(h[:]), Name: fmt.Sprintf("bench dataset %d", i),
			Metainfo: []byte("d4:infod6:lengthi1073741824e4:name8:data.bin12:piece lengthi4194304eee"),
			Files:    []model.File{{Path: "data.bin", Length: loadgen.TorrentSize}}, TotalSize: loadgen.TorrentSize,
			Uploader: uint64(i%len(f.Passkeys) + 1), Created: created,
		})
		if d := done.Add(1); d%20000 == 0 {
			fmt.Fprintf(os.Stderr, "serve: %d torrents registered (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("serve: register torrents: %w", err)
	}
	fmt.Fprintf(os.Stderr, "serve: fixture of %d users, %d torrents registered in %v\n", *users, *torrents, time.Since(start).Round(time.Millisecond))
	// Snapshot now, so raft's snapshot of the fixture's log does not land
	// in a measured phase.
	if err := n.Store().Snapshot(); err != nil {
		fmt.Fprintln(os.Stderr, "serve: snapshot:", err)
	}
	file, err := os.Create(*fixturePath)
	if err != nil {
		return err
	}
	if _, err := f.WriteTo(file); err != nil {
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "serve: process started at %s (gctrace @ times count from it)\n", procStart.Format("15:04:05.000"))
	fmt.Println("READY")

	var prof, tr *os.File
	// writeAllocs writes the allocation profile so far (cumulative since
	// the start: diff two with go tool pprof -base).
	writeAllocs := func(path string) {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve: allocs profile:", err)
		}
	}
	var profPath string
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		switch cmd {
		case "profile":
			if prof != nil {
				break
			}
			profPath = arg
			writeAllocs(arg + ".allocs-start")
			if prof, err = os.Create(arg); err == nil {
				err = pprof.StartCPUProfile(prof)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "serve: profile:", err)
				prof = nil
			}
		case "stopprofile":
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
				prof = nil
				writeAllocs(profPath + ".allocs-end")
			}
		case "trace":
			if tr != nil {
				break
			}
			if tr, err = os.Create(arg); err == nil {
				err = trace.Start(tr)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "serve: trace:", err)
				tr = nil
			}
		case "stoptrace":
			if tr != nil {
				trace.Stop()
				tr.Close()
				tr = nil
			}
		case "flush":
			// Charge the stats accounting of the announces so far to the
			// phase that made them: queue and commit them now.
			fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Minute)
			fmt.Fprintf(os.Stderr, "serve: flush at %s\n", time.Now().Format("15:04:05.000"))
			// Marks the end of the load in a running execution trace
			// (tools/stretches stops reading there).
			trace.Log(fctx, "trackerbench", "flush")
			if err := n.Tracker().Flush(fctx); err != nil {
				fmt.Fprintln(os.Stderr, "serve: flush:", err)
			}
			fcancel()
		case "quit":
			return nil
		}
		fmt.Println("OK " + cmd)
	}
	return nil
}

// parallel runs fn(0..n-1) on k goroutines and returns the first error.
func parallel(k, n int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
