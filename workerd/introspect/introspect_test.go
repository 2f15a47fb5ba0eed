package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/store"
)

var t0 = time.Date(2026, 11, 21, 21, 38, 31, 734_000_000, time.UTC)

func ms(d time.Duration) int64     { return t0.Add(d).UnixMilli() }
func at(d time.Duration) time.Time { return t0.Add(d) }

func newID(seed string) []byte {
	return ids.DeterministicInvocationID(ids.PartitionKeyOf(seed), "test", seed).Bytes()
}

func idStr(b []byte) string {
	id, err := ids.InvocationIDFromBytes(b)
	if err != nil {
		panic(err)
	}
	return id.String()
}

func entry(b protocol.TypedBody) store.JournalEntry {
	return store.JournalEntry{Type: uint16(b.MessageType()), Payload: b.Marshal()}
}

func notification(t protocol.MessageType, n *protocol.Notification) store.JournalEntry {
	return store.JournalEntry{Type: uint16(t), Payload: n.Marshal()}
}

var (
	idA, idB, idC, idD, idE = newID("A"), newID("B"), newID("C"), newID("D"), newID("E")

	greeter = logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	counter = logrecord.Target{Service: "Counter", Handler: "add", Key: "k1", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"}
	getter  = logrecord.Target{Service: "Counter", Handler: "get", Key: "k2", ServiceType: "VIRTUAL_OBJECT", HandlerType: "SHARED"}
	signup  = logrecord.Target{Service: "Signup", Handler: "run", Key: "u1", ServiceType: "WORKFLOW", HandlerType: "WORKFLOW"}
)

// fixtureStore writes, through store.Txn, invocation A (running, with a journal) in partition
// 0 and, in partition 1, B (suspended, holding Counter/k1, called by A), C (queued behind B),
// D (completed with a failure) and E (paused workflow with a resolved promise), plus state.
func fixtureStore(t *testing.T) []*store.Partition {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	p0, p1 := db.Partition(0), db.Partition(1)

	txn := p0.Begin()
	call := entry(&protocol.CallCommand{ServiceName: "Counter", HandlerName: "add", Key: "k1", InvocationIDNotificationIdx: 2, ResultCompletionID: 3})
	call.Call = &store.CallMeta{ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE", CompletionRetentionMs: 86_400_000, JournalRetentionMs: 86_400_000}
	journal := []store.JournalEntry{
		entry(&protocol.InputCommand{Value: protocol.NewValue([]byte(`"hi"`))}),
		entry(&protocol.SleepCommand{WakeUpTime: uint64(ms(time.Hour)), ResultCompletionID: 1, Name: "nap"}),
		call,
		notification(protocol.CallInvocationIDCompletionType, protocol.CompletionNotification(2).WithInvocationID(idStr(idB))),
		notification(protocol.SleepCompletionType, protocol.CompletionNotification(1).WithVoid()),
		entry(&protocol.GetPromiseCommand{Key: "p", ResultCompletionID: 4}),
	}
	for i, e := range journal {
		e.AppendedAt = ms(time.Duration(i) * time.Millisecond)
		txn.PutJournalEntry(idA, uint32(i), e)
	}
	must(t, txn.PutStatus(idA, &store.Status{Phase: store.PhaseInvoked, Target: greeter, CreatedAt: ms(0), ModifiedAt: ms(time.Second),
		JournalLen: uint32(len(journal)), CommandCount: 4, DeploymentID: "dp_x", ProtocolVersion: 5, RunningAt: ms(0)}, nil))
	must(t, txn.Commit())

	txn = p1.Begin()
	txn.PutJournalEntry(idB, 0, entry(&protocol.InputCommand{Value: protocol.NewValue(nil)}))
	must(t, txn.PutStatus(idB, &store.Status{Phase: store.PhaseSuspended, Target: counter, InvokedBy: idStr(idA),
		CreatedAt: ms(time.Second), ModifiedAt: ms(2 * time.Second), JournalLen: 1, CommandCount: 1,
		WaitingCompletions: []uint32{1, 3}, WaitingSignals: []uint32{17}, WaitingNames: []string{"go"},
		DeploymentID: "dp_x", ProtocolVersion: 5}, nil))
	txn.SetLock("Counter", "k1", idB)
	seq, err := txn.PushInbox("Counter", "k1", idC)
	must(t, err)
	txn.PutJournalEntry(idC, 0, entry(&protocol.InputCommand{Value: protocol.NewValue(nil)}))
	must(t, txn.PutStatus(idC, &store.Status{Phase: store.PhaseInboxed, Target: counter, CreatedAt: ms(3 * time.Second),
		ModifiedAt: ms(3 * time.Second), InboxSeq: seq, JournalLen: 1, CommandCount: 1, InboxedAt: ms(3 * time.Second)}, nil))
	must(t, txn.PutStatus(idD, &store.Status{Phase: store.PhaseCompleted, Target: getter, IdempotencyKey: "idem-1",
		CreatedAt: ms(-10 * time.Second), ModifiedAt: ms(-9 * time.Second), CompletedAt: ms(-9 * time.Second),
		CompletionRetentionMs: 60_000, Result: &store.Result{Failed: true, Code: 409, Message: "killed"}}, nil))
	must(t, txn.PutStatus(idE, &store.Status{Phase: store.PhasePaused, Target: signup, CreatedAt: ms(4 * time.Second),
		ModifiedAt: ms(6 * time.Second), LastFailure: "boom", DeploymentID: "dp_x", ProtocolVersion: 5}, nil))
	must(t, txn.PutPromise("Signup", "u1", "p", &store.Promise{Completed: true, Result: store.Result{Value: []byte(`"ok"`)}}))
	must(t, txn.PutPromise("Signup", "u1", "q", &store.Promise{Completed: true, Result: store.Result{Failed: true, Code: 500, Message: "no"}}))
	must(t, txn.PutPromise("Signup", "u1", "r", &store.Promise{}))
	txn.SetState("Counter", "k1", []byte("count"), []byte("5"))
	txn.SetState("Counter", "k1", []byte("bin"), []byte{0xff, 0x00})
	txn.SetState("Counter", "k10", []byte("count"), []byte("7"))
	must(t, txn.Commit())
	return []*store.Partition{p0, p1}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestScan(t *testing.T) {
	parts := fixtureStore(t)
	a, b, c, d, e := idStr(idA), idStr(idB), idStr(idC), idStr(idD), idStr(idE)
	pk := func(id []byte) uint64 {
		parsed, err := ids.InvocationIDFromBytes(id)
		must(t, err)
		return uint64(parsed.PartitionKey)
	}
	invA := map[string]any{"id": a, "target": "Greeter/greet", "target_service_name": "Greeter", "target_handler_name": "greet",
		"target_service_ty": "service", "invoked_by": "ingress", "journal_size": int64(6), "journal_commands_size": int64(4),
		"created_at": at(0), "modified_at": at(time.Second), "running_at": at(0), "pinned_deployment_id": "dp_x",
		"pinned_service_protocol_version": int64(5)}
	invB := map[string]any{"id": b, "target": "Counter/k1/add", "target_service_name": "Counter", "target_service_key": "k1",
		"target_handler_name": "add", "target_service_ty": "virtual_object", "invoked_by": "service", "invoked_by_id": a,
		"invoked_by_target": "Greeter/greet", "invoked_by_service_name": "Greeter", "journal_size": int64(1),
		"journal_commands_size": int64(1), "created_at": at(time.Second), "modified_at": at(2 * time.Second),
		"pinned_deployment_id": "dp_x", "pinned_service_protocol_version": int64(5),
		// Lists of numbers; a named signal shows only in the future.
		"suspended_waiting_for_completions": []uint32{1, 3}, "suspended_waiting_for_signals": []uint32{17},
		"suspended_waiting_future_json": `{"Unknown":[{"Single":{"CompletionId":1}},{"Single":{"CompletionId":3}},{"Single":{"SignalIndex":17}},{"Single":{"SignalName":"go"}}]}`}
	// Queued: no journal size yet, as in Restate.
	invC := map[string]any{"id": c, "target": "Counter/k1/add", "target_service_name": "Counter", "target_service_key": "k1",
		"target_handler_name": "add", "target_service_ty": "virtual_object", "invoked_by": "ingress",
		"created_at": at(3 * time.Second), "modified_at": at(3 * time.Second), "inboxed_at": at(3 * time.Second)}
	invD := map[string]any{"id": d, "target": "Counter/k2/get", "target_service_name": "Counter", "target_service_key": "k2",
		"target_handler_name": "get", "target_service_ty": "virtual_object", "invoked_by": "ingress", "idempotency_key": "idem-1",
		"journal_size": int64(0), "journal_commands_size": int64(0), "created_at": at(-10 * time.Second), "modified_at": at(-9 * time.Second),
		"completed_at": at(-9 * time.Second), "completion_result": "failure", "completion_failure": "[409] killed", "completion_retention": "PT60S"}
	invE := map[string]any{"id": e, "target": "Signup/u1/run", "target_service_name": "Signup", "target_service_key": "u1",
		"target_handler_name": "run", "target_service_ty": "workflow", "invoked_by": "ingress", "journal_size": int64(0),
		"journal_commands_size": int64(0), "created_at": at(4 * time.Second), "modified_at": at(6 * time.Second),
		"pinned_deployment_id": "dp_x", "pinned_service_protocol_version": int64(5)}
	for _, r := range []map[string]any{invA, invB, invC, invD, invE} {
		id, err := ids.ParseInvocationID(r["id"].(string))
		must(t, err)
		r["partition_key"], r["created_using_restate_version"] = uint64(id.PartitionKey), "1.7.12"
	}
	with := func(r map[string]any, kv ...any) map[string]any {
		out := make(map[string]any, len(r)+len(kv)/2)
		for k, v := range r {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	k1, k10, u1 := uint64(ids.PartitionKeyOf("k1")), uint64(ids.PartitionKeyOf("k10")), uint64(ids.PartitionKeyOf("u1"))
	tests := []struct {
		table string
		want  []map[string]any
	}{{
		table: TableInvocation,
		want: []map[string]any{
			// Only a running invocation has invoker state: the deployment of its attempt.
			with(invA, "status", "running", "last_attempt_deployment_id", "dp_x"),
			with(invB, "status", "suspended"),
			with(invC, "status", "pending"),
			with(invD, "status", "completed"),
			// Nor a paused one: the failure it was paused with is Restate's invoker's, which
			// has forgotten it.
			with(invE, "status", "paused"),
		},
	}, {
		table: TableInvocationStatus,
		want: []map[string]any{
			with(invA, "status", "invoked"),
			with(invB, "status", "suspended"),
			with(invC, "status", "inboxed"),
			with(invD, "status", "completed"),
			with(invE, "status", "paused"),
		},
	}, {
		table: TableState,
		want: []map[string]any{
			{"partition_key": k1, "service_name": "Counter", "service_key": "k1", "key": "bin", "value": []byte{0xff, 0x00}, "key_length": int64(3), "value_length": int64(2)},
			{"partition_key": k1, "service_name": "Counter", "service_key": "k1", "key": "count", "value": []byte("5"), "value_utf8": "5", "key_length": int64(5), "value_length": int64(1)},
			{"partition_key": k10, "service_name": "Counter", "service_key": "k10", "key": "count", "value": []byte("7"), "value_utf8": "7", "key_length": int64(5), "value_length": int64(1)},
		},
	}, {
		// Numbered from 0 and without created_at, as Restate shows its inbox.
		table: TableInbox,
		want:  []map[string]any{{"partition_key": pk(idC), "service_name": "Counter", "service_key": "k1", "id": c, "sequence_number": int64(0)}},
	}, {
		// The paused workflow run E holds no lock that Restate would list.
		table: TableKeyedServiceStatus,
		want:  []map[string]any{{"partition_key": k1, "service_name": "Counter", "service_key": "k1", "invocation_id": b}},
	}, {
		table: TablePromise,
		want: []map[string]any{
			{"partition_key": u1, "service_name": "Signup", "service_key": "u1", "key": "p", "completed": true,
				"completion_success_value": []byte(`"ok"`), "completion_success_value_utf8": `"ok"`},
			{"partition_key": u1, "service_name": "Signup", "service_key": "u1", "key": "q", "completed": true, "completion_failure": "[500] no"},
			{"partition_key": u1, "service_name": "Signup", "service_key": "u1", "key": "r", "completed": false},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			got, err := Scan(context.Background(), parts, tt.table, rowscan.All)
			if err != nil {
				t.Fatal(err)
			}
			got, want := sortByID(got), sortByID(tt.want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rows\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestScanJournal(t *testing.T) {
	parts := fixtureStore(t)
	rows, err := Scan(context.Background(), parts, TableJournal, rowscan.All)
	if err != nil {
		t.Fatal(err)
	}
	a, b := idStr(idA), idStr(idB)
	var got []map[string]any
	for _, r := range rows {
		if r["id"] == a {
			r = maps.Clone(r)
			delete(r, "raw")
			got = append(got, r)
		}
	}
	parsed, err := ids.ParseInvocationID(a)
	must(t, err)
	pk := uint64(parsed.PartitionKey)
	wake := ms(time.Hour)
	// Version 2 rows as Restate fills them: no completed, invoked_*, sleep_wakeup_at or
	// promise_name; the entry as Restate's serde JSON; names of commands only.
	row := func(i int, ty string, length int, name *string, full, lite string) map[string]any {
		r := map[string]any{"partition_key": pk, "id": a, "index": int64(i), "entry_type": ty, "version": int64(2),
			"raw_length": int64(length), "appended_at": at(time.Duration(i) * time.Millisecond), "entry_json": full, "entry_lite_json": lite}
		if name != nil {
			r["name"] = *name
		}
		return r
	}
	empty, nap := "", "nap"
	want := []map[string]any{
		row(0, "Command: Input", 8, &empty, `{"Command":{"Input":{"headers":[],"payload":[34,104,105,34],"name":""}}}`, `{"Command":{"Input":{}}}`),
		row(1, "Command: Sleep", 14, &nap,
			fmt.Sprintf(`{"Command":{"Sleep":{"wake_up_time":%d,"completion_id":1,"name":"nap"}}}`, wake),
			fmt.Sprintf(`{"Command":{"Sleep":{"wake_up_time":%d,"completion_id":1,"name":"nap"}}}`, wake)),
		row(2, "Command: Call", 22, &empty,
			`{"Command":{"Call":{"request":{"invocation_id":"`+b+`","invocation_target":{"VirtualObject":{"name":"Counter","key":"k1","handler":"add","handler_ty":"Exclusive","scope":null}},`+
				`"span_context":{"span_context":{"trace_id":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"span_id":[0,0,0,0,0,0,0,0],"trace_flags":0,"is_remote":false,"trace_state":""},"cause":null},`+
				`"parameter":[],"headers":[],"idempotency_key":null,"completion_retention_duration":{"secs":86400,"nanos":0},"journal_retention_duration":{"secs":86400,"nanos":0}},`+
				`"invocation_id_completion_id":2,"result_completion_id":3,"name":""}}}`,
			`{"Command":{"Call":{"invocation_id":"`+b+`","invocation_target":{"VirtualObject":{"name":"Counter","key":"k1","handler":"add","handler_ty":"Exclusive","scope":null}},"invocation_id_completion_id":2,"result_completion_id":3}}}`),
		row(3, "Notification: CallInvocationId", 43, nil,
			`{"Notification":{"Completion":{"CallInvocationId":{"completion_id":2,"invocation_id":"`+b+`"}}}}`,
			`{"Notification":{"ty":{"Completion":"CallInvocationId"},"id":{"CompletionId":2},"result":"InvocationId"}}`),
		row(4, "Notification: Sleep", 4, nil, `{"Notification":{"Completion":{"Sleep":{"completion_id":1}}}}`,
			`{"Notification":{"ty":{"Completion":"Sleep"},"id":{"CompletionId":1},"result":"Void"}}`),
		row(5, "Command: GetPromise", 5, &empty, `{"Command":{"GetPromise":{"key":"p","completion_id":4,"name":""}}}`,
			`{"Command":{"GetPromise":{"key":"p","completion_id":4}}}`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("journal of A\n got %v\nwant %v", got, want)
	}
	// B and C have their Input entries, stored without an append time; every row carries the
	// raw payload and its decoding.
	if len(rows) != len(want)+2 {
		t.Fatalf("%d journal rows, want %d", len(rows), len(want)+2)
	}
	for _, r := range rows {
		if _, ok := r["raw"].([]byte); !ok {
			t.Errorf("row %v has no raw payload", r)
		}
		if s, _ := r["entry_json"].(string); !json.Valid([]byte(s)) {
			t.Errorf("row %v has entry_json %q", r, s)
		}
	}
}

func TestScanErrors(t *testing.T) {
	parts := fixtureStore(t)
	if _, err := Scan(context.Background(), parts, "sys_nothing", rowscan.All); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("unknown table: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, parts, TableState, rowscan.All); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: %v", err)
	}
	if rows, err := Scan(context.Background(), nil, TableState, rowscan.All); err != nil || len(rows) != 0 {
		t.Fatalf("no partitions: %v %v", rows, err)
	}
}

// storeSource is a Source over partitions, as the worker serves them.
type storeSource []*store.Partition

func (s storeSource) Rows(ctx context.Context, table string, scan rowscan.Scan) ([]map[string]any, error) {
	return Scan(ctx, s, table, scan)
}

type notReady struct{}

func (notReady) Rows(context.Context, string, rowscan.Scan) ([]map[string]any, error) {
	return nil, ErrNotReady
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(storeSource(fixtureStore(t))))
	t.Cleanup(srv.Close)
	idle := httptest.NewServer(Handler(notReady{}))
	t.Cleanup(idle.Close)
	get := func(t *testing.T, base, method, query string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+RowsPath+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, base, method, query string
		status                    int
		contains                  string
	}{
		{"state", srv.URL, http.MethodGet, "?table=state", 200,
			// binary as base64, text as is, integers as numbers
			`{"key":"bin","key_length":3,"partition_key":5344419171240651093,"service_key":"k1","service_name":"Counter","value":"/wA=","value_length":2}`},
		{"timestamps", srv.URL, http.MethodGet, "?table=sys_invocation", 200, `"created_at":"2026-11-21T21:38:34.734Z"`},
		{"booleans", srv.URL, http.MethodGet, "?table=sys_promise", 200, `"completed":false`},
		{"unknown table", srv.URL, http.MethodGet, "?table=nope", 400, "unknown introspection table"},
		{"wrong method", srv.URL, http.MethodPost, "?table=state", 405, "method not allowed"},
		{"not started", idle.URL, http.MethodGet, "?table=state", 503, "worker not started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, tt.base, tt.method, tt.query)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("status %d body %s; want %d containing %s", status, body, tt.status, tt.contains)
			}
		})
	}
}

// sortByID orders rows by id, then by their other identifying columns, for comparison.
func sortByID(rows []map[string]any) []map[string]any {
	out := slices.Clone(rows)
	key := func(r map[string]any) string {
		var parts []string
		for _, c := range []string{"id", "service_name", "service_key", "key"} {
			if s, ok := r[c].(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "\x00")
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(key(a), key(b)) })
	return out
}
