package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"gorestate.dev/clusterharness/bench"
	"gorestate.dev/clusterharness/logcluster"
	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// cell is one measurement: a loglet at one appender count.
type cell struct {
	appenders int
	appends   int
	elapsed   time.Duration
	p50, p99  time.Duration

	cpuSelf    time.Duration // this process's CPU during the cell
	cpuServers time.Duration // the log servers' CPU during the cell

	stores        int           // Store requests to the log servers (replicated only)
	storeRecords  int           // records they carried
	storeP50      time.Duration // their round trip
	storeP99      time.Duration
	storesPerNode float64     // per second per server
	servers       serverStats // the log servers' group commits during the cell
}

func (c cell) throughput() float64 { return float64(c.appends) / c.elapsed.Seconds() }

func (c cell) summary() string {
	return fmt.Sprintf("%8.0f appends/s, p50 %s, p99 %s, this process %.2f cores", c.throughput(), ms(c.p50), ms(c.p99), c.cpuSelf.Seconds()/c.elapsed.Seconds())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// closedLoop runs n appenders on l, each appending one record and waiting for its commit
// before the next, for cfg.warmup unmeasured and then cfg.duration measured.
func closedLoop(ctx context.Context, l bifrost.Loglet, n int, cfg config) (cell, error) {
	if err := load(ctx, l, n, cfg.payload, cfg.warmup, nil); err != nil {
		return cell{}, err
	}
	cpu0 := selfCPU()
	lat := make([][]time.Duration, n)
	start := time.Now()
	if err := load(ctx, l, n, cfg.payload, cfg.duration, lat); err != nil {
		return cell{}, err
	}
	res := cell{appenders: n, elapsed: time.Since(start), cpuSelf: selfCPU() - cpu0}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return cell{}, fmt.Errorf("no append completed in %v", cfg.duration)
	}
	slices.Sort(all)
	res.appends = len(all)
	res.p50, res.p99 = bench.Percentile(all, 50), bench.Percentile(all, 99)
	return res, nil
}

// closedLoopMetered is closedLoop plus the Store round trips and the servers' CPU.
func closedLoopMetered(ctx context.Context, l bifrost.Loglet, n int, cfg config, m *storeMeter, c *logcluster.Cluster, pids []int) (cell, error) {
	if err := load(ctx, l, n, cfg.payload, cfg.warmup, nil); err != nil {
		return cell{}, err
	}
	stats0, err := scrapeServers(c)
	if err != nil {
		return cell{}, err
	}
	m.reset()
	cpuServers0, err := bench.ProcessCPU(pids)
	if err != nil {
		return cell{}, err
	}
	res, err := closedLoop(ctx, l, n, config{payload: cfg.payload, duration: cfg.duration})
	if err != nil {
		return cell{}, err
	}
	cpuServers1, err := bench.ProcessCPU(pids)
	if err != nil {
		return cell{}, err
	}
	res.cpuServers = cpuServers1 - cpuServers0
	stats1, err := scrapeServers(c)
	if err != nil {
		return cell{}, err
	}
	res.servers = stats1.sub(stats0)
	st := m.take()
	res.stores, res.storeRecords = len(st.latencies), st.records
	if len(st.latencies) > 0 {
		slices.Sort(st.latencies)
		res.storeP50, res.storeP99 = bench.Percentile(st.latencies, 50), bench.Percentile(st.latencies, 99)
	}
	res.storesPerNode = float64(res.stores) / float64(len(pids)) / res.elapsed.Seconds()
	return res, nil
}

