package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/seedbank/seedbank/announce"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/tools/loadgen"
)

// memRegistry is an in-memory announce.Registry over a fixture.
type memRegistry struct {
	users    map[string]model.UserRef
	torrents map[model.InfoHash]model.TorrentRef
}

func (r *memRegistry) UserByPasskey(pk string) (model.UserRef, bool) {
	u, ok := r.users[pk]
	return u, ok
}

func (r *memRegistry) TorrentByHash(h model.InfoHash) (model.TorrentRef, bool) {
	t, ok := r.torrents[h]
	return t, ok
}

func (r *memRegistry) ClientAllowed([]byte) bool { return true }

type nopCommitter struct{}

func (nopCommitter) CommitStats(context.Context, model.StatsBatch) error { return nil }

// discardWriter is a ResponseWriter that keeps the last body.
type discardWriter struct {
	h    http.Header
	body []byte
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Write(b []byte) (int, error) {
	w.body = append(w.body[:0], b...)
	return len(b), nil
}

// mem fills a tracker (announce.New with an in-memory registry) with peers
// through its HTTP handler, every peer with its own address and stats
// counters, and reports the growth of live heap and RSS per peer.
func mem(args []string) error {
	fs := flag.NewFlagSet("mem", flag.ExitOnError)
	peers := fs.Int("peers", 1_000_000, "peers to add")
	per := fs.Int("per", 10, "peers per torrent")
	users := fs.Int("users", 1000, "users")
	memProf := fs.String("memprofile", "", "write a heap profile after the fill here")
	prof := fs.String("cpuprofile", "", "with -flush: write a CPU profile of the flush here")
	flush := fs.Bool("flush", false, "then time the first stats flush of all the peers' counters (quadratic in announce today: use with fewer peers)")
	fs.Parse(args)
	torrents := (*peers + *per - 1) / *per
	f := loadgen.NewFixture(1, *users, torrents, *per)
	reg := &memRegistry{users: map[string]model.UserRef{}, torrents: map[model.InfoHash]model.TorrentRef{}}
	for i, pk := range f.Passkeys {
		reg.users[pk] = model.UserRef{ID: uint64(i + 1), Enabled: true}
	}
	for _, h := range f.Hashes {
		reg.torrents[h] = model.TorrentRef{ID: h, TotalSize: loadgen.TorrentSize}
	}
	dir, err := os.MkdirTemp("", "trackerbench-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tr, err := announce.New(announce.Config{NodeID: "mem", QueuePath: filepath.Join(dir, "queue.db")}, reg, nopCommitter{}, nil)
	if err != nil {
		return err
	}
	// No Close: it would flush every counter into the stats queue, which is
	// what -flush times.
	h := tr.Handler()
	w := &discardWriter{h: http.Header{}}
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}

	heap0, rss0 := settle()
	start := time.Now()
	var q []byte
	for g := range *peers {
		hash, pk, id, port := f.Peer(g)
		q = append(q[:0], "info_hash="...)
		q = append(q, url.QueryEscape(string(hash[:]))...)
		q = append(q, "&peer_id="...)
		q = append(q, url.QueryEscape(string(id[:]))...)
		q = append(q, "&port="...)
		q = strconv.AppendUint(q, uint64(port), 10)
		q = append(q, "&uploaded=0&downloaded=0&left=1073741824&compact=1&numwant=0&event=started"...)
		req.URL.Path = "/" + pk + "/announce"
		req.URL.RawQuery = string(q)
		// Every peer its own IPv4 address.
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:%d", byte(g>>16), byte(g>>8), byte(g), port)
		h.ServeHTTP(w, req)
		if _, err := loadgen.ValidateAnnounceBody(w.body, *per); err != nil {
			return fmt.Errorf("peer %d: %w (%q)", g, err, w.body)
		}
	}
	took := time.Since(start)
	heap1, rss1 := settle()
	if *memProf != "" {
		mf, err := os.Create(*memProf)
		if err != nil {
			return err
		}
		pprof.Lookup("heap").WriteTo(mf, 0)
		mf.Close()
	}
	n := float64(*peers)
	fmt.Printf("%d peers in %d torrents (%d users) announced through the HTTP handler in %v (%.0f/s)\n",
		*peers, torrents, *users, took.Round(time.Millisecond), n/took.Seconds())
	fmt.Printf("live heap: %.1f MiB -> %.1f MiB: %.0f bytes per peer\n", mib(heap0), mib(heap1), float64(heap1-heap0)/n)
	fmt.Printf("RSS (after GC and FreeOSMemory): %.1f MiB -> %.1f MiB: %.0f bytes per peer\n", mib(rss0), mib(rss1), float64(rss1-rss0)/n)
	runtime.KeepAlive(reg)

	// The peer store alone: the same peers as remote peers of one origin.
	ps := announce.NewPeerStore(time.Hour, 0)
	heap0, rss0 = settle()
	for g := range *peers {
		hash, _, id, port := f.Peer(g)
		ps.PutRemote("other-node", *hash, announce.Peer{ID: id, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(g >> 16), byte(g >> 8), byte(g)}), port)})
	}
	heap1, rss1 = settle()
	fmt.Printf("peer store alone (PutRemote): live heap %.0f bytes per peer, RSS %.0f bytes per peer\n", float64(heap1-heap0)/n, float64(rss1-rss0)/n)
	runtime.KeepAlive(ps)

	if *flush {
		if *prof != "" {
			pf, err := os.Create(*prof)
			if err != nil {
				return err
			}
			pprof.StartCPUProfile(pf)
			defer pprof.StopCPUProfile()
		}
		start := time.Now()
		if err := tr.Flush(context.Background()); err != nil {
			return err
		}
		fmt.Printf("first stats flush of %d new peer counters: %v\n", *peers, time.Since(start).Round(time.Millisecond))
		tr.Close()
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// settle collects garbage, returns memory to the OS and reads live heap and RSS.
func settle() (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ = rssBytes(os.Getpid())
	return int64(ms.HeapAlloc), rss
}
