package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/clusterharness/promtext"
)

func scrape(t *testing.T, fabricURL string) promtext.Metrics {
	t.Helper()
	m, err := promtext.Scrape(fabricURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMetricsAfterAKnownWorkload runs a known workload and checks that every metric of the
// README's monitoring table is served on the fabric port and moved as the workload says.
// Counters are compared before and after: the registry is the process's, shared with the
// other tests of this package.
func TestMetricsAfterAKnownWorkload(t *testing.T) {
	uri := harness.StartExamples(t)
	n := harness.StartSingle(t, harness.TestConfig(t.TempDir()))
	fabric := "http://" + n.Node.FabricAddr.String()
	before := scrape(t, fabric)
	harness.Register(t, n.AdminURL, uri) // writes the schema: a metadata put

	const greets, adds = 20, 10
	for i := range greets {
		harness.Expect(t, call(t, n.IngressURL+"/Greeter/greet", fmt.Sprintf(`"m%d"`, i), nil), 200, fmt.Sprintf(`"Hello m%d!"`, i))
	}
	for range adds {
		if resp := call(t, n.IngressURL+"/Counter/metrics/add", "1", nil); resp.Status != 200 {
			t.Fatalf("add: %d %s", resp.Status, resp.Body)
		}
	}
	if resp := call(t, n.IngressURL+"/Greeter/fail", `"x"`, nil); resp.Status != examples.GreeterFailCode {
		t.Fatalf("fail: %d %s", resp.Status, resp.Body)
	}
	after := scrape(t, fabric)

	delta := func(name string, labels ...string) float64 {
		t.Helper()
		a, ok := after.Sum(name, labels...)
		if !ok {
			t.Errorf("no series %s %v on /metrics", name, labels)
			return 0
		}
		b, _ := before.Sum(name, labels...)
		return a - b
	}
	exact := func(want float64, name string, labels ...string) {
		t.Helper()
		if got := delta(name, labels...); got != want {
			t.Errorf("%s %v grew by %v, want %v", name, labels, got, want)
		}
	}
	atLeast := func(want float64, name string, labels ...string) {
		t.Helper()
		if got := delta(name, labels...); got < want {
			t.Errorf("%s %v grew by %v, want at least %v", name, labels, got, want)
		}
	}
	present := func(name string, labels ...string) float64 {
		t.Helper()
		v, ok := after.Sum(name, labels...)
		if !ok {
			t.Errorf("no series %s %v on /metrics", name, labels)
		}
		return v
	}

	// Processing latency and invocation throughput: one observation per completion.
	exact(greets, "restate_invocation_duration_seconds_count", `service="Greeter"`, `handler="greet"`, `outcome="succeeded"`)
	exact(adds, "restate_invocation_duration_seconds_count", `service="Counter"`, `handler="add"`, `outcome="succeeded"`)
	exact(1, "restate_invocation_duration_seconds_count", `service="Greeter"`, `handler="fail"`, `outcome="failed"`)
	// Ingress requests by status.
	exact(greets+adds, "restate_ingress_requests_total", `status="200"`)
	exact(1, "restate_ingress_requests_total", fmt.Sprintf(`status="%d"`, examples.GreeterFailCode))
	atLeast(greets+adds+1, "restate_ingress_request_duration_seconds_count")
	// Append and commit latency, segment growth: every invocation appends at least its
	// Invoke record and its end.
	records := delta("restate_bifrost_records_appended_total", `provider="local"`)
	if records < 2*(greets+adds+1) {
		t.Errorf("%v records appended for %d invocations", records, greets+adds+1)
	}
	atLeast(1, "restate_bifrost_bytes_appended_total", `provider="local"`)
	atLeast(1, "restate_bifrost_append_duration_seconds_count", `provider="local"`)
	atLeast(1, "restate_bifrost_commit_duration_seconds_count", `provider="local"`)
	atLeast(1, "restate_bifrost_local_fsyncs_total")
	// Applies: the leader applies every record appended (one node, no follower).
	atLeast(records, "restate_partition_records_applied_total", `mode="leader"`)
	atLeast(1, "restate_partition_apply_delay_seconds_count", `mode="leader"`)
	atLeast(1, "restate_partition_store_writes_total")
	// Leader elections: every partition was taken up once by this node.
	if v := present("restate_partition_leader_changes_total"); v < float64(n.Config.DefaultNumPartitions) {
		t.Errorf("restate_partition_leader_changes_total = %v, want at least %d", v, n.Config.DefaultNumPartitions)
	}
	// Follower lag, queue depths, segments and sizes, per partition or node.
	for p := range n.Config.DefaultNumPartitions {
		part := fmt.Sprintf(`partition="%d"`, p)
		present("restate_partition_applied_lsn", part, `mode="leader"`)
		present("restate_partition_lag_records", part)
		present("restate_partition_inbox_entries", part)
		present("restate_partition_unfinished_invocations", part)
		present("restate_partition_invoked_invocations", part)
		if v := present("restate_bifrost_log_segments", fmt.Sprintf(`log="%d"`, p)); v != 1 {
			t.Errorf("log %d has %v segments, want 1", p, v)
		}
	}
	if v, _ := after.Sum("restate_partition_unfinished_invocations"); v != 0 {
		t.Errorf("%v unfinished invocations after every call returned", v)
	}
	present("restate_invoker_running_attempts")
	present("restate_invoker_waiting_attempts")
	present("restate_invoker_slot_waits_total", `scope="node"`)
	if v := present("restate_partition_store_size_bytes"); v <= 0 {
		t.Errorf("partition store size %v", v)
	}
	// The metadata store took the registration's schema write.
	atLeast(1, "restate_metadata_operations_total", `op="put"`, `outcome="ok"`)
	atLeast(1, "restate_metadata_operation_duration_seconds_count", `op="put"`)
	// The Go runtime's and the process's own.
	present("go_goroutines")
	present("process_resident_memory_bytes")
}

// TestDashboardNamesMetricsThatExist checks that every metric the shipped Grafana
// dashboard queries is one a node serves: on one node after a workload, or, for those that
// need log servers, a raft metadata cluster or snapshots, one the crash tests check.
func TestDashboardNamesMetricsThatExist(t *testing.T) {
	b, err := os.ReadFile("../../images/grafana/gorestate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	n, _ := startNode(t)
	harness.Expect(t, call(t, n.IngressURL+"/Greeter/greet", `"d"`, nil), 200, `"Hello d!"`)
	served := scrape(t, "http://"+n.Node.FabricAddr.String())
	elsewhere := map[string]bool{ // checked by checkClusterMetrics and the snapshot test
		"restate_metadata_leader_changes_total": true, "restate_partition_snapshots_total": true,
		"restate_partition_snapshot_duration_seconds": true, "restate_log_server_stores_total": true,
		"restate_log_server_store_size_bytes": true,
	}
	name := regexp.MustCompile(`restate_[a-z_]+`)
	seen := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, m := range name.FindAllString(target.Expr, -1) {
				seen++
				base := strings.TrimSuffix(m, "_bucket")
				if elsewhere[base] {
					continue
				}
				if _, ok := served.Sum(base); ok {
					continue
				}
				if _, ok := served.Sum(base + "_count"); ok {
					continue
				}
				t.Errorf("panel %q queries %s, which the node does not serve", p.Title, m)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d metric names in the dashboard", seen)
	}
}
