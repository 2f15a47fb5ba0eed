// Command benchlog measures the loglets: closed-loop append throughput and commit latency
// of the local loglet (one fsynced file per store) and of the replicated loglet on three
// logserverd processes with replication 2 (the sequencer in this process, bifrost streams on
// loopback), at several appender counts, one record per append; then the log servers'
// memory while 2,000,000 records are appended. It says where the time goes: the disk's
// fsync latency, the log servers' Store round trips and how many records each carries
// (one Store is one group commit for a single loglet), and the CPU the processes used.
//
// The two loglets are measured in alternation (-rounds), and the comparison reports each
// round's ratios and their median.
//
//	benchlog -logserverd bin/logserverd -duration 2s -rounds 5 -concurrency 1,16,64
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorestate.dev/clusterharness/bench"
	"gorestate.dev/clusterharness/logcluster"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/bifrost/replicated"
	"gorestate.dev/shared/metadata"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchlog:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	logserverd  string
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	rounds      int
	payload     int
	records     int
	batch       int
	storesOut   int
	flood       bool
	noGather    bool
	dir         string
	cpuProfile  string
	heapDir     string
}

func run() error {
	var cfg config
	var concs string
	flag.StringVar(&cfg.logserverd, "logserverd", "bin/logserverd", "the logserverd binary (make build)")
	flag.DurationVar(&cfg.duration, "duration", 2*time.Second, "measured time per cell")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds: each measures every appender count on the local loglet and right after on the replicated one")
	flag.DurationVar(&cfg.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each cell")
	flag.StringVar(&concs, "concurrency", "1,16,64", "comma-separated appender counts")
	flag.IntVar(&cfg.payload, "payload", 256, "bytes per record")
	flag.IntVar(&cfg.records, "records", 2_000_000, "records appended for the memory measurement (0: skip it)")
	flag.IntVar(&cfg.batch, "batch", 1000, "records per append in the memory measurement")
	flag.IntVar(&cfg.storesOut, "stores-in-flight", 0, "stores a sequencer keeps in flight per log server (0: the default)")
	flag.BoolVar(&cfg.flood, "flood", false, "send every store to all three log servers (replicated.Options.FloodStores) instead of to a write quorum first")
	flag.BoolVar(&cfg.noGather, "no-gather", false, "send new records to a log server at once also while a store to it is in flight (replicated.Options.NoGather)")
	flag.StringVar(&cfg.dir, "dir", "", "directory for the stores (default: a new temporary directory, removed at the end)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the sequencer side, and the local loglet's cells) during the rounds to this file")
	flag.StringVar(&cfg.heapDir, "heapprofiles", "", "save each log server's heap profile at both memory points in this directory (ls1-200000.heap, …)")
	flag.Parse()
	for _, f := range strings.Split(concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-concurrency %q: want positive integers", concs)
		}
		cfg.concurrency = append(cfg.concurrency, n)
	}
	if cfg.rounds <= 0 {
		return fmt.Errorf("-rounds %d: want at least 1", cfg.rounds)
	}
	if _, err := os.Stat(cfg.logserverd); err != nil {
		return fmt.Errorf("-logserverd: %w (run make build)", err)
	}
	if cfg.dir == "" {
		dir, err := os.MkdirTemp("", "benchlog-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.dir = dir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("benchlog: %d-byte records, %v per cell (after %v warm-up), stores in %s\n\n", cfg.payload, cfg.duration, cfg.warmup, cfg.dir)
	fsync, err := probeFsync(ctx, cfg.dir, cfg.payload, time.Second)
	if err != nil {
		return fmt.Errorf("fsync probe: %w", err)
	}
	fmt.Printf("disk: write+fsync of %d bytes, one at a time: p50 %s, p99 %s (%d in 1s)\n", cfg.payload, ms(fsync.p50), ms(fsync.p99), fsync.n)
	commit, err := probeLogstore(ctx, cfg.dir, cfg.payload, time.Second)
	if err != nil {
		return fmt.Errorf("log store probe: %w", err)
	}
	fmt.Printf("log store (goleveldb, synced batch) in process, one %d-byte record at a time: p50 %s, p99 %s (%d in 1s)\n",
		cfg.payload, ms(commit.p50), ms(commit.p99), commit.n)

	c, err := logcluster.Start(ctx, logcluster.Options{
		Bin: cfg.logserverd, Dir: filepath.Join(cfg.dir, "cluster"), Servers: 3,
		Env: []string{"RESTATE_LOG_LEVEL=warn"},
	})
	if err != nil {
		return fmt.Errorf("start log servers: %w", err)
	}
	defer c.Close()
	rtt, err := probeRoundTrip(ctx, c.LogServer(0), time.Second)
	if err != nil {
		return fmt.Errorf("round-trip probe: %w", err)
	}
	fmt.Printf("stream round trip to a log server (GetLogletInfo, no disk), one at a time: p50 %s, p99 %s (%d in 1s)\n\n", ms(rtt.p50), ms(rtt.p99), rtt.n)
	stopProfile, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return err
	}
	rounds, err := benchRounds(ctx, cfg, c)
	stopProfile()
	if err != nil {
		return err
	}
	printTables(cfg, rounds)
	if cfg.records > 0 {
		if err := benchMemory(ctx, cfg, c); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	return nil
}

// benchSelf is the bench process as a node: it runs the sequencers.
var benchSelf = metadata.NodeID{Name: "benchlog", Generation: 1}

// round is one pass over the appender counts: a local and a replicated cell for each.
type round struct{ local, repl []cell }

// benchRounds runs cfg.rounds rounds. Within a round each appender count runs on the local
// loglet and right after on the replicated one, each cell on a loglet of its own: the
// machine's disk and CPU drift over tens of seconds (the local loglet's throughput moved
// by half between runs), and a ratio of two cells measured seconds apart drifts less.
func benchRounds(ctx context.Context, cfg config, c *logcluster.Cluster) ([]round, error) {
	store, err := localloglet.Open(filepath.Join(cfg.dir, "local"), localloglet.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	meter := &storeMeter{}
	p := replicated.NewProvider(replicated.Options{Self: benchSelf, Network: meteredNetwork{Network: c.Network(), m: meter},
		MaxStoresInFlight: cfg.storesOut, FloodStores: cfg.flood, NoGather: cfg.noGather})
	defer p.Close()
	pids := make([]int, len(c.Servers))
	for i := range pids {
		pids[i] = c.Pid(i)
	}
	var out []round
	id := uint32(0)
	for r := range cfg.rounds {
		var rd round
		for _, n := range cfg.concurrency {
			id++
			settle(ctx, pids)
			cpu0, err := bench.ProcessCPU(pids)
			if err != nil {
				return nil, err
			}
			res, err := closedLoop(ctx, store.Loglet(uint64(id)), n, cfg)
			if err != nil {
				return nil, fmt.Errorf("local loglet: %w", err)
			}
			cpu1, err := bench.ProcessCPU(pids)
			if err != nil {
				return nil, err
			}
			res.cpuServers = cpu1 - cpu0
			rd.local = append(rd.local, res)
			fmt.Printf("round %d  local       %3d appenders: %s\n", r+1, n, res.summary())
			settle(ctx, pids)
			l, err := p.Open(ctx, c.Segment(id, 0, benchSelf, 2))
			if err != nil {
				return nil, fmt.Errorf("replicated loglet: %w", err)
			}
			res, err = closedLoopMetered(ctx, l, n, cfg, meter, c, pids)
			if err != nil {
				return nil, fmt.Errorf("replicated loglet: %w", err)
			}
			rd.repl = append(rd.repl, res)
			fmt.Printf("round %d  replicated  %3d appenders: %s\n", r+1, n, res.summary())
		}
		out = append(out, rd)
	}
	fmt.Println()
	return out, nil
}

// settle lets the previous cell's aftermath pass before the next cell: it flushes the
// page cache (the log servers' goleveldb writes it through) and waits, up to 5s, for a
// 200ms span in which the log servers used at most one clock tick of CPU (compactions done).
func settle(ctx context.Context, pids []int) {
	syscall.Sync()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && ctx.Err() == nil; {
		before, err := bench.ProcessCPU(pids)
		time.Sleep(200 * time.Millisecond)
		after, err2 := bench.ProcessCPU(pids)
		if err != nil || err2 != nil || after-before <= 10*time.Millisecond {
			return
		}
	}
}

// benchMemory appends cfg.records records through a replicated loglet in batches and
// prints each log server's RSS after a tenth of them and after all of them.
func benchMemory(ctx context.Context, cfg config, c *logcluster.Cluster) error {
	p := replicated.NewProvider(replicated.Options{
		Self: benchSelf, Network: c.Network(),
		// A few batches in flight, so that the servers always have the next one.
		MaxInflightRecords: 8 * cfg.batch,
	})
	defer p.Close()
	// A loglet of its own, after those of the rounds.
	l, err := p.Open(ctx, c.Segment(uint32(cfg.rounds*len(cfg.concurrency)+1), 0, benchSelf, 2))
	if err != nil {
		return err
	}
	checkpoint := cfg.records / 10
	fmt.Printf("memory: appending %d records of %d bytes in batches of %d through the replicated loglet\n", cfg.records, cfg.payload, cfg.batch)
	start := time.Now()
	var first []int64
	if err := appendBatches(ctx, l, 0, checkpoint, cfg); err != nil {
		return err
	}
	if first, err = rss(c); err != nil {
		return err
	}
	fmt.Printf("  %9d records after %6.1fs: RSS %s\n", checkpoint, time.Since(start).Seconds(), mibs(first))
	saveHeaps(ctx, cfg, c, checkpoint)
	if err := appendBatches(ctx, l, checkpoint, cfg.records, cfg); err != nil {
		return err
	}
	last, err := rss(c)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("  %9d records after %6.1fs: RSS %s\n", cfg.records, elapsed.Seconds(), mibs(last))
	saveHeaps(ctx, cfg, c, cfg.records)
	var ratios []string
	for i := range last {
		ratios = append(ratios, fmt.Sprintf("%s %.2f", c.Servers[i].Name, float64(last[i])/float64(first[i])))
	}
	fmt.Printf("  RSS ratio (%d ÷ %d records): %s; %.0f records/s, %.1f MB/s of payload\n",
		cfg.records, checkpoint, strings.Join(ratios, ", "), float64(cfg.records)/elapsed.Seconds(),
		float64(cfg.records)*float64(cfg.payload)/elapsed.Seconds()/1e6)
	return nil
}

// appendBatches appends records [from, to) in batches of cfg.batch, keeping a few in
// flight.
func appendBatches(ctx context.Context, l bifrost.Loglet, from, to int, cfg config) error {
	const inflight = 4
	errs := make(chan error, inflight)
	pending := 0
	payload := make([]byte, cfg.payload)
	for i := from; i < to; i += cfg.batch {
		n := min(cfg.batch, to-i)
		batch := make([][]byte, n)
		for j := range batch {
			batch[j] = payload // AppendAsync copies the payloads
		}
		if pending == inflight {
			if err := <-errs; err != nil {
				return err
			}
			pending--
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		pending++
		l.AppendAsync(batch, func(_ bifrost.Offset, err error) { errs <- err })
	}
	for ; pending > 0; pending-- {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// saveHeaps saves each log server's heap profile (from its fabric port) as
// <heapprofiles>/<server>-<records>.heap; failures are reported, not fatal.
func saveHeaps(ctx context.Context, cfg config, c *logcluster.Cluster, records int) {
	if cfg.heapDir == "" {
		return
	}
	if err := os.MkdirAll(cfg.heapDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "benchlog: -heapprofiles:", err)
		return
	}
	for _, s := range c.Servers {
		path := filepath.Join(cfg.heapDir, fmt.Sprintf("%s-%d.heap", s.Name, records))
		if err := fetchTo(ctx, s.FabricURL+"/debug/pprof/heap", path); err != nil {
			fmt.Fprintln(os.Stderr, "benchlog: -heapprofiles:", err)
		}
	}
}

func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func rss(c *logcluster.Cluster) ([]int64, error) {
	out := make([]int64, len(c.Servers))
	for i := range out {
		v, err := c.RSS(i)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func mibs(vs []int64) string {
	var parts []string
	for i, v := range vs {
		parts = append(parts, fmt.Sprintf("ls%d %.1f MiB", i+1, float64(v)/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// startCPUProfile profiles this process into path until the returned function is called
// (nothing when path is empty).
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "benchlog: -cpuprofile:", err)
		}
	}, nil
}
