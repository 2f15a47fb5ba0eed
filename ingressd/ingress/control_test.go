package ingress

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// controlWorker is a fake partition leader for the control endpoints: it records attach and
// signal requests and answers every attach with the output `"done"`.
type controlWorker struct {
	fakeInvoker
	mu        sync.Mutex
	attach    []*rpc.AttachRequest
	signals   []*rpc.SignalRequest
	signalErr error // what Signal answers
}

func (c *controlWorker) Attach(_ context.Context, r *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attach = append(c.attach, r)
	return &rpc.InvokeResponse{InvocationID: r.InvocationID, Output: []byte(`"done"`)}, nil
}

func (c *controlWorker) Signal(_ context.Context, r *rpc.SignalRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.signals = append(c.signals, r)
	return c.signalErr
}

func (c *controlWorker) attached() []*rpc.AttachRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*rpc.AttachRequest(nil), c.attach...)
}

func (c *controlWorker) signalled() []*rpc.SignalRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*rpc.SignalRequest(nil), c.signals...)
}

func newControlHandler(t *testing.T) (*handler, *controlWorker) {
	t.Helper()
	wk := &controlWorker{}
	reg := testRegistry()
	h := newHandler(Options{
		Schema:        func() *schema.Registry { return reg },
		NumPartitions: func() uint32 { return testPartitions },
		Route:         func(uint32) (rpc.Worker, error) { return wk, nil },
	})
	return h, wk
}

