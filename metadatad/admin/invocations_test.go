package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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

// restartWorkers answers restarts with a fixed outcome per invocation, and keeps the
// requests.
type restartWorkers struct {
	manageWorkers
	restarts map[string]rpc.RestartOutcome // by invocation id string; missing: not found
	newID    ids.InvocationID
	mu       sync.Mutex
	requests []rpc.RestartAsNewRequest
}

func (w *restartWorkers) Route(uint32) (rpc.Controller, error) { return w, nil }
func (w *restartWorkers) RestartAsNew(_ context.Context, req *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	w.mu.Lock()
	w.requests = append(w.requests, *req)
	w.mu.Unlock()
	id, err := ids.InvocationIDFromBytes(req.InvocationID)
	if err != nil {
		return nil, err
	}
	o, ok := w.restarts[id.String()]
	if !ok {
		return &rpc.RestartAsNewResponse{Outcome: rpc.RestartNotFound}, nil
	}
	resp := &rpc.RestartAsNewResponse{Outcome: o}
	switch o {
	case rpc.RestartDone:
		resp.NewInvocationID = w.newID.Bytes()
	case rpc.RestartIncompatibleDeployment:
		resp.PinnedProtocolVersion, resp.DeploymentID, resp.MinProtocolVersion, resp.MaxProtocolVersion = 6, "dp_17rJ6mE2nbWp5BWgOwbmMIp", 5, 5
	}
	return resp, nil
}

func (w *restartWorkers) last() (rpc.RestartAsNewRequest, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.requests) == 0 {
		return rpc.RestartAsNewRequest{}, 0
	}
	return w.requests[len(w.requests)-1], len(w.requests)
}

