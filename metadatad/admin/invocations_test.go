package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
)

// manageWorkers answers operator actions with a fixed outcome per invocation and records the
// requests.
type manageWorkers struct {
	patchWorkers
	outcomes map[string]rpc.ManageOutcome // by invocation id string; missing: not found
	mu       sync.Mutex
	got      []*rpc.ManageRequest
}

func (w *manageWorkers) Route(uint32) (rpc.Controller, error) { return w, nil }
func (w *manageWorkers) Manage(_ context.Context, req *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, req)
	id, err := ids.InvocationIDFromBytes(req.InvocationID)
	if err != nil {
		return "", err
	}
	if o, ok := w.outcomes[id.String()]; ok {
		return o, nil
	}
	return rpc.ManageNotFound, nil
}

func TestPurgeJournal(t *testing.T) {
	t.Parallel()
	completed, running, unknown := ids.NewInvocationID(7), ids.NewInvocationID(8), ids.NewInvocationID(9)
	workers := &manageWorkers{outcomes: map[string]rpc.ManageOutcome{
		completed.String(): rpc.ManageDone,
		running.String():   rpc.ManageNotCompleted,
	}}
	srv := httptest.NewServer(NewHandler(Options{Store: newMemStore(), Workers: workers}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv}

	for _, path := range []string{"/invocations/", "/v4/invocations/"} {
		r := admin.do(t, http.MethodPatch, path+completed.String()+"/purge-journal", "")
		if r.status != http.StatusOK || len(r.body) != 0 {
			t.Fatalf("PATCH %s…/purge-journal of a completed invocation: %d %s, want 200 without body", path, r.status, r.body)
		}
	}
	if req := workers.got[0]; req.Op != rpc.OpPurgeJournal || req.Partition != ids.PartitionOf(completed.PartitionKey, 4) {
		t.Fatalf("request sent: %+v", req)
	}
	// restate-server 1.7.12's answers.
	expectError(t, admin.do(t, http.MethodPatch, "/invocations/"+running.String()+"/purge-journal", ""), 409,
		"The invocation '"+running.String()+"' is not yet completed.", nil)
	expectError(t, admin.do(t, http.MethodPatch, "/invocations/"+unknown.String()+"/purge-journal", ""), 404,
		"The requested invocation '"+unknown.String()+"' does not exist", nil)
	expectError(t, admin.do(t, http.MethodPatch, "/invocations/inv_1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/purge-journal", ""), 400,
		"The request field 'invocation_id' is invalid. Reason: base62 decode error", nil)
	if r := admin.do(t, http.MethodPost, "/invocations/"+completed.String()+"/purge-journal", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
}

// TestResumeOfAnInvocationNotStarted: restate-server 1.7.12 answers a resume of an inboxed
// or scheduled invocation 425 (it was a 200 here).
func TestResumeOfAnInvocationNotStarted(t *testing.T) {
	t.Parallel()
	queued := ids.NewInvocationID(7)
	workers := &manageWorkers{outcomes: map[string]rpc.ManageOutcome{queued.String(): rpc.ManageNotStarted}}
	srv := httptest.NewServer(NewHandler(Options{Store: newMemStore(), Workers: workers}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv}
	expectError(t, admin.do(t, http.MethodPatch, "/invocations/"+queued.String()+"/resume", ""), http.StatusTooEarly,
		"The invocation '"+queued.String()+"' is either inboxed or scheduled, cannot be resumed.", nil)
}

// TestDeleteInvocationMode: the deprecated DELETE /invocations/{id}?mode= reads the mode as
// restate-server 1.7.12's serde does (lower-case or capitalised variant names) and refuses
// any other value, an empty one included, in plain text.
func TestDeleteInvocationMode(t *testing.T) {
	t.Parallel()
	id := ids.NewInvocationID(7)
	workers := &manageWorkers{outcomes: map[string]rpc.ManageOutcome{id.String(): rpc.ManageDone}}
	srv := httptest.NewServer(NewHandler(Options{Store: newMemStore(), Workers: workers}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv}
	for query, op := range map[string]rpc.ManageOp{
		"": rpc.OpCancel, "?mode=cancel": rpc.OpCancel, "?mode=Cancel": rpc.OpCancel, "?mode=kill": rpc.OpKill,
		"?mode=Kill": rpc.OpKill, "?mode=purge": rpc.OpPurge, "?mode=Purge": rpc.OpPurge,
	} {
		workers.mu.Lock()
		workers.got = nil
		workers.mu.Unlock()
		r := admin.do(t, http.MethodDelete, "/invocations/"+id.String()+query, "")
		if r.status != http.StatusAccepted || len(workers.got) != 1 || workers.got[0].Op != op {
			t.Errorf("DELETE %s: %d %s, requests %+v; want 202 and one %s", query, r.status, r.body, workers.got, op)
		}
	}
	const variants = ", expected one of `Cancel`, `cancel`, `Kill`, `kill`, `Purge`, `purge`"
	for _, mode := range []string{"", "bogus", "KILL", "pause"} {
		expectError(t, admin.do(t, http.MethodDelete, "/invocations/"+id.String()+"?mode="+mode, ""), 400,
			"Failed to deserialize query string: mode: unknown variant `"+mode+"`"+variants, nil)
	}
	// The query string is read before the id.
	expectError(t, admin.do(t, http.MethodDelete, "/invocations/abc?mode=bogus", ""), 400,
		"Failed to deserialize query string: mode: unknown variant `bogus`"+variants, nil)
}

// restartWorkers answers restarts with a fixed outcome per invocation.
type restartWorkers struct {
	manageWorkers
	restarts map[string]rpc.RestartOutcome // by invocation id string; missing: not found
	newID    ids.InvocationID
}

func (w *restartWorkers) Route(uint32) (rpc.Controller, error) { return w, nil }
func (w *restartWorkers) RestartAsNew(_ context.Context, req *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	id, err := ids.InvocationIDFromBytes(req.InvocationID)
	if err != nil {
		return nil, err
	}
	o, ok := w.restarts[id.String()]
	if !ok {
		return &rpc.RestartAsNewResponse{Outcome: rpc.RestartNotFound}, nil
	}
	resp := &rpc.RestartAsNewResponse{Outcome: o}
	if o == rpc.RestartDone {
		resp.NewInvocationID = w.newID.Bytes()
	}
	return resp, nil
}

func TestRestartAsNew(t *testing.T) {
	t.Parallel()
	var (
		completed, running, queued = ids.NewInvocationID(1), ids.NewInvocationID(2), ids.NewInvocationID(3)
		purged, workflow, unknown  = ids.NewInvocationID(4), ids.NewInvocationID(5), ids.NewInvocationID(6)
	)
	workers := &restartWorkers{newID: ids.NewInvocationID(1), restarts: map[string]rpc.RestartOutcome{
		completed.String(): rpc.RestartDone,
		running.String():   rpc.RestartStillRunning,
		queued.String():    rpc.RestartNotStarted,
		purged.String():    rpc.RestartMissingInput,
		workflow.String():  rpc.RestartUnsupported,
	}}
	srv := httptest.NewServer(NewHandler(Options{Store: newMemStore(), Workers: workers}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv}

	for _, path := range []string{"/invocations/", "/v3/invocations/"} {
		for _, query := range []string{"", "?from=0", "?deployment=latest"} {
			r := admin.do(t, http.MethodPatch, path+completed.String()+"/restart-as-new"+query, "")
			want := `{"new_invocation_id":"` + workers.newID.String() + `"}`
			if r.status != http.StatusOK || r.header.Get("content-type") != "application/json" || string(r.body) != want {
				t.Fatalf("restart %s%s: %d %s, want 200 %s", path, query, r.status, r.body, want)
			}
		}
	}
	// restate-server 1.7.12's answers.
	for _, c := range []struct {
		id      ids.InvocationID
		query   string
		status  int
		message string
	}{
		{unknown, "", 404, "The requested invocation '" + unknown.String() + "' does not exist"},
		{running, "", 409, "The invocation '" + running.String() + "' is still running."},
		{queued, "", 425, "The invocation '" + queued.String() + "' cannot be restarted because it's not running yet."},
		{purged, "", 410, "The invocation '" + purged.String() + "' cannot be restarted because the input is not available. This indicates that the journal was already purged, or not retained at all."},
		{completed, "?from=abc", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed, "?from=2", 400, "The query parameter 'from' is invalid. Reason: restarting from a journal prefix is not supported"},
		{completed, "?deployment=bogus", 400, "The query parameter 'deployment' is invalid. Reason: bad format"},
		{completed, "?deployment=keep", 400, "only deployment=latest is supported"},
	} {
		expectError(t, admin.do(t, http.MethodPatch, "/invocations/"+c.id.String()+"/restart-as-new"+c.query, ""), c.status, c.message, nil)
	}
	// A 422 in JSON, unlike the plain-text body rejections expectError takes 422s for.
	r := admin.do(t, http.MethodPatch, "/invocations/"+workflow.String()+"/restart-as-new", "")
	if want := `{"message":"Restarting the invocation '` + workflow.String() + `' is not supported. Restarting workflows is not supported, and restarting invocations created using the old service protocol.","restate_code":null}`; r.status != http.StatusUnprocessableEntity || string(r.body) != want {
		t.Fatalf("restart of a workflow: %d %s, want 422 %s", r.status, r.body, want)
	}
	if r := admin.do(t, http.MethodGet, "/invocations/"+completed.String()+"/restart-as-new", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
}
