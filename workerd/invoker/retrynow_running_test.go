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

// Resuming an invocation whose attempt is running changes nothing (Restate answers it and the
// attempt goes on): the backoff after that attempt fails is waited out as usual. The request
// to retry at once used to stay queued while the attempt ran and then cut the next backoff
// short.
func TestE2EResumeOfARunningAttemptKeepsTheNextBackoff(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			if h.requests() == 1 {
				<-release
				return // no End: a failed attempt, retried after the policy's delay
			}
			outputEnd(w, "ok")
		})
	editRetryPolicy(h, func(p *schema.RetryPolicy) { p.InitialInterval = time.Hour })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes()
	if _, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Input: []byte("in"), Send: true,
		Target: rpc.Target{Service: "Svc", Handler: "h", ServiceType: "SERVICE"}}); err != nil {
		t.Fatal(err)
	}
	for h.requests() < 1 {
		if ctx.Err() != nil {
			t.Fatal("the first attempt did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := h.p.Leader().Manage(ctx, &rpc.ManageRequest{InvocationID: id, Op: rpc.OpResume}); err != nil || out != rpc.ManageDone {
		t.Fatalf("resume: %s, %v", out, err)
	}
	close(release)
	for p := h.inv.Progress()[invString(id)]; p.RetryCount < 1 && h.requests() < 2; p = h.inv.Progress()[invString(id)] {
		if ctx.Err() != nil {
			t.Fatalf("the first attempt did not fail: %+v", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // what must not happen: a second attempt at once
	if n, p := h.requests(), h.inv.Progress()[invString(id)]; n != 1 || p.NextRetryAt.IsZero() {
		t.Fatalf("%d requests, progress %+v: the resume sent while the attempt ran cut the backoff after it short", n, p)
	}
}
