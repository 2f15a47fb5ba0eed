// Command benchquery measures the admin API's SQL introspection on a store with many
// retained invocations: it writes n completed invocations (and a few unfinished ones) into
// a partition store, then times the queries `restate invocations list` (and `--all`) sends,
// with the filters and limits pushed down to the store as the admin does, and, for
// comparison at a smaller size, with every row loaded as before push-down. It reports each
// query's median time and the peak Go heap while it ran.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gorestate.dev/metadatad/admin"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/introspect"
	"gorestate.dev/workerd/store"
)

const partitions = 24

func main() {
	n := flag.Int("n", 1_000_000, "completed invocations to retain")
	unfinished := flag.Int("unfinished", 100, "unfinished invocations")
	compare := flag.Int("compare", 100_000, "also run without push-down on a store of this many (0: skip)")
	flag.Parse()
	// The comparison without push-down loads whole tables, as the admin did before: no
	// budget on the rows a worker may load for a query.
	rowscan.MaxBytes = math.MaxInt64
	log.SetFlags(0)
	if *compare > 0 {
		run(*compare, *unfinished, false)
		run(*compare, *unfinished, true)
	}
	run(*n, *unfinished, true)
}

func run(n, unfinished int, push bool) {
	dir, err := os.MkdirTemp("", "benchquery-")
	check(err)
	defer os.RemoveAll(dir)
	db, err := store.Open(dir + "/store")
	check(err)
	defer db.Close()
	var parts []*store.Partition
	for p := range uint32(partitions) {
		parts = append(parts, db.Partition(p))
		_, err := parts[p].BuildIndexes()
		check(err)
	}
	start := time.Now()
	fill(parts, n, unfinished)
	fmt.Printf("\n%d completed + %d unfinished invocations in %d partitions, written in %.1fs; push-down %v\n",
		n, unfinished, partitions, time.Since(start).Seconds(), push)

	meta, err := metadata.OpenLocal(dir + "/meta")
	check(err)
	srv := httptest.NewServer(admin.NewHandler(admin.Options{Store: meta, Query: source{parts: parts, push: push}}))
	defer srv.Close()

	ids := queryJSON(srv.URL, `SELECT id FROM sys_invocation inv WHERE status != 'completed' ORDER BY inv.created_at DESC, inv.id LIMIT 100`)
	allIDs := queryJSON(srv.URL, `SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100`)
	detail := func(rows []map[string]any, where string) string {
		var quoted []string
		for _, r := range rows {
			quoted = append(quoted, "'"+r["id"].(string)+"'")
		}
		return detailSelect + where + "inv.id in (" + strings.Join(quoted, ",") + ") ORDER BY inv.created_at DESC, inv.id"
	}
	fmt.Printf("| query of restate invocations list [--all] / describe | rows | median of 3 | peak Go heap |\n|---|---:|---:|---:|\n")
	for _, q := range []struct{ name, sql, accept string }{
		{"count unfinished (Arrow)", `SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 ) WHERE status != 'completed'`, "*/*"},
		{"newest 100 unfinished ids", `SELECT id FROM sys_invocation inv WHERE status != 'completed' ORDER BY inv.created_at DESC, inv.id LIMIT 100`, "application/json"},
		{"their details", detail(ids, "status != 'completed' AND "), "application/json"},
		{"--all: count (Arrow)", `SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 )`, "*/*"},
		{"--all: newest 100 ids", `SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100`, "application/json"},
		{"--all: their details", detail(allIDs, ""), "application/json"},
		{"describe: one id", `SELECT id FROM sys_invocation inv WHERE inv.id = '` + allIDs[50]["id"].(string) + `' LIMIT 1`, "application/json"},
	} {
		var times []time.Duration
		var rows int
		var peak uint64
		for range 3 {
			d, r, p := timed(func() int { return post(srv.URL, q.sql, q.accept) })
			times, rows, peak = append(times, d), r, max(peak, p)
		}
		slices.Sort(times)
		fmt.Printf("| %s | %d | %s | %d MiB |\n", q.name, rows, times[1].Round(100*time.Microsecond), peak>>20)
	}
}

