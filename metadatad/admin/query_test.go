package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/shared/schema"
)

// fakeSource serves fixture rows as a worker would: only those a pushed-down scan asks
// for (with ignoreScans, every row), and records which tables and scans were asked for.
type fakeSource struct {
	mu          sync.Mutex
	tables      map[string][]map[string]any
	asked       []string
	scans       map[string]rowscan.Scan
	err         error
	ignoreScans bool
}

func (s *fakeSource) Rows(_ context.Context, table string, scan rowscan.Scan) ([]map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, table)
	if s.scans == nil {
		s.scans = map[string]rowscan.Scan{}
	}
	s.scans[table] = scan
	if s.err != nil {
		return nil, s.err
	}
	var out []map[string]any
	for _, r := range s.tables[table] {
		out = append(out, maps.Clone(r))
	}
	if s.ignoreScans {
		return out, nil
	}
	return applyScan(out, scan), nil
}

// applyScan keeps what a worker must return for scan, and no more: the matching rows;
// with a limit and no order, the last ones (a choice the query must not depend on); with
// NewestFirst, the newest by created_at and the rows tied with the last of them.
func applyScan(rows []map[string]any, scan rowscan.Scan) []map[string]any {
	rows = slices.DeleteFunc(rows, func(r map[string]any) bool { return !scan.Match(r) })
	for _, r := range rows {
		defer scan.Project(r) // after ordering by created_at
	}
	switch {
	case scan.Limit == 0 || len(rows) <= scan.Limit:
		return rows
	case !scan.NewestFirst:
		return rows[len(rows)-scan.Limit:]
	}
	at := func(r map[string]any) time.Time { t, _ := r["created_at"].(time.Time); return t }
	slices.SortStableFunc(rows, func(a, b map[string]any) int { return at(b).Compare(at(a)) })
	cut := scan.Limit
	for cut < len(rows) && at(rows[cut]).Equal(at(rows[scan.Limit-1])) {
		cut++
	}
	return rows[:cut]
}

func (s *fakeSource) takeAsked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.asked
	s.asked = nil
	slices.Sort(out)
	return out
}

var (
	t0       = time.Date(2026, 11, 21, 21, 38, 31, 734_000_000, time.UTC)
	dpID     = ids.FormatDeploymentID([16]byte{0x01, 15: 0x01})
	invA     = testInvocationID("A")
	invB     = testInvocationID("B")
	invC1    = testInvocationID("C1")
	invC2    = testInvocationID("C2")
	invD     = testInvocationID("D")
	invE     = testInvocationID("E")
	invX     = testInvocationID("X")
	allNames = []string{"Greeter", "Counter", "Signup"}
)

