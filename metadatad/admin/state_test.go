package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
)

// patchWorkers records the state patches the admin sends; the first notLeader calls answer
// rpc.ErrNotLeader, as while leadership moves.
type patchWorkers struct {
	mu        sync.Mutex
	notLeader int
	silent    bool // never answers, like a frozen leader
	got       []*rpc.PatchStateRequest
}

func (w *patchWorkers) NumPartitions() uint32 { return 4 }
func (w *patchWorkers) Route(uint32) (rpc.Controller, error) {
	return w, nil
}
func (w *patchWorkers) Attach(context.Context, *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	return nil, rpc.ErrNotFound
}
func (w *patchWorkers) Signal(context.Context, *rpc.SignalRequest) error { return rpc.ErrNotFound }
func (w *patchWorkers) Manage(context.Context, *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	return rpc.ManageNotFound, nil
}
func (w *patchWorkers) RestartAsNew(context.Context, *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	return &rpc.RestartAsNewResponse{Outcome: rpc.RestartNotFound}, nil
}
func (w *patchWorkers) PatchState(ctx context.Context, req *rpc.PatchStateRequest) error {
	if w.silent {
		<-ctx.Done()
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.notLeader > 0 {
		w.notLeader--
		return rpc.ErrNotLeader
	}
	w.got = append(w.got, req)
	return nil
}

func TestModifyServiceState(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	store := newMemStore()
	workers := &patchWorkers{notLeader: 2}
	srv := httptest.NewServer(NewHandler(Options{Store: store, Workers: workers, HTTPClient: &http.Client{Transport: h2c.NewTransport()}}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv, store: store}
	admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)

	// The restate CLI sends bytes as arrays of numbers; a string is taken as its UTF-8 bytes.
	r := admin.do(t, http.MethodPost, "/v3/services/Counter/state", `{"object_key":"k","version":"v1","new_state":{"count":[49,50],"name":"ann"}}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	if len(workers.got) != 1 {
		t.Fatalf("patches sent: %d", len(workers.got))
	}
	p := workers.got[0]
	if p.Service != "Counter" || p.Key != "k" || p.Version == nil || *p.Version != "v1" ||
		p.Partition != ids.PartitionOf(ids.PartitionKeyOf("k"), 4) || len(p.State) != 2 ||
		string(p.State[0].Key) != "count" || string(p.State[0].Value) != "12" ||
		string(p.State[1].Key) != "name" || string(p.State[1].Value) != "ann" {
		t.Fatalf("patch sent: %+v", p)
	}
	// A workflow has state too; the empty key is a key.
	if r := admin.do(t, http.MethodPost, "/services/Signup/state", `{"object_key":"","new_state":{}}`); r.status != http.StatusAccepted {
		t.Fatalf("workflow patch: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		name, path, body string
		status           int
		message          string
	}{
		{"a service without state", "/services/Greeter/state", `{"object_key":"k","new_state":{}}`, 400, "Cannot modify state for service type Service"},
		{"an unknown service with state", "/services/Nope/state", `{"object_key":"k","new_state":{"a":[1]}}`, 404, "The requested service 'Nope' does not exist"},
		{"no object key", "/services/Counter/state", `{"new_state":{}}`, 422, "missing field `object_key`"},
		{"no new state", "/services/Counter/state", `{"object_key":"k"}`, 422, "missing field `new_state`"},
		// serde's words for values that are not bytes, the first in the body's order.
		{"a byte out of range", "/services/Counter/state", `{"object_key":"k","new_state":{"a":[256]}}`, 422, "Failed to deserialize the JSON body into the target type: new_state.a[0]: invalid value: integer `256`, expected u8"},
		{"a negative byte", "/services/Counter/state", `{"object_key":"k","new_state":{"a":[1,-1]}}`, 422, "new_state.a[1]: invalid value: integer `-1`, expected u8"},
		{"a byte that is a string", "/services/Counter/state", `{"object_key":"k","new_state":{"a":["x"]}}`, 422, "new_state.a[0]: invalid type: string \"x\", expected u8"},
		{"a null value", "/services/Counter/state", `{"object_key":"k","new_state":{"b":[1],"a":null}}`, 422, "new_state.a: invalid type: null, expected byte array"},
		{"a number value", "/services/Counter/state", `{"object_key":"k","new_state":{"z":5,"a":true}}`, 422, "new_state.z: invalid type: integer `5`, expected byte array"},
		{"a map value", "/services/Counter/state", `{"new_state":{"a":{}}}`, 422, "new_state.a: invalid type: map, expected byte array"},
		{"new state not a map", "/services/Counter/state", `{"object_key":"k","new_state":[]}`, 422, "new_state: invalid type: sequence, expected a map"},
		{"new state null", "/services/Counter/state", `{"object_key":"k","new_state":null}`, 422, "new_state: invalid type: null, expected a map"},
		{"not JSON", "/services/Counter/state", `{`, 400, "Failed to parse"},
		{"a scope", "/services/Counter/state", `{"object_key":"k","scope":"s","new_state":{}}`, 400, "scope"},
	} {
		r := admin.do(t, http.MethodPost, c.path, c.body)
		if r.status != c.status || !strings.Contains(string(r.body), c.message) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, r.status, r.body, c.status, c.message)
		}
	}
	// The state of a service no longer registered can still be cleared.
	if r := admin.do(t, http.MethodPost, "/services/Gone/state", `{"object_key":"k","new_state":{}}`); r.status != http.StatusAccepted {
		t.Fatalf("clearing a removed service's state: %d %s", r.status, r.body)
	}
	if r := admin.do(t, http.MethodGet, "/services/Counter/state", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	if len(workers.got) != 3 {
		t.Fatalf("%d patches reached the worker, want 3", len(workers.got))
	}
}

// A leader that never answers holds an admin request for workerCallTimeout at most; the 503
// says the change may still take effect.
func TestModifyStateOnASilentLeader(t *testing.T) {
	old := workerCallTimeout
	workerCallTimeout = 200 * time.Millisecond
	t.Cleanup(func() { workerCallTimeout = old })
	sdk := startSDK(t)
	store := newMemStore()
	srv := httptest.NewServer(NewHandler(Options{Store: store, Workers: &patchWorkers{silent: true}, HTTPClient: &http.Client{Transport: h2c.NewTransport()}}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv, store: store}
	admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)
	start := time.Now()
	r := admin.do(t, http.MethodPost, "/services/Counter/state", `{"object_key":"k","new_state":{}}`)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "may still take effect") || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %d %s", time.Since(start), r.status, r.body)
	}
}
