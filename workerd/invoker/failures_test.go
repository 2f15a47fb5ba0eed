package invoker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/store"
)

// sendSvc starts Svc/h as a one-way send and returns its id.
func (h *harness) sendSvc(ctx context.Context) []byte {
	h.t.Helper()
	id := ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes()
	if _, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Input: []byte("in"), Send: true,
		Target: rpc.Target{Service: "Svc", Handler: "h", ServiceType: "SERVICE"}}); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// failedAttempts waits until id has n failed attempts and returns its progress.
func (h *harness) failedAttempts(ctx context.Context, id []byte, n int) Progress {
	h.t.Helper()
	for {
		p := h.inv.Progress()[invString(id)]
		if p.RetryCount >= n {
			return p
		}
		if ctx.Err() != nil {
			h.t.Fatalf("%d failed attempts of %d: %+v", p.RetryCount, n, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// editRetryPolicy changes the retry policy of the harness's service Svc.
func editRetryPolicy(h *harness, edit func(*schema.RetryPolicy)) {
	reg := *h.reg.Load()
	svc := *reg.Services["Svc"]
	edit(&svc.RetryPolicy)
	reg.Services = map[string]*schema.Service{"Svc": &svc}
	h.reg.Store(&reg)
}

// slowRetries keeps a failed invocation backing off for the test's length.
func slowRetries(h *harness) {
	editRetryPolicy(h, func(p *schema.RetryPolicy) {
		*p = schema.RetryPolicy{InitialInterval: time.Hour, ExponentiationFactor: 1, MaxAttempts: 1000}
	})
}

// A retryable error from the SDK shows in last_failure as restate-server 1.7.12 shows it:
// the code with its name, the message and the SDK's stacktrace on the lines after, with
// Restate's RT0007 as last_failure_error_code. We showed "[500] boom" and no code.
func TestE2ESDKFailureAsRestateShowsIt(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			e := &protocol.ErrorMessage{Code: 500, Message: `flaky "k": attempt 1 fails`, Stacktrace: "goroutine 1 [running]:\nmain.go:1"}
			writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
		})
	slowRetries(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := h.failedAttempts(ctx, h.sendSvc(ctx), 1)
	const want = "[500 Internal] flaky \"k\": attempt 1 fails\ngoroutine 1 [running]:\nmain.go:1"
	if p.LastFailure != want || p.LastFailureCode != "RT0007" {
		t.Fatalf("last failure %q code %q, want %q RT0007", p.LastFailure, p.LastFailureCode, want)
	}
}

// An attempt that cannot reach its deployment (connection refused) fails as in
// restate-server 1.7.12: "[500 Internal] error when calling 'http://127.0.0.1:57090/': h2
// pool connection error: Connection refused (os error 111)", RT0010; the tail after the
// prefix is Go's. We showed Go's `invoke …: Post "…": dial tcp …` and no code.
func TestE2EUnreachableDeploymentAsRestateShowsIt(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(*harness, http.ResponseWriter, *http.Request, *protocol.StartMessage, []protocol.Message, *protocol.Decoder) {
			t.Error("the closed deployment was reached")
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	slowRetries(h)
	reg := *h.reg.Load()
	reg.Deployments = []schema.Deployment{reg.Deployments[0]}
	reg.Deployments[0].URI = "http://" + addr + "/" // as registration stores it
	h.reg.Store(&reg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := h.failedAttempts(ctx, h.sendSvc(ctx), 1)
	prefix := "[500 Internal] error when calling 'http://" + addr + "/': h2 pool connection error: dial tcp " + addr + ": "
	if !strings.HasPrefix(p.LastFailure, prefix) || !strings.Contains(p.LastFailure, "connection refused") || p.LastFailureCode != "RT0010" {
		t.Fatalf("last failure %q code %q, want %q… RT0010", p.LastFailure, p.LastFailureCode, prefix)
	}
}

// failingSDK answers every attempt with a retryable error carrying a stacktrace.
func failingSDK(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
	e := &protocol.ErrorMessage{Code: 500, Message: fmt.Sprintf("flaky: attempt %d fails", h.requests()), Stacktrace: "goroutine 1 [running]:\nmain.go:1"}
	writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
}

func exhaustAfter(h *harness, attempts int, onMax string) {
	editRetryPolicy(h, func(p *schema.RetryPolicy) {
		*p = schema.RetryPolicy{InitialInterval: time.Millisecond, ExponentiationFactor: 1, MaxAttempts: attempts, OnMaxAttempts: onMax}
	})
}

// Killed because its retries are exhausted (max-attempts = 2, on-max-attempts = "kill"),
// an invocation answers its waiting caller as restate-server 1.7.12 does: with its last
// attempt's failure, code, message and the SDK's stacktrace ({"code":500,"message":"flaky
// …","stacktrace":"goroutine …","source":"invocation"} at the ingress), and keeps the code
// and message as its result (completion_failure "[500] flaky …"). We answered "retries
// exhausted after 2 attempts: [500] flaky …" without the stacktrace.
func TestE2EKilledAfterRetriesAnswersTheLastFailure(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE", failingSDK)
	exhaustAfter(h, 2, "Kill")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes()
	resp, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Input: []byte("in"), CompletionRetention: time.Hour,
		Target: rpc.Target{Service: "Svc", Handler: "h", ServiceType: "SERVICE"}})
	if err != nil {
		t.Fatal(err)
	}
	want := rpc.Failure{Code: 500, Message: "flaky: attempt 2 fails", Stacktrace: "goroutine 1 [running]:\nmain.go:1"}
	if resp.Failure == nil || !reflect.DeepEqual(*resp.Failure, want) {
		t.Fatalf("answer %+v, want the failure %+v", resp.Failure, want)
	}
	if st := h.status(id); st == nil || st.Result == nil || !st.Result.Failed || st.Result.Code != 500 || st.Result.Message != want.Message {
		t.Fatalf("status %+v, want failed with [500] %s", st, want.Message)
	}
	if n := h.requests(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
}

// Paused because its retries are exhausted, an invocation shows no last_failure in
// restate-server 1.7.12 (its invoker forgot the invocation); we showed "retries exhausted
// after 2 attempts: [500] …".
func TestE2EPausedAfterRetriesKeepsNoFailure(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE", failingSDK)
	exhaustAfter(h, 2, "Pause")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := h.sendSvc(ctx)
	st := h.status(id)
	for ; st == nil || st.Phase != store.PhasePaused; st = h.status(id) {
		if ctx.Err() != nil {
			t.Fatalf("not paused: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.LastFailure != "" {
		t.Fatalf("paused with the failure %q, want none", st.LastFailure)
	}
	if _, ok := h.inv.Progress()[invString(id)]; ok {
		t.Fatal("the invoker still shows the paused invocation's attempts")
	}
}

// A retry delay the SDK asks for (ErrorMessage.next_retry_delay: a ctx.Run retrying under
// its own retry policy) uses none of the invocation's attempts, as in restate-server
// 1.7.12: with max-attempts 2, four failures that each ask for a delay and a fifth attempt
// that succeeds complete the invocation. We paused it after the second.
func TestE2ERetryDelayOfTheSDKUsesNoPolicyAttempt(t *testing.T) {
	for _, delay := range []uint64{1, 0} {
		t.Run(fmt.Sprintf("delay %dms", delay), func(t *testing.T) { retryDelayOfTheSDK(t, delay) })
	}
}

// retryDelayOfTheSDK runs TestE2ERetryDelayOfTheSDKUsesNoPolicyAttempt with the delay the
// SDK asks for. A delay of 0 (a Run retry policy with no initial interval) is one too:
// Restate takes any next_retry_delay the SDK sends in place of its policy's next delay.
func retryDelayOfTheSDK(t *testing.T, delay uint64) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			if h.requests() <= 4 {
				e := &protocol.ErrorMessage{Code: 500, Message: "run failed", NextRetryDelay: &delay}
				writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
				return
			}
			outputEnd(w, `"ok"`)
		})
	exhaustAfter(h, 2, "Pause")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, id, err := h.call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Failure != nil || string(resp.Output) != `"ok"` {
		t.Fatalf("answer %+v (status %+v), want \"ok\"", resp, h.status(id))
	}
	if n := h.requests(); n != 5 {
		t.Fatalf("%d attempts, want 5", n)
	}
}

// Retries of one failure log its TransientError event once: the invoker does not propose
// an event the apply would drop as a repeat (same failure, same run, nothing logged since),
// so a failing invocation does not cost a log record per retry. A different failure in
// between is logged, and so is the first one again after it.
func TestE2ERepeatedFailureLogsOneEvent(t *testing.T) {
	messages := []string{"A", "A", "A", "B", "B", "A"}
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			if n := h.requests(); n <= len(messages) {
				e := &protocol.ErrorMessage{Code: 500, Message: messages[n-1]}
				writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
				return
			}
			outputEnd(w, `"ok"`)
		})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := h.call(ctx); err != nil {
		t.Fatal(err)
	}
	var logged []string
	for from := bifrost.LSN(1); from < h.log.Tail(); {
		entries, err := h.log.Read(ctx, from, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			rec, err := logrecord.Decode(e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Kind == logrecord.KindJournalEvent {
				logged = append(logged, rec.JournalEvent.Failure.Message)
			}
			from = e.LSN + 1
		}
	}
	if want := []string{"A", "B", "A"}; !slices.Equal(logged, want) {
		t.Fatalf("events logged for failures %v: %v, want %v", messages, logged, want)
	}
}