func testInvocationID(seed string) string {
	return ids.DeterministicInvocationID(ids.PartitionKeyOf(seed), "test", seed).String()
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// ts is a timestamp as the JSON answer renders it.
func ts(d time.Duration) string { return at(d).Format("2006-01-02T15:04:05.000Z") }

// fixtureInvocations are sys_invocation rows: A running, B suspended, C1/C2 queued behind B
// (C2 created first), D completed with a failure, E paused and pinned to a deployment that is
// gone.
func fixtureInvocations() []map[string]any {
	return []map[string]any{
		{"id": invA, "target": "Greeter/greet", "target_service_name": "Greeter", "target_handler_name": "greet",
			"target_service_ty": "service", "invoked_by": "ingress", "status": "running", "journal_size": int64(3),
			"created_at": at(0), "modified_at": at(time.Second), "pinned_deployment_id": dpID,
			"pinned_service_protocol_version": int64(5), "last_attempt_deployment_id": dpID},
		{"id": invB, "target": "Counter/k1/add", "target_service_name": "Counter", "target_service_key": "k1",
			"target_handler_name": "add", "target_service_ty": "virtual_object", "invoked_by": "ingress",
			"status": "suspended", "journal_size": int64(4), "created_at": at(time.Second), "modified_at": at(5 * time.Second),
			"pinned_deployment_id": dpID, "last_attempt_deployment_id": dpID, "suspended_waiting_for_completions": "1"},
		{"id": invC1, "target": "Counter/k1/add", "target_service_name": "Counter", "target_service_key": "k1",
			"target_handler_name": "add", "target_service_ty": "virtual_object", "invoked_by": "service", "invoked_by_id": invA,
			"status": "pending", "journal_size": int64(1), "created_at": at(3 * time.Second), "modified_at": at(3 * time.Second),
			"inboxed_at": at(3 * time.Second)},
		{"id": invC2, "target": "Counter/k1/add", "target_service_name": "Counter", "target_service_key": "k1",
			"target_handler_name": "add", "target_service_ty": "virtual_object", "invoked_by": "ingress",
			"status": "pending", "journal_size": int64(1), "created_at": at(2 * time.Second), "modified_at": at(2 * time.Second),
			"inboxed_at": at(2 * time.Second)},
		{"id": invD, "target": "Counter/k2/get", "target_service_name": "Counter", "target_service_key": "k2",
			"target_handler_name": "get", "target_service_ty": "virtual_object", "idempotency_key": "idem-1",
			"invoked_by": "ingress", "status": "completed", "journal_size": int64(0), "created_at": at(-10 * time.Second),
			"modified_at": at(-9 * time.Second), "completed_at": at(-9 * time.Second),
			"completion_result": "failure", "completion_failure": "[409] killed"},
		{"id": invE, "target": "Signup/u1/run", "target_service_name": "Signup", "target_service_key": "u1",
			"target_handler_name": "run", "target_service_ty": "workflow", "invoked_by": "ingress", "status": "paused",
			"journal_size": int64(2), "created_at": at(4 * time.Second), "modified_at": at(6 * time.Second),
			"pinned_deployment_id": "dp_gone", "last_failure": "boom"},
	}
}

// fixtureStatuses derives sys_invocation_status: raw phases, no invoker-state columns.
func fixtureStatuses() []map[string]any {
	raw := map[string]string{"running": "invoked", "pending": "inboxed"}
	var out []map[string]any
	for _, r := range fixtureInvocations() {
		if s, ok := raw[r["status"].(string)]; ok {
			r["status"] = s
		}
		delete(r, "last_attempt_deployment_id")
		delete(r, "last_failure")
		out = append(out, r)
	}
	return out
}

func fixtureSource() *fakeSource {
	return &fakeSource{tables: map[string][]map[string]any{
		"sys_invocation":        fixtureInvocations(),
		"sys_invocation_status": fixtureStatuses(),
		"sys_journal": {
			{"id": invB, "index": int64(0), "entry_type": "Command: Input", "raw": []byte{0x0a}, "version": int64(2), "entry_json": `{"Value":null}`},
			{"id": invB, "index": int64(1), "entry_type": "Command: Sleep", "name": "nap", "completed": false,
				"sleep_wakeup_at": at(time.Hour), "raw": []byte{0x08}, "version": int64(2)},
			{"id": invB, "index": int64(2), "entry_type": "Command: Call", "completed": true, "invoked_id": invX,
				"invoked_target": "Greeter/greet", "raw": []byte{0x0a}, "version": int64(2)},
			{"id": invB, "index": int64(3), "entry_type": "Notification: Call", "completed": true, "raw": []byte{}, "version": int64(2)},
			{"id": invA, "index": int64(0), "entry_type": "Command: Input", "raw": []byte{}, "version": int64(2)},
		},
		"state": {
			{"service_name": "Counter", "service_key": "k1", "key": "count", "value": []byte("5"), "value_utf8": "5"},
			{"service_name": "Counter", "service_key": "k1", "key": "name", "value": []byte{0xff, 0x00}},
			{"service_name": "Counter", "service_key": "k2", "key": "count", "value": []byte("7"), "value_utf8": "7"},
			{"service_name": "Other", "service_key": "k1", "key": "count", "value": []byte("1"), "value_utf8": "1"},
		},
		"sys_inbox": {
			{"service_name": "Counter", "service_key": "k1", "id": invC1, "sequence_number": int64(2), "created_at": at(3 * time.Second)},
			{"service_name": "Counter", "service_key": "k1", "id": invC2, "sequence_number": int64(1), "created_at": at(2 * time.Second)},
		},
		"sys_keyed_service_status": {
			{"service_name": "Counter", "service_key": "k1", "invocation_id": invB},
		},
	}}
}

func fixtureRegistry() *schema.Registry {
	svc := func(name string, ty schema.ServiceType) *schema.Service {
		return &schema.Service{Name: name, Type: ty, DeploymentID: dpID, Revision: 1, Public: true}
	}
	reg := &schema.Registry{Services: map[string]*schema.Service{
		"Greeter": svc("Greeter", schema.ServiceTypeService),
		"Counter": svc("Counter", schema.ServiceTypeVirtualObject),
		"Signup":  svc("Signup", schema.ServiceTypeWorkflow),
	}}
	d := schema.Deployment{ID: dpID, URI: "http://127.0.0.1:9080/", ProtocolMode: "BIDI_STREAM",
		CreatedAt: testClock, MinProtocolVersion: 5, MaxProtocolVersion: 6}
	for _, name := range allNames {
		d.Services = append(d.Services, *reg.Services[name])
	}
	reg.Deployments = []schema.Deployment{d}
	return reg
}

// startQueryAdmin serves the admin API with the fixture registry and src (nil: no workers).
func startQueryAdmin(t *testing.T, src QuerySource) *testAdmin {
	t.Helper()
	store := newMemStore()
	b, err := fixtureRegistry().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(context.Background(), metadata.KeySchema, b, 0); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(Options{Store: store, Query: src}))
	t.Cleanup(srv.Close)
	return &testAdmin{Server: srv, store: store}
}

