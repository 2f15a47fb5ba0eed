package invoker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

func (h *harness) manage(ctx context.Context, id []byte, op rpc.ManageOp) {
	h.t.Helper()
	if _, err := h.p.Leader().Manage(ctx, &rpc.ManageRequest{InvocationID: id, Op: op}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitPhase(ctx context.Context, id []byte, phase store.Phase) {
	h.t.Helper()
	for st := h.status(id); st == nil || st.Phase != phase; st = h.status(id) {
		if ctx.Err() != nil {
			h.t.Fatalf("not %s: %+v", phase, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Paused while it waits to retry, an invocation keeps the invoker's view of its attempts
// in restate-server 1.7.12 (retry_count, last_start_at, next_retry_at, the last attempt's
// deployment, last_failure and its code) until it resumes, and after the resume retry_count
// goes on counting (2 after one more attempt); we showed none of it while paused and
// started over from 1.
func TestE2EPausedWhileBackingOffKeepsItsAttempts(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE", failingSDK)
	slowRetries(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := h.sendSvc(ctx)
	before := h.failedAttempts(ctx, id, 1)
	h.manage(ctx, id, rpc.OpPause)
	h.waitPhase(ctx, id, store.PhasePaused)

	p, ok := h.inv.Progress()[invString(id)]
	want := before
	want.Paused = true
	if !ok || p != want {
		t.Fatalf("progress while paused %+v (%v), want %+v", p, ok, want)
	}
	if p.StartCount != 1 || p.LastFailureCode != "RT0007" || p.NextRetryAt.IsZero() || p.LastAttemptDeployment != "dp_test" {
		t.Fatalf("progress while paused %+v", p)
	}

	h.manage(ctx, id, rpc.OpResume)
	for p = h.inv.Progress()[invString(id)]; p.StartCount < 2 || p.NextRetryAt.IsZero(); p = h.inv.Progress()[invString(id)] {
		if ctx.Err() != nil {
			t.Fatalf("no attempt after the resume: %+v", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p.Paused || p.StartCount != 2 || p.LastFailure != "[500 Internal] flaky: attempt 2 fails\ngoroutine 1 [running]:\nmain.go:1" {
		t.Fatalf("progress after the resume %+v", p)
	}

	h.manage(ctx, id, rpc.OpPause)
	h.waitPhase(ctx, id, store.PhasePaused)
	h.manage(ctx, id, rpc.OpKill)
	if p, ok := h.inv.Progress()[invString(id)]; ok {
		t.Fatalf("a killed invocation's progress is kept: %+v", p)
	}
}

// Paused while an attempt runs, an invocation shows none of the invoker's view in
// restate-server 1.7.12, nor here.
func TestE2EPausedWhileRunningKeepsNothing(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "BIDI_STREAM",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			<-r.Context().Done() // runs until aborted
		})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := h.sendSvc(ctx)
	for h.inv.Progress()[invString(id)].LastAttemptServer == "" && h.requests() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the attempt did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.manage(ctx, id, rpc.OpPause)
	h.waitPhase(ctx, id, store.PhasePaused)
	if p, ok := h.inv.Progress()[invString(id)]; ok {
		t.Fatalf("progress while paused %+v, want none", p)
	}
}
