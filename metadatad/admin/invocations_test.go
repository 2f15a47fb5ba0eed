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