// TestTargetBody covers the bodies of POST /restate/attach, /restate/output and
// /restate/lookup: Restate's flat form tagged by "target" (answers observed on
// restate-server 1.7.12), and our earlier nested form.
func TestTargetBody(t *testing.T) {
	t.Parallel()
	anID := ids.NewInvocationID(ids.PartitionKeyOf("x")).String()
	wf := ids.WorkflowInvocationID(ids.PartitionKeyOf("e1"), "Signup", "e1").String()
	svc := idempotentID("Greeter", false, "", "Greet", "ik1").String()
	obj := idempotentID("Counter", true, "c1", "Add", "ik2").String()
	emptyKey := idempotentID("Counter", true, "", "Add", "ik2").String()
	// A present key makes the target keyed whatever the schema says, as in Restate.
	keyedUnknown := idempotentID("Nope", true, "", "h", "ik").String()
	tests := []struct {
		name    string
		body    string
		status  int
		wantID  string // the id looked up (and attached to)
		message string // for refusals
	}{
		{name: "flat invocation", body: `{"target":"invocation","invocationId":"` + anID + `"}`, status: 200, wantID: anID},
		{name: "flat workflow", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1"}`, status: 200, wantID: wf},
		{name: "flat workflow, target last", body: `{"workflowName":"Signup","workflowKey":"e1","target":"workflow"}`, status: 200, wantID: wf},
		{name: "flat idempotent service call", body: `{"target":"idempotentInvocation","service":"Greeter","handler":"Greet","idempotencyKey":"ik1"}`, status: 200, wantID: svc},
		{name: "flat idempotent object call", body: `{"target":"idempotentInvocation","service":"Counter","key":"c1","handler":"Add","idempotencyKey":"ik2"}`, status: 200, wantID: obj},
		{name: "null key is no key", body: `{"target":"idempotentInvocation","service":"Greeter","key":null,"handler":"Greet","idempotencyKey":"ik1"}`, status: 200, wantID: svc},
		{name: "empty key is a key", body: `{"target":"idempotentInvocation","service":"Counter","key":"","handler":"Add","idempotencyKey":"ik2"}`, status: 200, wantID: emptyKey},
		{name: "key given for an unknown service", body: `{"target":"idempotentInvocation","service":"Nope","key":"","handler":"h","idempotencyKey":"ik"}`, status: 200, wantID: keyedUnknown},
		{name: "unknown fields are ignored", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1","extra":1}`, status: 200, wantID: wf},
		{name: "scope is ignored for an invocation id", body: `{"target":"invocation","invocationId":"` + anID + `","scope":"s1"}`, status: 200, wantID: anID},
		{name: "null scope is no scope", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1","scope":null}`, status: 200, wantID: wf},
		{name: "nested workflow", body: `{"target":{"workflow":{"workflowName":"Signup","workflowKey":"e1"}}}`, status: 200, wantID: wf},
		{name: "nested idempotent call", body: `{"target":{"idempotentInvocation":{"service":"Counter","key":"c1","handler":"Add","idempotencyKey":"ik2"}}}`, status: 200, wantID: obj},
		{name: "nested invocation", body: `{"target":{"invocation":{"invocationId":"` + anID + `"}}}`, status: 200, wantID: anID},

		{name: "scoped workflow", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1","scope":"s1"}`, status: 400, message: "scoped invocations require vqueues to be enabled"},
		{name: "scoped idempotent call", body: `{"target":"idempotentInvocation","service":"Greeter","handler":"Greet","idempotencyKey":"ik1","scope":"s1"}`, status: 400, message: "scoped invocations require vqueues to be enabled"},
		{name: "empty scope", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1","scope":""}`, status: 400, message: "bad scope value: value cannot be empty"},
		{name: "scope with a blank", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1","scope":"a b"}`, status: 400, message: "bad scope value: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{name: "scope too long", body: `{"target":"workflow","workflowName":"Signup","workflowKey":"e1","scope":"` + strings.Repeat("s", 37) + `"}`, status: 400, message: "bad scope value: value too long: 37 bytes (max 36)"},
		{name: "bad invocation id", body: `{"target":"invocation","invocationId":"bad"}`, status: 400, message: "bad invocation id 'bad': bad format"},
		{name: "unknown form", body: `{"target":"foo"}`, status: 400, message: "bad request body: unknown variant `foo`, expected one of `workflow`, `idempotentInvocation`, `invocation`"},
		{name: "missing target", body: `{"workflowName":"Signup"}`, status: 400, message: "bad request body: missing field `target`"},
		{name: "missing workflow key", body: `{"target":"workflow","workflowName":"Signup"}`, status: 400, message: "bad request body: missing field `workflowKey`"},
		{name: "missing idempotency key", body: `{"target":"idempotentInvocation","service":"Greeter","handler":"Greet"}`, status: 400, message: "bad request body: missing field `idempotencyKey`"},
		{name: "missing invocation id", body: `{"target":"invocation"}`, status: 400, message: "bad request body: missing field `invocationId`"},
		{name: "wrong field type", body: `{"target":"workflow","workflowName":"Signup","workflowKey":5}`, status: 400, message: "bad request body: invalid type: number, expected string for field `workflowKey`"},
		{name: "nested form with two targets", body: `{"target":{"workflow":{},"invocation":{}}}`, status: 400},
		{name: "not json", body: `nope`, status: 400},
	}
	for _, tt := range tests {
		for _, ep := range []string{"lookup", "attach", "output"} {
			t.Run(ep+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h, wk := newControlHandler(t)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/restate/"+ep, strings.NewReader(tt.body)))
				if rec.Code != tt.status {
					t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
				}
				attached := wk.attached()
				if tt.status != 200 {
					checkIngressError(t, rec, tt.status, tt.message, false)
					if len(attached) != 0 {
						t.Errorf("a refused request reached the partition: %+v", attached)
					}
					return
				}
				if ep == "lookup" {
					// Restate's answer, byte for byte (no trailing newline).
					if want := `{"invocationId":"` + tt.wantID + `"}`; rec.Body.String() != want || rec.Header().Get("content-type") != "application/json" {
						t.Fatalf("lookup = %q %q, want application/json %q", rec.Header().Get("content-type"), rec.Body, want)
					}
					if len(attached) != 0 {
						t.Errorf("lookup reached the partition: %+v", attached)
					}
					return
				}
				want, _ := ids.ParseInvocationID(tt.wantID)
				if len(attached) != 1 || string(attached[0].InvocationID) != string(want.Bytes()) || attached[0].Wait != (ep == "attach") {
					t.Fatalf("attach requests %+v, want one for %s (wait %v)", attached, tt.wantID, ep == "attach")
				}
				if rec.Body.String() != `"done"` {
					t.Errorf("body %s, want the output", rec.Body)
				}
			})
		}
	}
}

func TestTargetBodyNeedsPOST(t *testing.T) {
	t.Parallel()
	h, _ := newControlHandler(t)
	for _, ep := range []string{"lookup", "attach", "output"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/restate/"+ep, nil))
		if rec.Code != 405 {
			t.Errorf("GET /restate/%s = %d, want 405", ep, rec.Code)
		}
	}
}

// TestAwakeablePaths replays what restate-server 1.7.12 answers for the awakeable endpoints.
func TestAwakeablePaths(t *testing.T) {
	t.Parallel()
	inv := ids.NewInvocationID(ids.PartitionKeyOf("a"))
	awk := ids.AwakeableID(inv.Bytes(), 17)
	const badPath = "bad path, expected either /restate/awakeables/:id/resolve or /restate/awakeables/:id/reject"
	tests := []struct {
		name, method, path string
		status             int
		message            string // for refusals
		reject             bool   // for accepted ones
	}{
		{name: "resolve", method: "POST", path: "/restate/awakeables/" + awk + "/resolve", status: 202},
		{name: "reject, short form", method: "POST", path: "/restate/a/" + awk + "/reject", status: 202, reject: true},
		{name: "padded id", method: "POST", path: "/restate/awakeables/" + awk + "==/resolve", status: 202},
		{name: "partly padded id", method: "POST", path: "/restate/awakeables/" + awk + "=/resolve", status: 202},
		{name: "segments after the action are ignored", method: "POST", path: "/restate/awakeables/" + awk + "/resolve/x/y", status: 202},
		{name: "trailing slash", method: "POST", path: "/restate/a/" + awk + "/resolve/", status: 202},

		{name: "no id", method: "POST", path: "/restate/awakeables", status: 400, message: badPath},
		{name: "no id, trailing slash", method: "POST", path: "/restate/awakeables/", status: 400, message: badPath},
		{name: "no id, short form", method: "POST", path: "/restate/a", status: 400, message: badPath},
		{name: "no action", method: "POST", path: "/restate/awakeables/" + awk, status: 400, message: badPath},
		{name: "no action, trailing slash", method: "POST", path: "/restate/a/" + awk + "/", status: 400, message: badPath},
		{name: "the path comes before the method", method: "GET", path: "/restate/awakeables/" + awk, status: 400, message: badPath},
		{name: "unknown action", method: "POST", path: "/restate/awakeables/" + awk + "/complete", status: 404, message: "not found"},
		{name: "GET", method: "GET", path: "/restate/awakeables/" + awk + "/resolve", status: 405, message: "method not allowed"},
		{name: "too much padding", method: "POST", path: "/restate/awakeables/" + awk + "===/resolve", status: 400,
			message: "bad awakeable id '" + awk + "===': id doesn't match the expected type"},
		{name: "the id is not percent-decoded", method: "POST", path: "/restate/awakeables/" + awk + "%3D%3D/resolve", status: 400,
			message: "bad awakeable id '" + awk + "%3D%3D': id doesn't match the expected type"},
		{name: "short id", method: "POST", path: "/restate/awakeables/" + awk[:40] + "/resolve", status: 400,
			message: "bad awakeable id '" + awk[:40] + "': id doesn't match the expected type"},
		{name: "not an id", method: "POST", path: "/restate/awakeables/not-an-id/resolve", status: 400, message: "bad awakeable id 'not-an-id': bad format"},
		{name: "invocation id", method: "POST", path: "/restate/awakeables/" + inv.String() + "/resolve", status: 400,
			message: "bad awakeable id '" + inv.String() + "': id doesn't match the expected type"},
		{name: "bad version", method: "POST", path: "/restate/awakeables/sign_2abc/resolve", status: 400, message: "bad awakeable id 'sign_2abc': unrecognized codec version"},
		{name: "prefix only", method: "POST", path: "/restate/awakeables/sign_/resolve", status: 400, message: "bad awakeable id 'sign_': bad length"},
		{name: "malformed legacy id", method: "POST", path: "/restate/awakeables/prom_1xx/resolve", status: 400, message: "bad awakeable id 'prom_1xx': base62 decode error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, wk := newControlHandler(t)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader("v")))
			if rec.Code != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.status)
			}
			sig := wk.signalled()
			if tt.status >= 400 {
				checkIngressError(t, rec, tt.status, tt.message, false)
				if len(sig) != 0 {
					t.Errorf("a refused request reached the partition: %+v", sig)
				}
				return
			}
			if len(sig) != 1 || string(sig[0].InvocationID) != string(inv.Bytes()) || sig[0].SignalID != 17 || (sig[0].Failure != nil) != tt.reject {
				t.Fatalf("signals %+v, want one to %s/17 (reject %v)", sig, inv, tt.reject)
			}
		})
	}
}

// A resolution whose partition lost its leader before the record was applied may or may not
// have taken effect: 503 saying so, not 500 "invocation failed".
func TestAwakeableOutcomeUnknown(t *testing.T) {
	t.Parallel()
	h, wk := newControlHandler(t)
	wk.signalErr = fmt.Errorf("%w: the leadership of epoch 3 ended", rpc.ErrOutcomeUnknown)
	awk := ids.AwakeableID(ids.NewInvocationID(ids.PartitionKeyOf("a")).Bytes(), 17)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/restate/a/"+awk+"/resolve", strings.NewReader("v")))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "may or may not have taken effect") {
		t.Fatalf("resolve with an unknown outcome = %d %s, want 503 saying it may have taken effect", rec.Code, rec.Body)
	}
}

// TestAttachPaths covers the attach/output paths; refusals are restate-server 1.7.12's answers.
func TestAttachPaths(t *testing.T) {
	t.Parallel()
	anID := ids.NewInvocationID(ids.PartitionKeyOf("x")).String()
	const (
		badInvocationPath = "bad path, expected either /restate/invocation/:invocation_id/output or /restate/invocation/:invocation_id/attach or /restate/invocation/:invocation_target/:idempotency_key/output or /restate/invocation/:invocation_target/:idempotency_key/attach"
		badWorkflowPath   = "bad path, expected either /restate/workflow/:workflow_name/:workflow_key/output or /restate/workflow/:workflow_name/:workflow_key/attach"
	)
	tests := []struct {
		name, method, path string
		status             int
		message            string // for refusals
		wantID             string // for accepted ones
		wait               bool
	}{
		{name: "attach by id", path: "/restate/invocation/" + anID + "/attach", status: 200, wantID: anID, wait: true},
		{name: "output by id", path: "/restate/invocation/" + anID + "/output", status: 200, wantID: anID},
		{name: "short attach by id", path: "/restate/attach/" + anID, status: 200, wantID: anID, wait: true},
		{name: "service call by idempotency key", path: "/restate/invocation/Greeter/Greet/ik1/output", status: 200,
			wantID: idempotentID("Greeter", false, "", "Greet", "ik1").String()},
		{name: "object call by idempotency key, decoded key", path: "/restate/invocation/Counter/a%20b/Add/ik2/attach", status: 200,
			wantID: idempotentID("Counter", true, "a b", "Add", "ik2").String(), wait: true},
		{name: "object call with an empty key", path: "/restate/invocation/Counter//Add/ik2/output", status: 200,
			wantID: idempotentID("Counter", true, "", "Add", "ik2").String()},
		// Restate decodes neither the handler nor the idempotency key.
		{name: "idempotency key is not decoded", path: "/restate/invocation/Greeter/Greet/a%20b/output", status: 200,
			wantID: idempotentID("Greeter", false, "", "Greet", "a%20b").String()},
		{name: "segment after the operation is ignored", path: "/restate/invocation/Greeter/Greet/ik1/output/x", status: 200,
			wantID: idempotentID("Greeter", false, "", "Greet", "ik1").String()},
		{name: "workflow", path: "/restate/workflow/Signup/w%31/output", status: 200,
			wantID: ids.WorkflowInvocationID(ids.PartitionKeyOf("w1"), "Signup", "w1").String()},
		{name: "workflow, segment after the operation", path: "/restate/workflow/Signup/w1/attach/x", status: 200,
			wantID: ids.WorkflowInvocationID(ids.PartitionKeyOf("w1"), "Signup", "w1").String(), wait: true},
		{name: "unknown workflow is looked up", path: "/restate/workflow/Nope/w1/output", status: 200,
			wantID: ids.WorkflowInvocationID(ids.PartitionKeyOf("w1"), "Nope", "w1").String()},

		{name: "invocation alone", path: "/restate/invocation", status: 400, message: badInvocationPath},
		{name: "id without operation", path: "/restate/invocation/" + anID, status: 400, message: badInvocationPath},
		{name: "unknown operation on an id", path: "/restate/invocation/" + anID + "/foo", status: 404, message: "not found"},
		{name: "unknown operation before a bad id", path: "/restate/invocation/bad/foo", status: 404, message: "not found"},
		{name: "bad id", path: "/restate/invocation/bad/output", status: 400, message: "bad invocation id 'bad': bad format"},
		{name: "three segments name a service", path: "/restate/invocation/" + anID + "/attach/x", status: 404,
			message: "service '" + anID + "' not found, make sure to register the service before calling it."},
		{name: "unknown service", path: "/restate/invocation/Nope/h/ik/output", status: 404,
			message: "service 'Nope' not found, make sure to register the service before calling it."},
		{name: "service name is not decoded", path: "/restate/invocation/Gree%74er/Greet/ik/output", status: 404,
			message: "service 'Gree%74er' not found, make sure to register the service before calling it."},
		{name: "service call without operation", path: "/restate/invocation/Greeter/Greet/ik1", status: 400, message: badInvocationPath},
		{name: "object call without operation", path: "/restate/invocation/Counter/c1/Add/ik2", status: 400, message: badInvocationPath},
		{name: "object call without idempotency key", path: "/restate/invocation/Counter/c1/Add", status: 400, message: badInvocationPath},
		{name: "unknown operation on a service call", path: "/restate/invocation/Greeter/Greet/ik1/foo", status: 404, message: "not found"},
		{name: "unknown operation on an object call", path: "/restate/invocation/Counter/c1/Add/ik2/foo", status: 404, message: "not found"},
		{name: "undecodable object key", path: "/restate/invocation/Counter/%ff/Add/ik/output", status: 400, message: "bad path, cannot decode key: the decoded key is not valid UTF-8 (first bad byte at offset 0)"},
		{name: "workflow alone", path: "/restate/workflow", status: 400, message: badWorkflowPath},
		{name: "workflow without key", path: "/restate/workflow/Signup", status: 400, message: badWorkflowPath},
		{name: "workflow without operation", path: "/restate/workflow/Signup/w1", status: 400, message: badWorkflowPath},
		{name: "unknown operation on a workflow", path: "/restate/workflow/Signup/w1/foo", status: 404, message: "not found"},
		{name: "unknown operation on an unknown workflow", path: "/restate/workflow/Nope/w1/foo", status: 404, message: "not found"},
		{name: "undecodable workflow key", path: "/restate/workflow/Signup/%ff/output", status: 400, message: "bad path, cannot decode key: the decoded key is not valid UTF-8 (first bad byte at offset 0)"},
		{name: "POST to a workflow", method: "POST", path: "/restate/workflow/Signup/w1/output", status: 405, message: "method not allowed"},
		{name: "POST to an invocation", method: "POST", path: "/restate/invocation/" + anID + "/output", status: 405, message: "method not allowed"},
		{name: "the path comes before the method", method: "POST", path: "/restate/invocation/" + anID + "/foo", status: 404, message: "not found"},
		{name: "segment after a short attach", path: "/restate/attach/" + anID + "/x", status: 400, message: catalogue[errBadRestatePath].format},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, wk := newControlHandler(t)
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(method, "/", nil)
			r.RequestURI = tt.path
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", method, tt.path, rec.Code, rec.Body, tt.status)
			}
			attached := wk.attached()
			if tt.status >= 400 {
				checkIngressError(t, rec, tt.status, tt.message, false)
				if len(attached) != 0 {
					t.Errorf("a refused request reached the partition: %+v", attached)
				}
				return
			}
			want, _ := ids.ParseInvocationID(tt.wantID)
			if len(attached) != 1 || string(attached[0].InvocationID) != string(want.Bytes()) || attached[0].Wait != tt.wait {
				t.Fatalf("attach requests %+v, want one for %s (wait %v)", attached, tt.wantID, tt.wait)
			}
		})
	}
}