func TestRestartAsNew(t *testing.T) {
	t.Parallel()
	var (
		completed, running, queued = ids.NewInvocationID(1), ids.NewInvocationID(2), ids.NewInvocationID(3)
		purged, workflow, unknown  = ids.NewInvocationID(4), ids.NewInvocationID(5), ids.NewInvocationID(6)
		outOfRange, noCompletion   = ids.NewInvocationID(7), ids.NewInvocationID(8)
		noDeployment, incompatible = ids.NewInvocationID(9), ids.NewInvocationID(10)
	)
	workers := &restartWorkers{newID: ids.NewInvocationID(1), restarts: map[string]rpc.RestartOutcome{
		completed.String():    rpc.RestartDone,
		running.String():      rpc.RestartStillRunning,
		queued.String():       rpc.RestartNotStarted,
		purged.String():       rpc.RestartMissingInput,
		workflow.String():     rpc.RestartUnsupported,
		outOfRange.String():   rpc.RestartIndexOutOfRange,
		noCompletion.String(): rpc.RestartCopyRangeInvalid,
		noDeployment.String(): rpc.RestartDeploymentNotFound,
		incompatible.String(): rpc.RestartIncompatibleDeployment,
	}}
	srv := httptest.NewServer(NewHandler(Options{Store: newMemStore(), Workers: workers}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv}

	// The parameters as restate-server 1.7.12 reads them (serde_urlencoded): `from` an
	// unsigned 32-bit number (a leading + too), `deployment` keep, latest (also as the
	// variant's name) or an id; other keys are ignored, empty pairs skipped.
	dp := ids.NewDeploymentID()
	for _, path := range []string{"/invocations/", "/v3/invocations/"} {
		for query, want := range map[string]rpc.RestartAsNewRequest{
			"":                           {Deployment: "latest"},
			"?from=0":                    {Deployment: "latest"},
			"?deployment=latest":         {Deployment: "latest"},
			"?deployment=Latest":         {Deployment: "latest"},
			"?from=3":                    {From: 3, Deployment: "latest"},
			"?from=%2B3&deployment=Keep": {From: 3, Deployment: "keep"},
			"?from=4294967295":           {From: 4294967295, Deployment: "latest"},
			"?deployment=keep":           {Deployment: "keep"},
			"?deployment=kee%70":         {Deployment: "keep"},
			"?deployment=" + dp:          {Deployment: dp},
			"?FROM=9&foo=1&&from=2&":     {From: 2, Deployment: "latest"},
		} {
			r := admin.do(t, http.MethodPatch, path+completed.String()+"/restart-as-new"+query, "")
			body := `{"new_invocation_id":"` + workers.newID.String() + `"}`
			if r.status != http.StatusOK || r.header.Get("content-type") != "application/json" || string(r.body) != body {
				t.Fatalf("restart %s%s: %d %s, want 200 %s", path, query, r.status, r.body, body)
			}
			got, _ := workers.last()
			if got.From != want.From || got.Deployment != want.Deployment || string(got.InvocationID) != string(completed.Bytes()) {
				t.Fatalf("restart %s%s asked the worker for %+v, want from %d on %q", path, query, got, want.From, want.Deployment)
			}
		}
	}
	// restate-server 1.7.12's answers, in its order: the query string, the invocation id,
	// the deployment id, then what the partition leader says.
	unknownDeployment := ids.NewDeploymentID()
	for _, c := range []struct {
		id      string
		query   string
		status  int
		message string
	}{
		{unknown.String(), "", 404, "The requested invocation '" + unknown.String() + "' does not exist"},
		{unknown.String(), "?from=99&deployment=" + unknownDeployment, 404, "The requested invocation '" + unknown.String() + "' does not exist"},
		{running.String(), "?from=99", 409, "The invocation '" + running.String() + "' is still running."},
		{queued.String(), "", 425, "The invocation '" + queued.String() + "' cannot be restarted because it's not running yet."},
		{purged.String(), "", 410, "The invocation '" + purged.String() + "' cannot be restarted because the input is not available. This indicates that the journal was already purged, or not retained at all."},
		{outOfRange.String(), "?from=4294967295", 400, "The given index is out of range of currently stored journal for invocation '" + outOfRange.String() + "'."},
		{noCompletion.String(), "?from=3", 400, "The prefix of the journal '" + noCompletion.String() + "' up to 'from' (included) contains some Commands without respective Completions."},
		{noDeployment.String(), "?deployment=" + unknownDeployment, 400, "The given deployment was not found when trying to restart as new the invocation '" + noDeployment.String() + "'."},
		{incompatible.String(), "?deployment=dp_17rJ6mE2nbWp5BWgOwbmMIp", 400, "The invocation '" + incompatible.String() + "' is running on protocol version '6', while the chosen deployment 'dp_17rJ6mE2nbWp5BWgOwbmMIp' supports the range 5..=5."},
		{completed.String(), "?from=abc", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=-1", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=+1", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=%2B", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=%zz", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=1=2", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=", 400, "Failed to deserialize query string: from: cannot parse integer from empty string"},
		{completed.String(), "?from", 400, "Failed to deserialize query string: from: cannot parse integer from empty string"},
		{completed.String(), "?from=4294967296", 400, "Failed to deserialize query string: from: number too large to fit in target type"},
		{completed.String(), "?from=1&from=2", 400, "Failed to deserialize query string: duplicate field `from`"},
		{completed.String(), "?from=abc&from=1", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{completed.String(), "?from=1&deployment=bogus&from=x", 400, "Failed to deserialize query string: duplicate field `from`"},
		{completed.String(), "?deployment=keep&deployment=latest", 400, "Failed to deserialize query string: duplicate field `deployment`"},
		{"abc", "?from=abc", 400, "Failed to deserialize query string: from: invalid digit found in string"},
		{"abc", "?deployment=bogus", 400, "The request field 'invocation_id' is invalid. Reason: bad format"},
		{completed.String(), "?deployment=bogus", 400, "The query parameter 'deployment' is invalid. Reason: bad format"},
		{completed.String(), "?deployment=LATEST", 400, "The query parameter 'deployment' is invalid. Reason: bad format"},
		{completed.String(), "?deployment=keep%20", 400, "The query parameter 'deployment' is invalid. Reason: bad format"},
		{completed.String(), "?deployment=", 400, "The query parameter 'deployment' is invalid. Reason: bad length"},
		{completed.String(), "?deployment", 400, "The query parameter 'deployment' is invalid. Reason: bad length"},
		{completed.String(), "?deployment=dp_1", 400, "The query parameter 'deployment' is invalid. Reason: bad length"},
		{completed.String(), "?deployment=dp_15Ijx8dSe4emaNGJRDZZQq!", 400, "The query parameter 'deployment' is invalid. Reason: base62 decode error"},
		{completed.String(), "?deployment=dq_15Ijx8dSe4emaNGJRDZZQqt", 400, "The query parameter 'deployment' is invalid. Reason: unrecognized resource type: dq"},
		{completed.String(), "?deployment=dp_zzzzzzzzzzzzzzzzzzzzzzz", 400, "The query parameter 'deployment' is invalid. Reason: unrecognized codec version"},
	} {
		_, before := workers.last()
		r := admin.do(t, http.MethodPatch, "/invocations/"+c.id+"/restart-as-new"+c.query, "")
		expectError(t, r, c.status, c.message, nil)
		if !strings.HasPrefix(c.message, "Failed") && !strings.Contains(string(r.body), `"message":"`+c.message+`"`) {
			t.Fatalf("%s%s: body %s, want the message %q whole", c.id, c.query, r.body, c.message)
		}
		if _, after := workers.last(); (c.status == 400 && c.id != noCompletion.String() && c.id != outOfRange.String() &&
			c.id != noDeployment.String() && c.id != incompatible.String()) != (after == before) {
			t.Fatalf("%s%s: the request reached the worker: %v", c.id, c.query, after != before)
		}
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
