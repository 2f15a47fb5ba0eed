package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/clusterharness/promtext"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = time.Duration(i + 1)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}, {1, 1}} {
		if got := Percentile(sorted, tc.p); got != tc.want {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("Percentile of one sample = %v, want 7", got)
	}
}

func TestSpreadWorkloadCoversEveryKeyOnce(t *testing.T) {
	t.Parallel()
	wl, err := NewWorkload("add-1000-keys")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range SpreadKeys {
		seen[wl.Next().Path]++
	}
	if len(seen) != SpreadKeys {
		t.Fatalf("%d distinct keys in %d requests, want %d", len(seen), SpreadKeys, SpreadKeys)
	}
	if _, err := NewWorkload("nope"); err == nil {
		t.Fatal("unknown workload accepted")
	}
}

// TestRunCountsAnswers drives both clients against a server that fails every third
// request and closes the connection on every fifth, and checks nothing is lost.
func TestRunCountsAnswers(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if r.URL.Path != "/Greeter/greet" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		if i%5 == 0 {
			w.Header().Set("Connection", "close")
		}
		if i%3 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`"Hello bench!"`))
	}))
	defer srv.Close()

	for _, kind := range []string{"raw", "nethttp"} {
		t.Run(kind, func(t *testing.T) {
			factory, err := NewClientFactory(kind, srv.URL, 4, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			wl, _ := NewWorkload("greet")
			res := Run(context.Background(), Cell{
				Workload: wl, Concurrency: 4, Warmup: 20 * time.Millisecond,
				Duration: 200 * time.Millisecond, NewClient: factory,
			})
			if res.Requests == 0 {
				t.Fatalf("no successful requests: %+v", res)
			}
			if res.ErrorKinds["500"] == 0 || res.ErrorKinds["400"] != 0 || res.ErrorKinds["transport"] != 0 {
				t.Fatalf("error kinds %v, want only 500s (first error %q)", res.ErrorKinds, res.FirstError)
			}
			if res.P50Ms <= 0 || res.P99Ms < res.P50Ms {
				t.Fatalf("implausible percentiles p50=%v p99=%v", res.P50Ms, res.P99Ms)
			}
		})
	}
}

// TestSoakSendsExactlyTheRequests checks that a soak sends the number of requests asked,
// half to each workload, and counts failures apart from answers.
func TestSoakSendsExactlyTheRequests(t *testing.T) {
	t.Parallel()
	var greets, adds, other atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/Greeter/greet":
			if greets.Add(1)%10 == 0 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
		case len(r.URL.Path) > len("/Counter/") && r.URL.Path[:len("/Counter/")] == "/Counter/":
			adds.Add(1)
		default:
			other.Add(1)
		}
		w.Write([]byte(`1`))
	}))
	defer srv.Close()
	factory, err := NewClientFactory("raw", srv.URL, 8, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunSoak(context.Background(), SoakConfig{Requests: 1000, Concurrency: 8, NewClient: factory, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if greets.Load() != 500 || adds.Load() != 500 || other.Load() != 0 {
		t.Fatalf("greets %d, adds %d, others %d; want 500, 500, 0", greets.Load(), adds.Load(), other.Load())
	}
	if res.Completed != 950 || res.Errors != 50 || res.ErrorKinds["500"] != 50 {
		t.Fatalf("completed %d, errors %d (%v); want 950 and 50 500s", res.Completed, res.Errors, res.ErrorKinds)
	}
	if len(res.Samples) == 0 || res.Samples[len(res.Samples)-1].Completed != 950 {
		t.Fatalf("the last sample does not hold the final count: %+v", res.Samples)
	}
	if res.FirstMinuteRPS <= 0 && res.DurationS >= 1 {
		t.Fatalf("first-minute throughput %v over a %.1f s run", res.FirstMinuteRPS, res.DurationS)
	}
}

func TestWorkPerInvocationFromCounters(t *testing.T) {
	t.Parallel()
	text := func(invocations, appends, fsyncs, writes int) string {
		return fmt.Sprintf(`# HELP restate_bifrost_records_appended_total x
# TYPE restate_bifrost_records_appended_total counter
restate_bifrost_records_appended_total{provider="local"} %d
restate_bifrost_records_appended_total{provider="replicated"} 0
restate_bifrost_local_fsyncs_total %d
restate_partition_store_writes_total %d
restate_invocation_duration_seconds_count{handler="greet",outcome="succeeded",service="Greeter"} %d
restate_invocation_duration_seconds_count{handler="add",outcome="succeeded",service="Counter"} 0
restate_invocation_duration_seconds_bucket{handler="add",outcome="succeeded",service="Counter",le="+Inf"} 99
`, appends, fsyncs, writes, invocations)
	}
	before, err := promtext.Parse(strings.NewReader(text(10, 100, 50, 20)))
	if err != nil {
		t.Fatal(err)
	}
	after, err := promtext.Parse(strings.NewReader(text(110, 400, 100, 70)))
	if err != nil {
		t.Fatal(err)
	}
	w := workBetween(before, after)
	if w == nil || w.Invocations != 100 || w.Appends != 3 || w.Fsyncs != 0.5 || w.StoreWrites != 0.5 {
		t.Fatalf("work %+v, want 100 invocations, 3 appends, 0.5 fsyncs, 0.5 store writes each", w)
	}
	if workBetween(before, before) != nil || workBetween(nil, after) != nil {
		t.Fatal("work without completions or without a first scrape")
	}
}
