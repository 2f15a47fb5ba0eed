package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one server's full matrix, as written to the -json file.
type Report struct {
	Label       string       `json:"label,omitempty"`
	Ingress     string       `json:"ingress"`
	Client      string       `json:"client"`
	Started     time.Time    `json:"started"`
	WarmupS     float64      `json:"warmup_s"`
	DurationS   float64      `json:"duration_s"`
	ServerPIDs  []int        `json:"server_pids,omitempty"`
	Cells       []CellResult `json:"cells"`
	RSSBeforeKB int64        `json:"server_rss_before_kib,omitempty"`
	RSSAfterKB  int64        `json:"server_rss_after_kib,omitempty"`
	RSSPeakKB   int64        `json:"server_rss_peak_kib,omitempty"`
}

// WriteJSON writes r to path, indented.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode report %s: %w", path, err)
	}
	return &r, nil
}

// PrintHeader starts the table that PrintCell continues row by row, so a long matrix shows
// progress as it goes.
func PrintHeader(w io.Writer) {
	fmt.Fprintf(w, "%-14s %5s %10s %9s %9s %9s %8s %8s %8s %8s %9s  %s\n",
		"workload", "conc", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "srv cpu", "dep cpu", "gen cpu", "rss MiB", "error kinds")
}

// PrintCell prints one table row.
func PrintCell(w io.Writer, c CellResult) {
	srvCPU, depCPU := "-", "-"
	if c.ServerCPUPct > 0 {
		srvCPU = fmt.Sprintf("%.0f%%", c.ServerCPUPct)
	}
	if c.DeploymentCPUPct > 0 {
		depCPU = fmt.Sprintf("%.0f%%", c.DeploymentCPUPct)
	}
	rss := "-"
	if c.ServerRSSKiB > 0 {
		rss = fmt.Sprintf("%.1f", mib(c.ServerRSSKiB))
	}
	fmt.Fprintf(w, "%-14s %5d %10.1f %9.2f %9.2f %9.2f %8d %8s %8s %7.0f%% %9s  %s\n",
		c.Workload, c.Concurrency, c.RPS, c.P50Ms, c.P99Ms, c.MaxMs, c.Errors, srvCPU, depCPU, c.GenCPUPct, rss, errorKinds(c))
}

// PrintMemory prints the servers' memory summary.
func PrintMemory(w io.Writer, r *Report) {
	if len(r.ServerPIDs) == 0 {
		fmt.Fprintln(w, "server RSS: not sampled (no -pid)")
		return
	}
	fmt.Fprintf(w, "server RSS (pids %v): before %.1f MiB, after matrix %.1f MiB, peak %.1f MiB\n",
		r.ServerPIDs, mib(r.RSSBeforeKB), mib(r.RSSAfterKB), mib(r.RSSPeakKB))
}

func errorKinds(c CellResult) string {
	if len(c.ErrorKinds) == 0 {
		return ""
	}
	keys := make([]string, 0, len(c.ErrorKinds))
	for k := range c.ErrorKinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.ErrorKinds[k]))
	}
	if c.FirstError != "" {
		parts = append(parts, "first: "+c.FirstError)
	}
	return strings.Join(parts, " ")
}

// PrintComparison prints ours and ref side by side with ratios ours/ref for throughput,
// latency and memory. Cells are matched by workload and concurrency.
func PrintComparison(w io.Writer, ours, ref *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tconc\tours req/s\tref req/s\tratio\tours p50\tref p50\tratio\tours p99\tref p99\tratio\tours err\tref err\t\n")
	refCells := map[string]CellResult{}
	for _, c := range ref.Cells {
		refCells[cellKey(c)] = c
	}
	for _, o := range ours.Cells {
		r, ok := refCells[cellKey(o)]
		if !ok {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t-\t-\t%.2f\t-\t-\t%.2f\t-\t-\t%d\t-\t\n", o.Workload, o.Concurrency, o.RPS, o.P50Ms, o.P99Ms, o.Errors)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%s\t%.2f\t%.2f\t%s\t%.2f\t%.2f\t%s\t%d\t%d\t\n",
			o.Workload, o.Concurrency,
			o.RPS, r.RPS, ratio(o.RPS, r.RPS),
			o.P50Ms, r.P50Ms, ratio(o.P50Ms, r.P50Ms),
			o.P99Ms, r.P99Ms, ratio(o.P99Ms, r.P99Ms),
			o.Errors, r.Errors)
	}
	tw.Flush()
	fmt.Fprintf(w, "server RSS after matrix: ours %.1f MiB, ref %.1f MiB, ratio %s; peak: ours %.1f MiB, ref %.1f MiB, ratio %s\n",
		mib(ours.RSSAfterKB), mib(ref.RSSAfterKB), ratio(float64(ours.RSSAfterKB), float64(ref.RSSAfterKB)),
		mib(ours.RSSPeakKB), mib(ref.RSSPeakKB), ratio(float64(ours.RSSPeakKB), float64(ref.RSSPeakKB)))
	fmt.Fprintln(w, "ratio = ours/ref: above 1 is better for req/s, below 1 is better for latency and RSS")
}

func cellKey(c CellResult) string { return fmt.Sprintf("%s/%d", c.Workload, c.Concurrency) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