func (a *testAdmin) query(t *testing.T, path, accept, q string) response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": q})
	return a.do(t, http.MethodPost, path, string(body), "accept", accept)
}

// jsonRows decodes a JSON query answer.
func jsonRows(t *testing.T, r response) []map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("content-type"); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
	var body struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if body.Rows == nil {
		t.Fatalf("no rows array in %s", r.body)
	}
	return body.Rows
}

// arrowRecords decodes an Arrow IPC answer into its schema and columns (as Go values).
func arrowColumns(t *testing.T, r response) (*arrow.Schema, [][]any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("content-type"); ct != arrowContentType {
		t.Fatalf("content-type %q", ct)
	}
	rd, err := ipc.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	cols := make([][]any, len(rd.Schema().Fields()))
	for rd.Next() {
		rec := rd.RecordBatch()
		for c := range cols {
			col := rec.Column(c)
			for i := 0; i < col.Len(); i++ {
				if tsCol, ok := col.(*array.Timestamp); ok && col.IsValid(i) {
					cols[c] = append(cols[c], tsCol.Value(i))
					continue
				}
				cols[c] = append(cols[c], col.GetOneForMarshal(i))
			}
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return rd.Schema(), cols
}

func (a *testAdmin) count(t *testing.T, q string) int64 {
	t.Helper()
	schema, cols := arrowColumns(t, a.query(t, "/v4/query", "*/*", q))
	if len(cols) != 1 || len(cols[0]) != 1 || schema.Field(0).Type.ID() != arrow.INT64 {
		t.Fatalf("count answer %v %v", schema, cols)
	}
	return cols[0][0].(int64)
}

// detailA is invocation A as the CLI's detail query answers it.
func detailA() map[string]any {
	return map[string]any{"id": invA, "target": "Greeter/greet", "target_service_ty": "service", "status": "running",
		"created_at": ts(0), "state_modified_at": ts(time.Second), "pinned_deployment_id": dpID,
		"last_attempt_deployment_id": dpID, "pinned_deployment_exists": true}
}

const detailSelect = `SELECT inv.id, inv.target, inv.target_service_ty, inv.idempotency_key, inv.status, inv.created_at, inv.modified_at as state_modified_at, inv.pinned_deployment_id, inv.retry_count as num_retries, inv.last_failure as last_failure_message, inv.last_failure_related_entry_index as last_failure_entry_index, inv.last_failure_related_entry_name as last_failure_entry_name, inv.last_failure_related_entry_type as last_failure_entry_ty, inv.last_attempt_deployment_id, inv.last_attempt_server, inv.next_retry_at, inv.last_start_at, inv.invoked_by_id, inv.invoked_by_target, inv.trace_id, inv.completion_result, inv.completion_failure, dp.id IS NOT NULL as pinned_deployment_exists FROM sys_invocation inv LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id `

// TestCLIQueries runs every query of PROTOCOL.md §4.1, verbatim but for the ids, as JSON.
func TestCLIQueries(t *testing.T) {
	src := fixtureSource()
	a := startQueryAdmin(t, src)
	ids := func(xs ...string) []map[string]any {
		var out []map[string]any
		for _, x := range xs {
			out = append(out, map[string]any{"id": x})
		}
		return out
	}
	tests := []struct {
		name    string
		query   string
		want    []map[string]any
		ordered bool     // compare in order; otherwise as a set
		tables  []string // worker tables the query may load
	}{{
		name:    "active id list",
		query:   `SELECT id FROM sys_invocation inv WHERE status != 'completed' ORDER BY inv.created_at DESC, inv.id LIMIT 100`,
		want:    ids(invE, invC1, invC2, invB, invA),
		ordered: true,
		tables:  []string{"sys_invocation"},
	}, {
		name:   "active details",
		query:  detailSelect + `WHERE status != 'completed' AND inv.id in ('` + invA + `') ORDER BY inv.created_at DESC, inv.id`,
		want:   []map[string]any{detailA()},
		tables: []string{"sys_invocation"},
	}, {
		name:    "all id list",
		query:   `SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100`,
		want:    ids(invE, invC1, invC2, invB, invA, invD),
		ordered: true,
		tables:  []string{"sys_invocation"},
	}, {
		name:  "all details",
		query: detailSelect + `WHERE inv.id in ('` + invA + `','` + invB + `','` + invD + `') ORDER BY inv.created_at DESC, inv.id`,
		want: []map[string]any{
			{"id": invB, "target": "Counter/k1/add", "target_service_ty": "virtual_object", "status": "suspended",
				"created_at": ts(time.Second), "state_modified_at": ts(5 * time.Second), "pinned_deployment_id": dpID,
				"last_attempt_deployment_id": dpID, "pinned_deployment_exists": true},
			detailA(),
			{"id": invD, "target": "Counter/k2/get", "target_service_ty": "virtual_object", "idempotency_key": "idem-1",
				"status": "completed", "created_at": ts(-10 * time.Second), "state_modified_at": ts(-9 * time.Second),
				"completion_result": "failure", "completion_failure": "[409] killed", "pinned_deployment_exists": false},
		},
		ordered: true,
		tables:  []string{"sys_invocation"},
	}, {
		name:  "services status: pending",
		query: `SELECT target_service_name, target_handler_name, 'pending' as status, COUNT(1) as num_invocations, MIN(created_at) as oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation FROM sys_invocation_status WHERE status == 'inboxed' AND target_service_name IN ('Greeter','Counter','Signup') GROUP BY target_service_name, target_handler_name`,
		want: []map[string]any{{"target_service_name": "Counter", "target_handler_name": "add", "status": "pending",
			"num_invocations": 2.0, "oldest_at": ts(2 * time.Second), "oldest_invocation": invC2}},
		tables: []string{"sys_invocation_status"},
	}, {
		name:  "services status: active",
		query: `SELECT target_service_name, target_handler_name, status, COUNT(1) as num_invocations, MIN(created_at) as oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation FROM sys_invocation WHERE target_service_name IN ('Greeter','Counter','Signup') GROUP BY target_service_name, target_handler_name, status ORDER BY target_handler_name`,
		want: []map[string]any{
			{"target_service_name": "Counter", "target_handler_name": "add", "status": "pending", "num_invocations": 2.0, "oldest_at": ts(2 * time.Second), "oldest_invocation": invC2},
			{"target_service_name": "Counter", "target_handler_name": "add", "status": "suspended", "num_invocations": 1.0, "oldest_at": ts(time.Second), "oldest_invocation": invB},
			{"target_service_name": "Counter", "target_handler_name": "get", "status": "completed", "num_invocations": 1.0, "oldest_at": ts(-10 * time.Second), "oldest_invocation": invD},
			{"target_service_name": "Greeter", "target_handler_name": "greet", "status": "running", "num_invocations": 1.0, "oldest_at": ts(0), "oldest_invocation": invA},
			{"target_service_name": "Signup", "target_handler_name": "run", "status": "paused", "num_invocations": 1.0, "oldest_at": ts(4 * time.Second), "oldest_invocation": invE},
		},
		tables: []string{"sys_invocation"},
	}, {
		name:   "services status: inboxes",
		query:  `SELECT service_name, service_key, COUNT(1) as num_pending FROM sys_inbox WHERE service_name IN ('Counter','Signup') GROUP BY service_name, service_key ORDER BY num_pending DESC`,
		want:   []map[string]any{{"service_name": "Counter", "service_key": "k1", "num_pending": 2.0}},
		tables: []string{"sys_inbox"},
	}, {
		name:  "services status: locked keys",
		query: `SELECT target_service_name as service_name, target_service_key as service_key, status as invocation_status, first_value(id) as invocation_holding_lock, first_value(target_handler_name) as invocation_method_holding_lock, first_value(created_at) as invocation_created_at, first_value(modified_at) as modified_at, first_value(pinned_deployment_id) as pinned_deployment_id, first_value(last_attempt_deployment_id) as last_attempt_deployment_id, first_value(last_failure) as last_failure_message, first_value(next_retry_at) as next_retry_at, first_value(last_start_at) as last_start_at, 0 as num_pending, sum(retry_count) as num_retries FROM sys_invocation WHERE status != 'pending' AND target_service_name IN ('Counter','Signup') GROUP BY target_service_name, target_service_key, status`,
		want: []map[string]any{
			{"service_name": "Counter", "service_key": "k1", "invocation_status": "suspended", "invocation_holding_lock": invB,
				"invocation_method_holding_lock": "add", "invocation_created_at": ts(time.Second), "modified_at": ts(5 * time.Second),
				"pinned_deployment_id": dpID, "last_attempt_deployment_id": dpID, "num_pending": 0.0},
			{"service_name": "Counter", "service_key": "k2", "invocation_status": "completed", "invocation_holding_lock": invD,
				"invocation_method_holding_lock": "get", "invocation_created_at": ts(-10 * time.Second), "modified_at": ts(-9 * time.Second),
				"num_pending": 0.0},
			{"service_name": "Signup", "service_key": "u1", "invocation_status": "paused", "invocation_holding_lock": invE,
				"invocation_method_holding_lock": "run", "invocation_created_at": ts(4 * time.Second), "modified_at": ts(6 * time.Second),
				"pinned_deployment_id": "dp_gone", "last_failure_message": "boom", "num_pending": 0.0},
		},
		tables: []string{"sys_invocation"},
	}, {
		name:   "state get",
		query:  `select key, value from state where service_name = 'Counter' and service_key = 'k1' ;`,
		want:   []map[string]any{{"key": "count", "value": "35"}, {"key": "name", "value": "ff00"}},
		tables: []string{"state"},
	}, {
		name:   "describe: id check",
		query:  `SELECT id FROM sys_invocation inv WHERE inv.id = '` + invA + `' LIMIT 1`,
		want:   ids(invA),
		tables: []string{"sys_invocation"},
	}, {
		name:   "describe: details",
		query:  detailSelect + `WHERE inv.id = '` + invA + `' AND inv.id in ('` + invA + `')`,
		want:   []map[string]any{detailA()},
		tables: []string{"sys_invocation"},
	}, {
		name:  "describe: journal",
		query: `SELECT sj.index, sj.entry_type, sj.completed, sj.invoked_id, sj.invoked_target, sj.sleep_wakeup_at, sj.name, sj.promise_name, sj.version, sj.entry_json, sj.appended_at FROM sys_journal sj WHERE sj.id = '` + invB + `' ORDER BY index DESC LIMIT 100`,
		want: []map[string]any{
			{"index": 3.0, "entry_type": "Notification: Call", "completed": true, "version": 2.0},
			{"index": 2.0, "entry_type": "Command: Call", "completed": true, "invoked_id": invX, "invoked_target": "Greeter/greet", "version": 2.0},
			{"index": 1.0, "entry_type": "Command: Sleep", "completed": false, "sleep_wakeup_at": ts(time.Hour), "name": "nap", "version": 2.0},
			{"index": 0.0, "entry_type": "Command: Input", "version": 2.0, "entry_json": `{"Value":null}`},
		},
		ordered: true,
		tables:  []string{"sys_journal"},
	}, {
		name:   "suspended invocations",
		query:  `select id, target, status from sys_invocation where status = 'suspended'`,
		want:   []map[string]any{{"id": invB, "target": "Counter/k1/add", "status": "suspended"}},
		tables: []string{"sys_invocation"},
	}, {
		name:  "counter state as text",
		query: `select service_key, value_utf8 from state where service_name = 'Counter'`,
		want: []map[string]any{
			{"service_key": "k1", "value_utf8": "5"}, {"service_key": "k1"}, {"service_key": "k2", "value_utf8": "7"},
		},
		tables: []string{"state"},
	}, {
		name:  "registry tables",
		query: `SELECT s.name, s.ty, s.public, d.endpoint, d.services FROM sys_service s JOIN sys_deployment d ON d.id = s.deployment_id WHERE s.name = 'Counter'`,
		want: []map[string]any{{"name": "Counter", "ty": "virtual_object", "public": true,
			"endpoint": "http://127.0.0.1:9080/", "services": []any{"Greeter", "Counter", "Signup"}}},
	}, {
		name:  "count column naming",
		query: `SELECT COUNT(*), count(1), COUNT(*) AS n FROM sys_keyed_service_status`,
		want:  []map[string]any{{"count(*)": 1.0, "count(Int64(1))": 1.0, "n": 1.0}},
		// keyed service status is a worker table
		tables: []string{"sys_keyed_service_status"},
	}, {
		name:   "table names in literals and comments load nothing",
		query:  "SELECT 'state' AS s -- sys_journal\n /* sys_invocation */",
		want:   []map[string]any{{"s": "state"}},
		tables: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src.takeAsked() // forget what an earlier failed case loaded
			got := jsonRows(t, a.query(t, "/v4/query", "application/json", tt.query))
			want := tt.want
			if !tt.ordered {
				got, want = sortRows(got), sortRows(want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rows\n got %s\nwant %s", mustJSON(got), mustJSON(want))
			}
			if asked := src.takeAsked(); !slices.Equal(asked, tt.tables) {
				t.Fatalf("loaded worker tables %v, want %v", asked, tt.tables)
			}
		})
	}
}

// TestCLIArrowQueries runs the §4.1 queries the CLI sends with accept: */*.
func TestCLIArrowQueries(t *testing.T) {
	a := startQueryAdmin(t, fixtureSource())
	tests := []struct {
		query string
		want  int64
	}{
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 ) WHERE status != 'completed'`, 5},
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 )`, 6},
		{`SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sys_journal' AND column_name IN ('promise_name')`, 1},
		{`SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sys_journal' AND column_name IN ('version', 'entry_json', 'appended_at')`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := a.count(t, tt.query); got != tt.want {
				t.Fatalf("count %d, want %d", got, tt.want)
			}
		})
	}
}

