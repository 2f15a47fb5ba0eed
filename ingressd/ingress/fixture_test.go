package ingress

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// testPartitions is the partition count of the fake cluster.
const testPartitions = 24

var (
	jsonSchemaString = json.RawMessage(`{"type":"string"}`)
	jsonSchemaInt    = json.RawMessage(`{"type":"integer"}`)
)

// sdkJSON is what sdk-go v1.2.0 registers for a JSON-typed input.
func sdkJSON(s json.RawMessage) schema.InputRules {
	return schema.InputRules{Required: true, ContentType: "application/json", JSONSchema: s}
}

var (
	noInput    = schema.InputRules{}
	anyInput   = schema.InputRules{ContentType: "*/*"} // the manifest default
	jsonOutput = schema.OutputRules{ContentType: "application/json"}
	voidOutput = schema.OutputRules{}
)

func hdl(name string, ty schema.HandlerType, in schema.InputRules, out schema.OutputRules) schema.Handler {
	return schema.Handler{Name: name, Type: ty, Input: in, Output: out, Public: true}
}

// testRegistry mirrors the deployments registered on the reference server (see the header
// of testdata/reference_1.7.12.txt).
func testRegistry() *schema.Registry {
	svcs := []*schema.Service{
		{Name: "Greeter", Type: schema.ServiceTypeService, Public: true, IdempotencyRetention: 24 * time.Hour, Handlers: []schema.Handler{
			hdl("Greet", "", sdkJSON(jsonSchemaString), jsonOutput),
			hdl("Noop", "", noInput, voidOutput),
		}},
		{Name: "Counter", Type: schema.ServiceTypeVirtualObject, Public: true, IdempotencyRetention: 24 * time.Hour, Handlers: []schema.Handler{
			hdl("Add", schema.HandlerExclusive, sdkJSON(jsonSchemaInt), jsonOutput),
			hdl("Get", schema.HandlerShared, noInput, jsonOutput),
		}},
		{Name: "Signup", Type: schema.ServiceTypeWorkflow, Public: true, IdempotencyRetention: 24 * time.Hour, WorkflowCompletionRetention: 24 * time.Hour, Handlers: []schema.Handler{
			hdl("Run", schema.HandlerWorkflow, sdkJSON(jsonSchemaString), jsonOutput),
			hdl("Peek", schema.HandlerShared, noInput, jsonOutput),
		}},
		{Name: "Probe", Type: schema.ServiceTypeService, Public: true, Handlers: []schema.Handler{
			hdl("jsonOpt", "", schema.InputRules{ContentType: "application/json"}, jsonOutput),
			hdl("jsonReq", "", schema.InputRules{Required: true, ContentType: "application/json"}, jsonOutput),
			hdl("jsonSchema", "", sdkJSON(jsonSchemaInt), jsonOutput),
			hdl("jsonSchemaOpt", "", schema.InputRules{ContentType: "application/json", JSONSchema: jsonSchemaInt}, jsonOutput),
			hdl("textWild", "", schema.InputRules{Required: true, ContentType: "text/*"}, schema.OutputRules{ContentType: "text/plain", SetContentTypeIfEmpty: true}),
			hdl("anyOpt", "", anyInput, jsonOutput),
			hdl("anyReq", "", schema.InputRules{Required: true, ContentType: "*/*"}, jsonOutput),
			hdl("dflt", "", anyInput, jsonOutput),
			hdl("noInput", "", noInput, jsonOutput),
			hdl("noInputReq", "", schema.InputRules{Required: true}, jsonOutput),
		}},
		{Name: "Obj", Type: schema.ServiceTypeVirtualObject, Public: true, Handlers: []schema.Handler{
			hdl("h", schema.HandlerExclusive, anyInput, jsonOutput),
		}},
		{Name: "Priv", Type: schema.ServiceTypeService, Public: false, Handlers: []schema.Handler{
			hdl("h", "", anyInput, jsonOutput),
		}},
		{Name: "PrivGreeter", Type: schema.ServiceTypeService, Public: false, Handlers: []schema.Handler{
			hdl("Greet", "", sdkJSON(jsonSchemaString), jsonOutput),
		}},
		{Name: "PrivSignup", Type: schema.ServiceTypeWorkflow, Public: false, Handlers: []schema.Handler{
			hdl("Run", schema.HandlerWorkflow, sdkJSON(jsonSchemaString), jsonOutput),
		}},
	}
	reg := &schema.Registry{Services: map[string]*schema.Service{}}
	for _, s := range svcs {
		reg.Services[s.Name] = s
	}
	return reg
}

// fakeInvoker records every request and answers with respond (default: a fixed output for
// calls, Accepted for sends).
type fakeInvoker struct {
	mu       sync.Mutex
	requests []*rpc.InvokeRequest
	respond  func(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error)
}

func (f *fakeInvoker) Invoke(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	respond := f.respond
	f.mu.Unlock()
	if respond != nil {
		return respond(ctx, req)
	}
	return defaultAnswer(req), nil
}

func defaultAnswer(req *rpc.InvokeRequest) *rpc.InvokeResponse {
	if req.Send {
		return &rpc.InvokeResponse{InvocationID: req.InvocationID, SendStatus: rpc.SendAccepted, ExecutionTime: req.ExecutionTime}
	}
	return &rpc.InvokeResponse{InvocationID: req.InvocationID, Output: []byte(`"ok"`)}
}

func (f *fakeInvoker) calls() []*rpc.InvokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*rpc.InvokeRequest(nil), f.requests...)
}

// newTestHandler wires a handler to the test registry and one fake invoker for every
// partition. Retries are shortened so that failing routes answer quickly.
func newTestHandler(t testing.TB, maxBody int64) (*handler, *fakeInvoker) {
	t.Helper()
	inv := &fakeInvoker{}
	reg := testRegistry()
	h := newHandler(Options{
		Schema:        func() *schema.Registry { return reg },
		NumPartitions: func() uint32 { return testPartitions },
		Route:         func(uint32) (rpc.Worker, error) { return inv, nil },
		MaxBodySize:   maxBody,
	})
	h.leaderBackoff = time.Millisecond
	return h, inv
}
