package invoker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// An attempt that fails before its service's policy is known (the service is not in the
// schema) is retried with the node's configured policy, not Restate's builtin one.
func TestUnknownServiceRetriesWithTheConfiguredPolicy(t *testing.T) {
	opts := Options{RetryPolicy: schema.RetryPolicy{InitialInterval: time.Millisecond, ExponentiationFactor: 1,
		MaxAttempts: 2, MaxInterval: time.Millisecond, OnMaxAttempts: "Kill"}}
	h := newHarness(t, opts, "BIDI_STREAM", func(*harness, http.ResponseWriter, *http.Request, *protocol.StartMessage, []protocol.Message, *protocol.Decoder) {
		t.Error("the deployment was called for a service the schema does not have")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes(),
		Input: []byte("in"), Target: rpc.Target{Service: "Gone", Handler: "h", ServiceType: "SERVICE"}})
	if err != nil {
		t.Fatalf("invoke: %v (builtin policy: 70 attempts, then pause)", err)
	}
	if resp.Failure == nil || resp.Failure.Message != `service "Gone" is not registered` {
		t.Fatalf("answer %+v, want the invocation killed with its last failure", resp)
	}
}
