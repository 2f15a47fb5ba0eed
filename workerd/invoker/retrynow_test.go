package invoker

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// Resuming an invocation that waits to retry has it try again at once, as restate-server
// 1.7.12 does (its retry count rose at once, the next retry time moved on); here resume
// answered and the invocation went on waiting out its backoff.
func TestE2EResumeRetriesAtOnce(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			if h.requests() == 1 {
				return // no End: a failed attempt, retried after the policy's delay
			}
			outputEnd(w, "ok")
		})
	editRetryPolicy(h, func(p *schema.RetryPolicy) { p.InitialInterval = time.Hour })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes()
	done := make(chan error, 1)
	go func() {
		resp, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Input: []byte("in"),
			Target: rpc.Target{Service: "Svc", Handler: "h", ServiceType: "SERVICE"}})
		if err == nil && string(resp.Output) != "ok" {
			err = fmt.Errorf("output %q", resp.Output)
		}
		done <- err
	}()
	for p := h.inv.Progress()[invString(id)]; p.NextRetryAt.IsZero(); p = h.inv.Progress()[invString(id)] {
		if ctx.Err() != nil {
			t.Fatalf("no retry waiting: %+v", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := h.p.Leader().Manage(ctx, &rpc.ManageRequest{InvocationID: id, Op: rpc.OpResume}); err != nil || out != rpc.ManageDone {
		t.Fatalf("resume: %s, %v", out, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the invocation still waits to retry after resume (%d requests)", h.requests())
	}
}