// timed runs f, returning its duration, its result and the peak heap in use while it ran.
func timed(f func() int) (time.Duration, int, uint64) {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	r := f()
	d := time.Since(start)
	close(done)
	return d, r, peak.Load()
}

// source is a single node's query source, with or without push-down.
type source struct {
	parts []*store.Partition
	push  bool
}

func (s source) Rows(ctx context.Context, table string, scan rowscan.Scan) ([]map[string]any, error) {
	if !s.push {
		scan = rowscan.All
	}
	return introspect.Scan(ctx, s.parts, table, scan)
}

func fill(parts []*store.Partition, n, unfinished int) {
	base := time.Now().Add(-24 * time.Hour).UnixMilli()
	total := n + unfinished
	const batch = 2000
	for i := 0; i < total; i += batch {
		p := parts[(i/batch)%len(parts)]
		txn := p.Begin()
		for j := i; j < min(i+batch, total); j++ {
			key := fmt.Sprintf("key-%d", j%1000)
			st := &store.Status{
				Phase:          store.PhaseCompleted,
				Target:         logrecord.Target{Service: "Counter", Key: key, Handler: "add", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"},
				IdempotencyKey: fmt.Sprintf("idem-%d", j), CreatedAt: base + int64(j)*80, ModifiedAt: base + int64(j)*80 + 3,
				CompletedAt: base + int64(j)*80 + 3, JournalLen: 3, CommandCount: 2, CompletionRetentionMs: 86_400_000,
				JournalRetentionMs: 86_400_000, DeploymentID: "dp_11111111111111111111111", ProtocolVersion: 5,
				Result: &store.Result{Value: []byte(fmt.Sprint(j))},
			}
			if j >= n {
				st.Phase, st.CompletedAt, st.Result = store.PhaseSuspended, 0, nil
			}
			id := ids.NewInvocationID(ids.PartitionKeyOf(key))
			check(txn.PutStatus(id.Bytes(), st, nil))
		}
		check(txn.Commit())
	}
}

func queryJSON(base, sql string) []map[string]any {
	body, _ := json.Marshal(map[string]string{"query": sql})
	req, _ := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	var out struct {
		Rows []map[string]any `json:"rows"`
	}
	check(json.NewDecoder(resp.Body).Decode(&out))
	if len(out.Rows) == 0 {
		log.Fatalf("no rows for %s", sql)
	}
	return out.Rows
}

// post runs a query and returns how many rows a JSON answer has (1 for Arrow).
func post(base, sql, accept string) int {
	body, _ := json.Marshal(map[string]string{"query": sql})
	req, _ := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("accept", accept)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	check(err)
	if resp.StatusCode != http.StatusOK {
		log.Fatalf("query %.80s: %d %s", sql, resp.StatusCode, b)
	}
	if accept != "application/json" {
		return 1
	}
	var out struct {
		Rows []json.RawMessage `json:"rows"`
	}
	check(json.Unmarshal(b, &out))
	return len(out.Rows)
}

// detailSelect is the head of the CLI's detail query (PROTOCOL.md §4.1).
const detailSelect = `SELECT inv.id, inv.target, inv.target_service_ty, inv.idempotency_key, inv.status, inv.created_at, inv.modified_at as state_modified_at, inv.pinned_deployment_id, inv.retry_count as num_retries, inv.last_failure as last_failure_message, inv.last_failure_related_entry_index as last_failure_entry_index, inv.last_failure_related_entry_name as last_failure_entry_name, inv.last_failure_related_entry_type as last_failure_entry_ty, inv.last_attempt_deployment_id, inv.last_attempt_server, inv.next_retry_at, inv.last_start_at, inv.invoked_by_id, inv.invoked_by_target, inv.trace_id, inv.completion_result, inv.completion_failure, dp.id IS NOT NULL as pinned_deployment_exists FROM sys_invocation inv LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id WHERE `

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
