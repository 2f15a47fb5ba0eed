package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Work is what the server did per completed invocation over a cell's measured window,
// read from its Prometheus counters (our metric names; a server without them reports none).
type Work struct {
	Invocations float64 `json:"invocations"`  // completions counted by the server
	Appends     float64 `json:"appends"`      // log records appended and committed
	Fsyncs      float64 `json:"fsyncs"`       // fsyncs of the local loglet
	StoreWrites float64 `json:"store_writes"` // partition-store write batches
}

// workCounters are the counters Work is computed from.
var workCounters = []string{
	"restate_invocation_duration_seconds_count",
	"restate_bifrost_records_appended_total",
	"restate_bifrost_local_fsyncs_total",
	"restate_partition_store_writes_total",
}

// scrapeCounters reads a Prometheus text exposition and sums the samples of each of
// names over their labels.
func scrapeCounters(url string, names []string) (map[string]float64, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return sumSamples(resp.Body, names)
}

func sumSamples(r io.Reader, names []string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < 0 {
				continue
			}
			rest = strings.TrimSpace(line[j+1:])
		}
		if !want[name] {
			continue
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("sample %q: %w", line, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// workBetween turns two scrapes into Work per invocation; nil when the server reported no
// completions (another server, or nothing completed).
func workBetween(before, after map[string]float64) *Work {
	d := func(name string) float64 { return after[name] - before[name] }
	n := d("restate_invocation_duration_seconds_count")
	if before == nil || after == nil || n <= 0 {
		return nil
	}
	return &Work{
		Invocations: n,
		Appends:     d("restate_bifrost_records_appended_total") / n,
		Fsyncs:      d("restate_bifrost_local_fsyncs_total") / n,
		StoreWrites: d("restate_partition_store_writes_total") / n,
	}
}

// PrintWork prints the work per invocation of the cells that have it.
func PrintWork(w io.Writer, cells []CellResult) {
	header := false
	for _, c := range cells {
		if c.Work == nil {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nper completed invocation (server counters over the measured window):\n%-14s %5s %12s %9s %9s %13s\n",
				"workload", "conc", "invocations", "appends", "fsyncs", "store writes")
			header = true
		}
		fmt.Fprintf(w, "%-14s %5d %12.0f %9.2f %9.3f %13.3f\n", c.Workload, c.Concurrency, c.Work.Invocations, c.Work.Appends, c.Work.Fsyncs, c.Work.StoreWrites)
	}
}
