package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SoakConfig is a long closed-loop run of a fixed number of requests, alternating greet
// and add-1000-keys, that watches whether throughput and server memory stay level.
type SoakConfig struct {
	Requests    int64
	Concurrency int
	NewClient   ClientFactory
	ServerPIDs  []int
	// Interval is how often a sample (throughput, RSS) is taken and printed.
	Interval time.Duration
	// Progress, if set, gets one line per sample as the run goes.
	Progress io.Writer
}

// SoakSample is one interval of a soak run.
type SoakSample struct {
	AtS       float64 `json:"at_s"`
	Completed int64   `json:"completed"` // 2xx answers so far
	Errors    int64   `json:"errors"`    // failed requests so far
	RPS       float64 `json:"rps"`       // 2xx answers per second in this interval
	RSSKiB    int64   `json:"rss_kib,omitempty"`
}

// SoakResult is a soak run's outcome. FirstMinuteRPS and LastMinuteRPS count 2xx answers
// in the first and last whole 60 seconds (the run's partial last second excluded).
type SoakResult struct {
	Requests       int64            `json:"requests"`
	Completed      int64            `json:"completed"`
	Errors         int64            `json:"errors"`
	ErrorKinds     map[string]int64 `json:"error_kinds,omitempty"`
	FirstError     string           `json:"first_error,omitempty"`
	DurationS      float64          `json:"duration_s"`
	FirstMinuteRPS float64          `json:"first_minute_rps"`
	LastMinuteRPS  float64          `json:"last_minute_rps"`
	RSSMinKiB      int64            `json:"rss_min_kib,omitempty"`
	RSSMaxKiB      int64            `json:"rss_max_kib,omitempty"`
	RSSPeakKiB     int64            `json:"rss_peak_kib,omitempty"` // VmHWM at the end
	Samples        []SoakSample     `json:"samples"`
}

// soakSeconds bounds how long a soak may count completions per second (6 hours).
const soakSeconds = 6 * 3600

// RunSoak sends cfg.Requests requests from cfg.Concurrency workers, even ones to
// Greeter/greet and odd ones to Counter/k<i>/add over 1000 keys, and samples as it goes.
func RunSoak(ctx context.Context, cfg SoakConfig) (SoakResult, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	greet, err := NewWorkload("greet")
	if err != nil {
		return SoakResult{}, err
	}
	add, err := NewWorkload("add-1000-keys")
	if err != nil {
		return SoakResult{}, err
	}

	var (
		issued, completed, failed atomic.Int64
		perSecond                 = make([]atomic.Int64, soakSeconds)
		mu                        sync.Mutex
		kinds                     = map[string]int64{}
		firstError                string
	)
	fail := func(kind, msg string) {
		failed.Add(1)
		mu.Lock()
		kinds[kind]++
		if firstError == "" {
			firstError = msg
		}
		mu.Unlock()
	}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, soakSeconds*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := cfg.NewClient()
			defer client.Close()
			for runCtx.Err() == nil {
				n := issued.Add(1)
				if n > cfg.Requests {
					return
				}
				req := greet.Next()
				if n%2 == 0 {
					req = add.Next()
				}
				status, err := client.Do(runCtx, req)
				switch {
				case err != nil && runCtx.Err() != nil:
					return
				case err != nil:
					fail("transport", err.Error())
					if !backoff(runCtx) {
						return
					}
				case status < 200 || status > 299:
					fail(strconv.Itoa(status), "HTTP "+strconv.Itoa(status)+" from "+req.Path)
				default:
					completed.Add(1)
					perSecond[int(time.Since(start)/time.Second)%soakSeconds].Add(1)
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	res := SoakResult{Requests: cfg.Requests}
	var last int64
	lastAt := start
	sample := func(now time.Time) {
		c := completed.Load()
		s := SoakSample{AtS: now.Sub(start).Seconds(), Completed: c, Errors: failed.Load(),
			RPS: float64(c-last) / now.Sub(lastAt).Seconds()}
		if len(cfg.ServerPIDs) > 0 {
			s.RSSKiB, _, _ = ProcessMemory(cfg.ServerPIDs)
			if res.RSSMinKiB == 0 || s.RSSKiB < res.RSSMinKiB {
				res.RSSMinKiB = s.RSSKiB
			}
			res.RSSMaxKiB = max(res.RSSMaxKiB, s.RSSKiB)
		}
		last, lastAt = c, now
		res.Samples = append(res.Samples, s)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "%7.0f s  %9d done  %6d errors  %8.1f req/s  RSS %s\n",
				s.AtS, s.Completed, s.Errors, s.RPS, mibText(s.RSSKiB))
		}
	}
	ticker := time.NewTicker(cfg.Interval)
	defer ticker.Stop()
loop:
	for {
		select {
		case now := <-ticker.C:
			sample(now)
		case <-finished:
			break loop
		}
	}
	end := time.Now()
	sample(end)

	res.Completed, res.Errors = completed.Load(), failed.Load()
	res.DurationS = end.Sub(start).Seconds()
	mu.Lock()
	if len(kinds) > 0 {
		res.ErrorKinds = kinds
	}
	res.FirstError = firstError
	mu.Unlock()
	if len(cfg.ServerPIDs) > 0 {
		_, res.RSSPeakKiB, _ = ProcessMemory(cfg.ServerPIDs)
	}
	whole := int(end.Sub(start) / time.Second) // seconds fully inside the run
	minute := func(from int) float64 {
		var n int64
		for i := max(from, 0); i < min(from+60, whole); i++ {
			n += perSecond[i].Load()
		}
		return float64(n) / float64(max(min(60, whole-max(from, 0)), 1))
	}
	res.FirstMinuteRPS = minute(0)
	res.LastMinuteRPS = minute(whole - 60)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("soak interrupted after %d requests: %w", res.Completed+res.Errors, err)
	}
	return res, nil
}

// PrintSoak prints a soak run's summary.
func PrintSoak(w io.Writer, r SoakResult) {
	fmt.Fprintf(w, "%d requests in %.1f s (%.1f req/s): %d ok, %d failed\n",
		r.Requests, r.DurationS, float64(r.Completed)/r.DurationS, r.Completed, r.Errors)
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors %v, first: %s\n", r.ErrorKinds, r.FirstError)
	}
	ratio := 0.0
	if r.FirstMinuteRPS > 0 {
		ratio = r.LastMinuteRPS / r.FirstMinuteRPS
	}
	fmt.Fprintf(w, "first minute %.1f req/s, last minute %.1f req/s: last/first %.2f\n",
		r.FirstMinuteRPS, r.LastMinuteRPS, ratio)
	if r.RSSMaxKiB > 0 {
		fmt.Fprintf(w, "server RSS over the run: min %s, max %s, peak (VmHWM) %s\n",
			mibText(r.RSSMinKiB), mibText(r.RSSMaxKiB), mibText(r.RSSPeakKiB))
	}
}

func mibText(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", mib(kib))
}