func TestArrowColumnTypes(t *testing.T) {
	a := startQueryAdmin(t, fixtureSource())
	schema, cols := arrowColumns(t, a.query(t, "/query", "",
		`SELECT inv.id, inv.journal_size, inv.created_at, dp.id IS NOT NULL AS pinned_deployment_exists, 1.5 AS f, x'00ff' AS b, NULL AS n
		 FROM sys_invocation inv LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id WHERE inv.id = '`+invA+`'`))
	wantTypes := []arrow.Type{arrow.STRING, arrow.INT64, arrow.TIMESTAMP, arrow.BOOL, arrow.FLOAT64, arrow.BINARY, arrow.STRING}
	for i, f := range schema.Fields() {
		if f.Type.ID() != wantTypes[i] {
			t.Errorf("column %s has type %s, want %s", f.Name, f.Type, wantTypes[i])
		}
	}
	if got := cols[1][0]; got != int64(3) {
		t.Errorf("journal_size %v", got)
	}
	if got := cols[2][0]; got != arrow.Timestamp(t0.UnixMilli()) {
		t.Errorf("created_at %v, want %d", got, t0.UnixMilli())
	}
	if got := cols[3][0]; got != true {
		t.Errorf("pinned_deployment_exists %v", got)
	}
	if got := cols[6][0]; got != nil {
		t.Errorf("NULL column %v", got)
	}
}

