package bench

import (
	"fmt"
	"io"

	"gorestate.dev/clusterharness/promtext"
)

// Work is what the server did per completed invocation over a cell's measured window,
// read from its Prometheus counters (our metric names; a server without them reports none).
type Work struct {
	Invocations float64 `json:"invocations"`  // completions counted by the server
	Appends     float64 `json:"appends"`      // log records appended and committed
	Fsyncs      float64 `json:"fsyncs"`       // fsyncs of the local loglet
	StoreWrites float64 `json:"store_writes"` // partition-store write batches
}

// workBetween turns two scrapes into Work per invocation; nil when the server reported no
// completions (another server, or nothing completed).
func workBetween(before, after promtext.Metrics) *Work {
	d := func(name string) float64 {
		a, _ := after.Sum(name)
		b, _ := before.Sum(name)
		return a - b
	}
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
