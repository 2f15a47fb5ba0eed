package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MixedConfig is the mixed workload: Programs one-way calls of MixedProgram.run (examples
// package) over Objects program objects, each calling into Accounts account objects,
// sent Concurrency at a time with an idempotency key and a SendTimeout per attempt (a
// timed-out send is retried with the same key, as a client would).
type MixedConfig struct {
	Ingress, Admin string
	Label          string
	Programs       int
	Concurrency    int
	Objects        int
	Accounts       int
	SleepMs        int64
	DelayMs        int64
	SendTimeout    time.Duration
	// Deadline bounds the wait for every program to complete.
	Deadline time.Duration
}

// MixedResult is what a mixed run measured.
type MixedResult struct {
	Label    string `json:"label"`
	Programs int    `json:"programs"`
	// Sends: accepted one-way calls per second while sending, latency of the accepted
	// attempts, attempts that timed out or failed (each retried).
	SendsPerSec float64 `json:"sends_per_sec"`
	SendP50Ms   float64 `json:"send_p50_ms"`
	SendP99Ms   float64 `json:"send_p99_ms"`
	SendMaxMs   float64 `json:"send_max_ms"`
	Timeouts    int64   `json:"timeouts"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	// Completion: from the first send until every program completed.
	CompleteSec    float64 `json:"complete_sec"`
	ProgramsPerSec float64 `json:"programs_per_sec"`
	Completed      int64   `json:"completed"`
}

// RunMixed sends the programs and waits until all of them have completed, as the admin
// API's SQL reports.
func RunMixed(ctx context.Context, c MixedConfig) (MixedResult, error) {
	res := MixedResult{Label: c.Label, Programs: c.Programs}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Concurrency, MaxConnsPerHost: c.Concurrency}}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	next := atomic.Int64{}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		timeouts  atomic.Int64
		errs      atomic.Int64
		firstErr  string
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range c.Concurrency {
		wg.Go(func() {
			var mine []time.Duration
			for {
				i := int(next.Add(1) - 1)
				if i >= c.Programs || ctx.Err() != nil {
					break
				}
				body := fmt.Sprintf(`{"account":"a%d","sleepMs":%d,"delayMs":%d}`, i%c.Accounts, c.SleepMs, c.DelayMs)
				url := fmt.Sprintf("%s/MixedProgram/p%d/run/send", c.Ingress, i%c.Objects)
				for attempt := 0; ; attempt++ {
					d, err := sendOnce(ctx, client, url, body, run+"-"+fmt.Sprint(i), c.SendTimeout)
					if err == nil {
						mine = append(mine, d)
						break
					}
					if errors.Is(err, context.DeadlineExceeded) {
						timeouts.Add(1)
					} else {
						errs.Add(1)
						mu.Lock()
						if firstErr == "" {
							firstErr = err.Error()
						}
						mu.Unlock()
					}
					if ctx.Err() != nil || attempt >= 20 {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	sending := time.Since(start)
	res.Timeouts, res.Errors, res.FirstError = timeouts.Load(), errs.Load(), firstErr
	if len(latencies) < c.Programs {
		return res, fmt.Errorf("only %d of %d programs were accepted (first error: %s)", len(latencies), c.Programs, firstErr)
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.SendsPerSec = float64(len(latencies)) / sending.Seconds()
	res.SendP50Ms = ms(latencies[len(latencies)/2])
	res.SendP99Ms = ms(latencies[len(latencies)*99/100])
	res.SendMaxMs = ms(latencies[len(latencies)-1])

	deadline := time.Now().Add(c.Deadline)
	for {
		n, err := completedPrograms(ctx, client, c.Admin)
		if err == nil {
			res.Completed = n
			if n >= int64(c.Programs) {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, fmt.Errorf("%d of %d programs completed within %s (last query error: %v)", res.Completed, c.Programs, c.Deadline, err)
		}
		// The count is a query over every retained invocation: asked too often, it is a
		// load of its own on the server under test.
		time.Sleep(500 * time.Millisecond)
	}
	res.CompleteSec = time.Since(start).Seconds()
	res.ProgramsPerSec = float64(c.Programs) / res.CompleteSec
	return res, nil
}

func sendOnce(ctx context.Context, client *http.Client, url, body, key string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("idempotency-key", key)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("send: %s", resp.Status)
	}
	return time.Since(start), nil
}

// completedPrograms counts the completed MixedProgram invocations.
func completedPrograms(ctx context.Context, client *http.Client, admin string) (int64, error) {
	q, _ := json.Marshal(map[string]string{"query": "SELECT COUNT(*) AS n FROM sys_invocation WHERE target_service_name = 'MixedProgram' AND status = 'completed'"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, admin+"/query", bytes.NewReader(q))
	if err != nil {
		return 0, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Rows []struct {
			N int64 `json:"n"`
		} `json:"rows"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("query: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Rows) != 1 {
		return 0, fmt.Errorf("query answer: %v", err)
	}
	return out.Rows[0].N, nil
}

// PrintMixedComparison prints two mixed results side by side.
func PrintMixedComparison(w io.Writer, ours, ref MixedResult) {
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	fmt.Fprintf(w, "%-26s %12s %12s %8s\n", "mixed workload", ours.Label, ref.Label, "ratio")
	row := func(name string, a, b float64, format string) {
		fmt.Fprintf(w, "%-26s %12s %12s %8s\n", name, fmt.Sprintf(format, a), fmt.Sprintf(format, b), ratio(a, b))
	}
	row("programs completed/s", ours.ProgramsPerSec, ref.ProgramsPerSec, "%.1f")
	row("all completed after (s)", ours.CompleteSec, ref.CompleteSec, "%.1f")
	row("sends accepted/s", ours.SendsPerSec, ref.SendsPerSec, "%.1f")
	row("send p50 (ms)", ours.SendP50Ms, ref.SendP50Ms, "%.2f")
	row("send p99 (ms)", ours.SendP99Ms, ref.SendP99Ms, "%.2f")
	row("send max (ms)", ours.SendMaxMs, ref.SendMaxMs, "%.2f")
	row("sends timed out (>1s)", float64(ours.Timeouts), float64(ref.Timeouts), "%.0f")
}
