package bench

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"gorestate.dev/clusterharness/promtext"
)

// Cell describes one point of the matrix: a workload at a fixed concurrency.
type Cell struct {
	Workload    Workload
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	NewClient   ClientFactory
	// ServerPIDs, when set, are sampled for CPU time over the measured window.
	ServerPIDs []int
	// DeploymentPIDs, when set, are sampled for CPU time too: the SDK deployment shares the
	// machine, and when it saturates it caps every server alike.
	DeploymentPIDs []int
	// MetricsURL, when set, is the server's /metrics: its counters at the window's edges give
	// the work per invocation (Work).
	MetricsURL string
}

// CellResult is what one cell measured. Only answers completed inside the measured window
// count; latencies are of 2xx answers only.
type CellResult struct {
	Workload    string  `json:"workload"`
	Concurrency int     `json:"concurrency"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	RPS         float64 `json:"rps"`
	MeanMs      float64 `json:"mean_ms"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	// ErrorKinds counts errors by HTTP status ("404") or "transport".
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	FirstError string           `json:"first_error,omitempty"`
	// ServerCPUPct and GenCPUPct are CPU use over the window in percent of one core, so
	// 200 means both cores of a 2-core machine.
	ServerCPUPct     float64 `json:"server_cpu_pct,omitempty"`
	DeploymentCPUPct float64 `json:"deployment_cpu_pct,omitempty"`
	GenCPUPct        float64 `json:"generator_cpu_pct"`
	// ServerRSSKiB is the servers' summed resident memory right after the cell.
	ServerRSSKiB int64 `json:"server_rss_kib,omitempty"`
	// Work is what the server did per completed invocation (only with Cell.MetricsURL and a
	// server that exports our counters).
	Work *Work `json:"work,omitempty"`
}

// workerTally is one worker's private record, merged after the run so the hot loop shares
// nothing but the workload cursor.
type workerTally struct {
	latencies  []time.Duration
	errors     map[string]int64
	firstError string
}

// errBackoff spaces out retries after transport errors, so a dead server is not hammered
// by a tight reconnect loop that would eat the CPU the server needs to come back.
const errBackoff = 10 * time.Millisecond

// Run executes the cell: all workers start together, warm up, are measured for Duration,
// then stop. It returns early with what it has if ctx is cancelled.
func Run(ctx context.Context, c Cell) CellResult {
	start := time.Now()
	measureFrom := start.Add(c.Warmup)
	measureTo := measureFrom.Add(c.Duration)
	runCtx, cancel := context.WithDeadline(ctx, measureTo)
	defer cancel()

	tallies := make([]workerTally, c.Concurrency)
	var wg sync.WaitGroup
	for i := range tallies {
		wg.Add(1)
		go func(t *workerTally) {
			defer wg.Done()
			work(runCtx, c, t, measureFrom, measureTo)
		}(&tallies[i])
	}

	// CPU is sampled at the window's edges from this goroutine, which is idle meanwhile.
	var srvStart, srvEnd, depStart, depEnd, genStart, genEnd time.Duration
	var countersStart, countersEnd promtext.Metrics
	sampled := false
	timer := time.NewTimer(time.Until(measureFrom))
	select {
	case <-timer.C:
		srvStart, _ = ProcessCPU(c.ServerPIDs)
		depStart, _ = ProcessCPU(c.DeploymentPIDs)
		genStart = selfCPU()
		if c.MetricsURL != "" {
			countersStart, _ = promtext.Scrape(c.MetricsURL)
		}
		sampled = true
	case <-runCtx.Done():
		timer.Stop()
	}
	<-runCtx.Done()
	if sampled && c.MetricsURL != "" {
		countersEnd, _ = promtext.Scrape(c.MetricsURL)
	}
	srvEnd, _ = ProcessCPU(c.ServerPIDs)
	depEnd, _ = ProcessCPU(c.DeploymentPIDs)
	genEnd = selfCPU()
	wg.Wait()

	res := merge(c, tallies)
	window := c.Duration.Seconds()
	res.RPS = float64(res.Requests) / window
	if sampled {
		res.ServerCPUPct = 100 * (srvEnd - srvStart).Seconds() / window
		res.DeploymentCPUPct = 100 * (depEnd - depStart).Seconds() / window
		res.GenCPUPct = 100 * (genEnd - genStart).Seconds() / window
	}
	if len(c.ServerPIDs) > 0 {
		res.ServerRSSKiB, _, _ = ProcessMemory(c.ServerPIDs)
	}
	res.Work = workBetween(countersStart, countersEnd)
	return res
}

func work(ctx context.Context, c Cell, t *workerTally, measureFrom, measureTo time.Time) {
	client := c.NewClient()
	defer client.Close()
	t.errors = map[string]int64{}
	for ctx.Err() == nil {
		req := c.Workload.Next()
		sent := time.Now()
		status, err := client.Do(ctx, req)
		done := time.Now()
		if err != nil && ctx.Err() != nil {
			// Cut off by the end of the window, not a server failure.
			return
		}
		measured := !done.Before(measureFrom) && done.Before(measureTo)
		switch {
		case err != nil:
			if measured {
				t.errors["transport"]++
				if t.firstError == "" {
					t.firstError = err.Error()
				}
			}
			if !backoff(ctx) {
				return
			}
		case status < 200 || status > 299:
			if measured {
				t.errors[strconv.Itoa(status)]++
				if t.firstError == "" {
					t.firstError = "HTTP " + strconv.Itoa(status) + " from " + req.Path
				}
			}
		case measured:
			t.latencies = append(t.latencies, done.Sub(sent))
		}
	}
}

func backoff(ctx context.Context) bool {
	timer := time.NewTimer(errBackoff)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func merge(c Cell, tallies []workerTally) CellResult {
	res := CellResult{Workload: c.Workload.Name, Concurrency: c.Concurrency, ErrorKinds: map[string]int64{}}
	n := 0
	for _, t := range tallies {
		n += len(t.latencies)
	}
	all := make([]time.Duration, 0, n)
	for _, t := range tallies {
		all = append(all, t.latencies...)
		for k, v := range t.errors {
			res.ErrorKinds[k] += v
			res.Errors += v
		}
		if res.FirstError == "" {
			res.FirstError = t.firstError
		}
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	res.Requests = int64(len(all))
	if len(all) == 0 {
		return res
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	res.MeanMs = ms(sum / time.Duration(len(all)))
	res.P50Ms = ms(Percentile(all, 50))
	res.P90Ms = ms(Percentile(all, 90))
	res.P99Ms = ms(Percentile(all, 99))
	res.MaxMs = ms(all[len(all)-1])
	return res
}

// Percentile returns the nearest-rank p-th percentile of sorted, which must not be empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