// Boolean expressions answer true and false, as from DataFusion, not SQLite's 1 and 0.
func TestBooleanExpressions(t *testing.T) {
	a := startQueryAdmin(t, fixtureSource())
	q := `SELECT 1=1 AS e, 1=2 AS f, NULL IS NULL AS g, 1 AS one, inv.pinned_deployment_id IS NOT NULL AS pinned,
		CASE WHEN 1=1 THEN 2 END AS c, NULL = 1 AS n FROM sys_invocation inv WHERE inv.id = '` + invA + `'`
	got := jsonRows(t, a.query(t, "/query", "application/json", q))
	want := []map[string]any{{"e": true, "f": false, "g": true, "one": 1.0, "pinned": true, "c": 2.0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON rows %s, want %s", mustJSON(got), mustJSON(want))
	}
	schema, cols := arrowColumns(t, a.query(t, "/query", "*/*", q))
	wantTypes := []arrow.Type{arrow.BOOL, arrow.BOOL, arrow.BOOL, arrow.INT64, arrow.BOOL, arrow.INT64, arrow.BOOL}
	for i, f := range schema.Fields() {
		if f.Type.ID() != wantTypes[i] {
			t.Errorf("column %s has type %s, want %s", f.Name, f.Type, wantTypes[i])
		}
	}
	if got, want := mustJSON(cols), `[[true],[false],[true],[1],[true],[2],[null]]`; got != want {
		t.Errorf("Arrow columns %s, want %s", got, want)
	}
}

func TestQueryErrors(t *testing.T) {
	a := startQueryAdmin(t, fixtureSource())
	tests := []struct {
		name, query string
		status      int
		message     string
	}{
		// Statuses as restate-server 1.7.12 answers the same mistakes: parser errors 400,
		// planning errors 500.
		{"syntax", `SELECT id FROM sys_invocation WHERE AND`, 400, "syntax error"},
		{"incomplete", `SELECT (1`, 400, "incomplete input"},
		{"not a query", `SELEC id FROM sys_invocation`, 400, "only SELECT"},
		{"unknown table", `SELECT * FROM sys_nothing`, 500, "no such table"},
		{"unknown column", `SELECT nope FROM state`, 500, "no such column"},
		{"unknown qualified column", `SELECT x.id FROM sys_invocation`, 500, "no such column"},
		{"unknown function", `SELECT nope(1)`, 500, "no such function"},
		{"write", `DELETE FROM state`, 400, "only SELECT"},
		{"write behind WITH", `WITH x AS (SELECT 1) DELETE FROM state`, 500, ""},
		{"attach", `ATTACH DATABASE '/tmp/x' AS x`, 400, "only SELECT"},
		{"two statements", `SELECT 1; SELECT 2`, 500, "Datafusion error: This feature is not implemented: The context currently only supports a single SQL statement"},
		{"empty", ` ; `, 400, "Datafusion error: Error during planning: No SQL statements were provided in the query string"},
		{"only a comment", `-- nothing`, 400, "Datafusion error: Error during planning: No SQL statements were provided in the query string"},
		{"unterminated", `SELECT 'x`, 400, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, accept := range []string{"application/json", "*/*"} {
				expectQueryError(t, a.query(t, "/query", accept, tt.query), tt.status, tt.message)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		r := a.do(t, http.MethodGet, "/v3/query", "")
		expectError(t, r, http.StatusMethodNotAllowed, "not allowed", nil)
	})
	t.Run("body not JSON", func(t *testing.T) {
		r := a.do(t, http.MethodPost, "/query", "select 1")
		expectError(t, r, http.StatusBadRequest, "Failed to parse the request body as JSON", nil)
	})
	// Restate's body extractor wants the query field, a string.
	t.Run("no query field", func(t *testing.T) {
		expectError(t, a.do(t, http.MethodPost, "/query", `{}`), http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: missing field `query`", nil)
		expectError(t, a.do(t, http.MethodPost, "/query", `{"query":null}`), http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: query: invalid type: null, expected a string", nil)
		expectError(t, a.do(t, http.MethodPost, "/query", `{"query":5}`), http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: query: invalid type: integer `5`, expected a string", nil)
		expectError(t, a.do(t, http.MethodPost, "/query", `{"query":["x"]}`), http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: query: invalid type: sequence, expected a string", nil)
	})
}

// expectQueryError checks a failed query's answer: Restate's query endpoint answers
// {"message": …}, without the restate_code of the rest of the admin API.
func expectQueryError(t *testing.T, r response, status int, wantMessage string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("content-type"); ct != "application/json" {
		t.Fatalf("content-type %q, want application/json", ct)
	}
	m := r.json(t)
	if msg, _ := m["message"].(string); len(m) != 1 || !strings.Contains(msg, wantMessage) {
		t.Fatalf("error body %s, want only a message containing %q", r.body, wantMessage)
	}
}

func TestQueryWithoutWorkers(t *testing.T) {
	a := startQueryAdmin(t, nil)
	expectQueryError(t, a.query(t, "/query", "application/json", `SELECT id FROM sys_invocation`), http.StatusServiceUnavailable, "no worker serves table sys_invocation")
	got := jsonRows(t, a.query(t, "/v2/query", "application/json", `SELECT name FROM sys_service ORDER BY name`))
	want := []map[string]any{{"name": "Counter"}, {"name": "Greeter"}, {"name": "Signup"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("services %v", got)
	}

	failing := &fakeSource{err: errors.New("partition store closed")}
	a = startQueryAdmin(t, failing)
	expectQueryError(t, a.query(t, "/query", "application/json", `SELECT * FROM state`), http.StatusServiceUnavailable, "partition store closed")
}

// TestWorkerQuerySource runs queries over rows fetched from two fake workers over HTTP, in the
// wire format of workerd/introspect (base64 binary, RFC 3339 timestamps, plain numbers).
func TestWorkerQuerySource(t *testing.T) {
	worker := func(body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != workerRowsPath {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("content-type", "application/json")
			fmt.Fprintf(w, body, r.URL.Query().Get("table"))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	w1 := worker(`{"rows":[{"service_name":"Counter","service_key":"k1","key":"count","value":"NQ==","value_utf8":"5","value_length":1,"table":%q}]}`)
	w2 := worker(`{"rows":[{"service_name":"Counter","service_key":"k2","key":"count","value":"Nw==","value_utf8":"7","value_length":9007199254740993,"table":%q}]}`)
	store := newMemStore()
	nodes, _ := json.Marshal(metadata.Nodes{Nodes: map[string]metadata.Node{
		"n1":    {Name: "n1", Roles: []string{"worker", "admin"}, Address: w1.URL},
		"n2":    {Name: "n2", Roles: []string{"worker"}, Address: w2.URL + "/"},
		"admin": {Name: "admin", Roles: []string{"admin"}, Address: "http://127.0.0.1:1"},
	}})
	if _, err := store.Put(context.Background(), metadata.KeyNodes, nodes, 0); err != nil {
		t.Fatal(err)
	}
	src := NewWorkerQuerySource(store, &http.Client{})
	srv := httptest.NewServer(NewHandler(Options{Store: store, Query: src}))
	t.Cleanup(srv.Close)
	a := &testAdmin{Server: srv, store: store}

	got := sortRows(jsonRows(t, a.query(t, "/query", "application/json", `SELECT service_key, value, value_length FROM state ORDER BY service_key`)))
	want := []map[string]any{
		{"service_key": "k1", "value": "35", "value_length": 1.0},
		{"service_key": "k2", "value": "37", "value_length": 9007199254740993.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %s", mustJSON(got))
	}
	// The exact integer survives the JSON transport.
	if n := a.count(t, `SELECT COUNT(*) FROM state WHERE value_length = 9007199254740993`); n != 1 {
		t.Fatalf("big integer lost: %d", n)
	}

	// A worker that fails fails the query rather than answering with part of the table.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "worker not started", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	nodes, _ = json.Marshal(metadata.Nodes{Nodes: map[string]metadata.Node{
		"n1": {Name: "n1", Roles: []string{"worker"}, Address: w1.URL},
		"n3": {Name: "n3", Roles: []string{"worker"}, Address: broken.URL},
	}})
	if _, err := store.Put(context.Background(), metadata.KeyNodes, nodes, 1); err != nil {
		t.Fatal(err)
	}
	expectQueryError(t, a.query(t, "/query", "application/json", `SELECT * FROM state`), http.StatusServiceUnavailable, "worker not started")

	// Once the partitions are placed, only their leaders are asked: a node that leads
	// nothing (dead, its partitions taken over) does not fail the query.
	table, _ := json.Marshal(metadata.PartitionTable{NumPartitions: 2, Placement: []metadata.PartitionPlacement{
		{Leader: "n1", Followers: []string{"n3"}}, {Leader: "n1"},
	}})
	if _, err := store.Put(context.Background(), metadata.KeyPartitionTable, table, 0); err != nil {
		t.Fatal(err)
	}
	if n := a.count(t, `SELECT COUNT(*) FROM state`); n != 1 {
		t.Fatalf("rows from the placed leader n1: %d, want 1", n)
	}

	// Beside a worker, the admin asks its own worker in-process and the others over HTTP.
	local := NewNodeQuerySource(store, &http.Client{}, "n3", rowsFunc(func(table string) []map[string]any {
		return []map[string]any{{"service_name": "Local", "service_key": "k3", "key": "count", "value": []byte("1"), "value_length": int64(1)}}
	}))
	table, _ = json.Marshal(metadata.PartitionTable{NumPartitions: 2, Placement: []metadata.PartitionPlacement{{Leader: "n1"}, {Leader: "n3"}}})
	if _, err := store.Put(context.Background(), metadata.KeyPartitionTable, table, 1); err != nil {
		t.Fatal(err)
	}
	rows, err := local.Rows(context.Background(), "state", rowscan.All)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range rows {
		keys = append(keys, fmt.Sprint(r["service_key"]))
	}
	if slices.Sort(keys); !slices.Equal(keys, []string{"k1", "k3"}) {
		t.Fatalf("rows of n1 (HTTP) and n3 (local): %v", keys)
	}
}

type rowsFunc func(table string) []map[string]any

func (f rowsFunc) Rows(_ context.Context, table string, _ rowscan.Scan) ([]map[string]any, error) {
	return f(table), nil
}

func TestScanSQL(t *testing.T) {
	tests := []struct {
		q          string
		first      string
		statements int
		idents     []string
		absent     []string
	}{
		{`SELECT a FROM "sys_journal" sj;`, "select", 1, []string{"a", "sys_journal", "sj"}, nil},
		{"select 'it''s state' -- state\n, `state`", "select", 1, []string{"state"}, []string{"it"}},
		{`/* x */ WITH t AS (SELECT 1) SELECT * FROM t ;;`, "with", 1, []string{"t"}, []string{"x"}},
		{`SELECT 1; SELECT 2`, "select", 2, nil, nil},
		{`select [sys_inbox].id from [sys_inbox]`, "select", 1, []string{"sys_inbox", "id"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			got, err := scanSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.first != tt.first || got.statements != tt.statements {
				t.Fatalf("first %q statements %d", got.first, got.statements)
			}
			for _, id := range tt.idents {
				if !got.idents[id] {
					t.Errorf("identifier %q not found in %v", id, got.idents)
				}
			}
			for _, id := range tt.absent {
				if got.idents[id] {
					t.Errorf("identifier %q found in %v", id, got.idents)
				}
			}
		})
	}
}

func TestScanSQLQuotesIndex(t *testing.T) {
	got, err := scanSQL(`SELECT sj.index, "index", 'index' FROM sys_journal sj ORDER BY INDEX`)
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT sj."index", "index", 'index' FROM sys_journal sj ORDER BY "INDEX"`
	if got.sql != want {
		t.Fatalf("rewritten to %s", got.sql)
	}
}

func TestWantsJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"application/json":                    true,
		"text/plain, application/json; q=0.9": true,
		"*/*":                                 false,
		"":                                    false,
		arrowContentType:                      false,
	} {
		if got := wantsJSON(accept); got != want {
			t.Errorf("wantsJSON(%q) = %v", accept, got)
		}
	}
}

func sortRows(rows []map[string]any) []map[string]any {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(mustJSON(a), mustJSON(b)) })
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