// load runs n appenders for d; with lat, appender i records its commit latencies in
// lat[i].
func load(ctx context.Context, l bifrost.Loglet, n, size int, d time.Duration, lat [][]time.Duration) error {
	if d <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			payload := make([]byte, size)
			for k := 0; time.Now().Before(deadline); k++ {
				copy(payload, fmt.Sprintf("appender=%d record=%d ", i, k))
				t0 := time.Now()
				if _, err := l.Append(ctx, [][]byte{payload}); err != nil {
					errs <- fmt.Errorf("appender %d: %w", i, err)
					cancel()
					return
				}
				if lat != nil {
					lat[i] = append(lat[i], time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil if none
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fsyncStats is the latency of small synced writes on the bench's disk.
type fsyncStats struct {
	n        int
	p50, p99 time.Duration
}

// probeFsync appends size bytes and fsyncs, one at a time, for d: the floor of any
// durable commit on this disk.
func probeFsync(ctx context.Context, dir string, size int, d time.Duration) (fsyncStats, error) {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return fsyncStats{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return fsyncStats{}, err
		}
		if err := f.Sync(); err != nil {
			return fsyncStats{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return stats(ctx, lat)
}

// probeLogstore commits one size-byte record at a time through a log server's store
// (goleveldb, synced batch) in this process, for d: a Store's disk cost without the
// network.
func probeLogstore(ctx context.Context, dir string, size int, d time.Duration) (fsyncStats, error) {
	st, err := logstore.Open(filepath.Join(dir, "logstore-probe"), logstore.Options{})
	if err != nil {
		return fsyncStats{}, err
	}
	defer os.RemoveAll(filepath.Join(dir, "logstore-probe"))
	defer st.Close()
	payload := [][]byte{make([]byte, size)}
	var lat []time.Duration
	end := time.Now().Add(d)
	for off := bifrost.Offset(1); time.Now().Before(end) && ctx.Err() == nil; off++ {
		t0 := time.Now()
		done := make(chan error, 1)
		if err := st.Enqueue(logstore.Write{Loglet: 1, First: off, Payloads: payload}, func(err error) { done <- err }); err != nil {
			return fsyncStats{}, err
		}
		if err := <-done; err != nil {
			return fsyncStats{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return stats(ctx, lat)
}

// probeRoundTrip sends GetLogletInfo (no disk) to a log server one at a time for d: the
// stream round trip and request handling.
func probeRoundTrip(ctx context.Context, ls wire.LogServer, d time.Duration) (fsyncStats, error) {
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		t0 := time.Now()
		if _, err := ls.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: 1 << 40}}); err != nil {
			return fsyncStats{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return stats(ctx, lat)
}

func stats(ctx context.Context, lat []time.Duration) (fsyncStats, error) {
	if len(lat) == 0 {
		return fsyncStats{}, ctx.Err()
	}
	slices.Sort(lat)
	return fsyncStats{n: len(lat), p50: bench.Percentile(lat, 50), p99: bench.Percentile(lat, 99)}, nil
}

// storeMeter records the Store round trips of a sequencer to the log servers.
type storeMeter struct {
	mu        sync.Mutex
	records   int
	latencies []time.Duration
}

type storeStats struct {
	records   int
	latencies []time.Duration
}

func (m *storeMeter) record(records int, d time.Duration) {
	m.mu.Lock()
	m.records += records
	m.latencies = append(m.latencies, d)
	m.mu.Unlock()
}

func (m *storeMeter) reset() { m.take() }

func (m *storeMeter) take() storeStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := storeStats{records: m.records, latencies: m.latencies}
	m.records, m.latencies = 0, nil
	return st
}

// meteredNetwork times every Store a sequencer sends.
type meteredNetwork struct {
	wire.Network
	m *storeMeter
}

func (n meteredNetwork) LogServer(node string) (wire.LogServer, error) {
	ls, err := n.Network.LogServer(node)
	if err != nil {
		return nil, err
	}
	return meteredLogServer{LogServer: ls, m: n.m}, nil
}

type meteredLogServer struct {
	wire.LogServer
	m *storeMeter
}

func (s meteredLogServer) Store(ctx context.Context, req *wire.Store) (*wire.Stored, error) {
	t0 := time.Now()
	resp, err := s.LogServer.Store(ctx, req)
	s.observe(req, resp, err, t0)
	return resp, err
}

// SendStore keeps the sequencer's stores in order (wire.StoreSender) when the network does.
func (s meteredLogServer) SendStore(ctx context.Context, req *wire.Store, done func(*wire.Stored, error)) {
	t0 := time.Now()
	ss, ok := s.LogServer.(wire.StoreSender)
	if !ok {
		go func() { done(s.Store(ctx, req)) }()
		return
	}
	ss.SendStore(ctx, req, func(resp *wire.Stored, err error) {
		s.observe(req, resp, err, t0)
		done(resp, err)
	})
}

func (s meteredLogServer) observe(req *wire.Store, resp *wire.Stored, err error, t0 time.Time) {
	if err == nil && resp.Status == wire.StatusOK {
		s.m.record(len(req.Payloads), time.Since(t0))
	}
}

// printTables prints the comparison (medians over the rounds, and each round's ratios) and
// where the replicated loglet's time goes.
func printTables(cfg config, rounds []round) {
	fmt.Printf("Medians over %d rounds; a ratio is replicated ÷ local within one round (each round's ratios in brackets).\n", len(rounds))
	fmt.Println("| appenders | local appends/s | local p50 | local p99 | replicated appends/s | replicated p50 | replicated p99 | throughput repl÷local | p50 repl÷local |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, n := range cfg.concurrency {
		local := func(f func(cell) float64) float64 {
			return medianOf(rounds, func(r round) float64 { return f(r.local[i]) })
		}
		repl := func(f func(cell) float64) float64 {
			return medianOf(rounds, func(r round) float64 { return f(r.repl[i]) })
		}
		tput := func(r round) float64 { return r.repl[i].throughput() / r.local[i].throughput() }
		p50 := func(r round) float64 { return float64(r.repl[i].p50) / float64(r.local[i].p50) }
		fmt.Printf("| %d | %.0f | %s | %s | %.0f | %s | %s | %.2f %s | %.2f %s |\n", n,
			local(cell.throughput), msf(local(cellP50)), msf(local(cellP99)),
			repl(cell.throughput), msf(repl(cellP50)), msf(repl(cellP99)),
			medianOf(rounds, tput), each(rounds, tput), medianOf(rounds, p50), each(rounds, p50))
	}
	fmt.Println()
	fmt.Printf("Before every cell the page cache is flushed and the log servers are idle; during the local cells they used %.3f cores (median).\n",
		medianOf(rounds, func(r round) float64 {
			var cpu, elapsed time.Duration
			for _, c := range r.local {
				cpu, elapsed = cpu+c.cpuServers, elapsed+c.elapsed
			}
			return cpu.Seconds() / elapsed.Seconds()
		}))
	fmt.Println()
	fmt.Println("Where the replicated loglet's time goes (medians over the rounds; a Store is one sequencer→server request, made durable by a group commit on that server, alone or with others queued):")
	fmt.Println("| appenders | Stores/s per server | records per Store | Store round trip p50 | p99 | group commit (mean) | WAL write+fdatasync (mean) | log servers' CPU (cores) | bench process CPU (cores) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, n := range cfg.concurrency {
		repl := func(f func(cell) float64) float64 {
			return medianOf(rounds, func(r round) float64 { return f(r.repl[i]) })
		}
		fmt.Printf("| %d | %.0f | %.1f | %s | %s | %s | %s | %.2f | %.2f |\n", n,
			repl(func(c cell) float64 { return c.storesPerNode }),
			repl(func(c cell) float64 { return float64(c.storeRecords) / float64(max(c.stores, 1)) }),
			msf(repl(func(c cell) float64 { return float64(c.storeP50) })), msf(repl(func(c cell) float64 { return float64(c.storeP99) })),
			msf(repl(func(c cell) float64 { return float64(c.servers.commitMean()) })),
			msf(repl(func(c cell) float64 { return float64(c.servers.walMean()) })),
			repl(func(c cell) float64 { return c.cpuServers.Seconds() / c.elapsed.Seconds() }),
			repl(func(c cell) float64 { return c.cpuSelf.Seconds() / c.elapsed.Seconds() }))
	}
	fmt.Println()
	var notes []string
	for i, n := range cfg.concurrency {
		p50 := medianOf(rounds, func(r round) float64 { return float64(r.repl[i].p50) })
		store := medianOf(rounds, func(r round) float64 { return float64(r.repl[i].storeP50) })
		commit := medianOf(rounds, func(r round) float64 { return float64(r.repl[i].servers.commitMean()) })
		notes = append(notes, fmt.Sprintf("%d appenders: commit p50 %s ≈ %.1f × the Store round trip p50 (%s): about %s in the server's group commit, %s in sockets, wake-ups and the commit ahead of it",
			n, msf(p50), p50/max(store, 1), msf(store), msf(commit), msf(max(store-commit, 0))))
	}
	if cfg.flood {
		fmt.Println("A commit needs the second-fastest of three Stores (-flood: every Store goes to all three servers).")
	} else {
		fmt.Println("A commit needs the Stores of the two preferred servers; the third server, a standby, gets the committed records in")
		fmt.Println("batches every few milliseconds (Stores per server averages the three).")
	}
	fmt.Println("Each server has at most a few Stores in flight per loglet and commits them one fsync after the other, so a record")
	fmt.Println("waits for the fsync under way (queueing) and then its own.")
	fmt.Println("A group commit is the WAL write and its fdatasync, then the apply to goleveldb, and now and then a WAL checkpoint")
	fmt.Println("(means over the three servers, the standby's larger batches among them; the split of a round trip is its p50 minus that mean).")
	fmt.Println(strings.Join(notes, ";\n") + ".")
	fmt.Println()
}

func cellP50(c cell) float64 { return float64(c.p50) }
func cellP99(c cell) float64 { return float64(c.p99) }

// msf formats nanoseconds held in a float as milliseconds.
func msf(ns float64) string { return ms(time.Duration(ns)) }

// medianOf is the median of f over the rounds.
func medianOf(rounds []round, f func(round) float64) float64 {
	xs := make([]float64, len(rounds))
	for i, r := range rounds {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}

// each lists f of every round, in round order: "[0.45 0.52 0.49]".
func each(rounds []round, f func(round) float64) string {
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		parts[i] = fmt.Sprintf("%.2f", f(r))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
