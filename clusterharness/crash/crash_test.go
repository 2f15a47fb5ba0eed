package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
)

// DrainTimeout bounds the re-sending of unacknowledged requests after the last restart.

// startCrashable starts the example services in this process (so they survive every crash
// of the server), a gorestate child process, and registers the former with the latter.
func startCrashable(t *testing.T) *Server {
	t.Helper()
	uri := harness.StartExamples(t)
	srv := NewServer(t, serverBin)
	srv.Start()
	harness.Register(t, srv.Admin, uri)
	return srv
}

// crashCycles runs kills load phases, each ended by a SIGKILL and followed by a restart on
// the same data directory, then re-sends every request still unacknowledged until the
// last incarnation acknowledges it. It fails the test if any request stays unknown.
func crashCycles(t *testing.T, srv *Server, w *Workload, kills int, loadFor time.Duration) {
	var inflight, unknown int
	// A kill can land just after every in-flight request was answered; a few more kills
	// (bounded) make sure some request is really cut off.
	const extraKills = 5
	inc := 1
	for ; inc <= kills || (unknown == 0 && inc <= kills+extraKills); inc++ {
		st, err := w.RunAndKill(srv, inc, loadFor)
		if err != nil {
			t.Fatal(err)
		}
		inflight += int(st.InflightAtKill)
		unknown += st.Unknown
		t.Logf("incarnation %d: %d new requests, %d re-sent, %d acknowledged in %v (first after %v); SIGKILL with %d requests in flight, %d unacknowledged",
			inc, st.Started, st.Retried, st.Acked, st.Duration.Round(time.Millisecond), st.FirstAck.Round(time.Millisecond),
			st.InflightAtKill, st.Unknown)
		logUnknown(t, w.Unacked())
		restart := time.Now()
		srv.Start()
		t.Logf("incarnation %d started on the same data directory, ready in %v", inc+1, time.Since(restart).Round(time.Millisecond))
	}
	// Without requests cut off by a kill the test would only have shown that a stopped
	// server keeps what it had finished.
	if unknown == 0 {
		t.Fatalf("the %d kills left no request unacknowledged (%d were in flight)", inc-1, inflight)
	}
	pending := len(w.Unacked())
	drainStart := time.Now()
	attempts := w.Drain(inc, drainStart.Add(DrainTimeout))
	t.Logf("incarnation %d: re-sent %d unacknowledged requests with %d attempts in %v",
		inc, pending, attempts, time.Since(drainStart).Round(time.Millisecond))
	if unacked := w.Unacked(); len(unacked) > 0 {
		for i, op := range unacked {
			if i == 20 {
				t.Errorf("... and %d more", len(unacked)-i)
				break
			}
			t.Errorf("never acknowledged: key %s idempotency-key %s after %d attempts: %s", op.Key, op.Idem, op.Attempts, op.LastErr)
		}
		t.Fatalf("%d of %d requests never acknowledged within %v of the last restart", len(unacked), len(w.Ops()), DrainTimeout)
	}
	var retried, maxAttempts int
	for _, op := range w.Ops() {
		if op.Attempts > 1 {
			retried++
		}
		maxAttempts = max(maxAttempts, op.Attempts)
	}
	t.Logf("%d logical requests over %d keys, all acknowledged; %d needed more than one attempt (max %d); %d in flight at the kills",
		len(w.Ops()), len(w.Keys), retried, maxAttempts, inflight)
}

// resendSample re-sends up to n requests that an incarnation acknowledged before it was
// killed, spread over the ledger, and hands each answer to check.
func resendSample(t *testing.T, w *Workload, kills, n int, check func(op *Op, a *Answer) error) {
	t.Helper()
	var before []*Op
	for _, op := range w.Ops() {
		if op.AckedIn <= kills {
			before = append(before, op)
		}
	}
	if len(before) == 0 {
		t.Fatal("no request was acknowledged before a kill")
	}
	step := max(1, len(before)/n)
	checked := 0
	for i := 0; i < len(before) && i/step < n; i += step {
		op := before[i]
		a, err := w.send(context.Background(), op)
		if err != nil {
			t.Errorf("re-send %s (key %s): %v", op.Idem, op.Key, err)
			continue
		}
		if err := check(op, a); err != nil {
			t.Errorf("re-send %s (key %s, acknowledged by incarnation %d): %v", op.Idem, op.Key, op.AckedIn, err)
		}
		checked++
	}
	t.Logf("re-sent %d requests acknowledged before a kill; each answered as first acknowledged", checked)
}

// TestCrashCallsExactlyOnce runs idempotent Counter.add calls from many workers over many
// keys, kills the server with SIGKILL mid-load three times, restarts it on the same data
// directory, re-sends every unacknowledged add with its idempotency key until it is
// acknowledged, and then requires every key's value to equal its number of distinct adds.
func TestCrashCallsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	const (
		keys    = 20
		workers = 16
		kills   = 3
		loadFor = 1500 * time.Millisecond
	)
	srv := startCrashable(t)
	w := NewWorkload(srv.Ingress, "add", CounterKeys("call-", keys), workers, func(status int, body string) bool {
		_, err := strconv.Atoi(body)
		return status == http.StatusOK && err == nil
	})
	crashCycles(t, srv, w, kills, loadFor)

	// Every add was acknowledged, so each must have been applied exactly once: the value is
	// the number of distinct adds, and since a key's adds run one at a time, the answers
	// they returned are exactly 1..n, each once. A lost add shows as a low value, a doubled
	// one as a high value or as a gap in the answers.
	values, err := counterValues(w)
	if err != nil {
		t.Fatal(err)
	}
	perKey := w.PerKey()
	if bad := exactlyOnceProblems(perKey, values); len(bad) > 0 {
		t.Errorf("%d of %d keys differ from their acknowledged adds:\n%s", len(bad), len(perKey), strings.Join(bad, "\n"))
	}

	// An add acknowledged before a kill, re-sent with its key, must return the stored
	// answer of the one execution, not run again.
	resendSample(t, w, kills, 40, func(op *Op, a *Answer) error {
		if a.Status != op.Status || a.Body != op.Body || a.ID != op.ID {
			return fmt.Errorf("got %d %q id %s, first acknowledged %d %q id %s", a.Status, a.Body, a.ID, op.Status, op.Body, op.ID)
		}
		return nil
	})
	after, err := counterValues(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range SortedKeys(after) {
		if after[key] != values[key] {
			t.Errorf("key %s: value %d after re-sending acknowledged adds, was %d", key, after[key], values[key])
		}
	}
}

// sendAnswer is the body of a 202 answer to a one-way send.
type sendAnswer struct {
	InvocationID string `json:"invocationId"`
	Status       string `json:"status"`
}

func parseSend(status int, body string) (sendAnswer, bool) {
	var a sendAnswer
	if status != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil || a.InvocationID == "" {
		return a, false
	}
	return a, a.Status == "Accepted" || a.Status == "PreviouslyAccepted"
}

// TestCrashSendsExactlyOnce does the same for one-way sends: Counter.add/send with
// idempotency keys under load, one SIGKILL, a restart, re-sends of every unacknowledged
// send until it is Accepted or PreviouslyAccepted, and then every key's value must reach,
// and stay at, its number of distinct sends.
func TestCrashSendsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	const (
		keys    = 10
		workers = 8
		kills   = 1
		loadFor = time.Second
		// Sends are acknowledged before they run; this bounds running the backlog.
		settleTimeout = 30 * time.Second
	)
	srv := startCrashable(t)
	w := NewWorkload(srv.Ingress, "add/send", CounterKeys("send-", keys), workers, func(status int, body string) bool {
		_, ok := parseSend(status, body)
		return ok
	})
	crashCycles(t, srv, w, kills, loadFor)

	want := make(map[string]int)
	for key, ops := range w.PerKey() {
		want[key] = len(ops)
	}
	report := func(got map[string]int) string {
		var lines []string
		for _, key := range SortedKeys(want) {
			if got[key] != want[key] {
				lines = append(lines, fmt.Sprintf("key %s: value %d, want %d distinct acknowledged sends", key, got[key], want[key]))
			}
		}
		return strings.Join(lines, "\n")
	}
	settleStart := time.Now()
	deadline := settleStart.Add(settleTimeout)
	for {
		got, err := counterValues(w)
		if err != nil {
			t.Fatal(err)
		}
		// A value above its count can never come down again: fail at once, naming only
		// those keys (others may still be running their backlog).
		var over []string
		for _, key := range SortedKeys(got) {
			if got[key] > want[key] {
				over = append(over, fmt.Sprintf("key %s: value %d, want %d distinct acknowledged sends", key, got[key], want[key]))
			}
		}
		if len(over) > 0 {
			t.Fatalf("sends applied more than once:\n%s", strings.Join(over, "\n"))
		}
		if diff := report(got); diff == "" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after %v the values still differ from the acknowledged sends:\n%s", settleTimeout, diff)
		}
		// A bounded pause between polls of the values.
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d sends applied %v after the last restart's drain", len(w.Ops()), time.Since(settleStart).Round(time.Millisecond))

	// An exclusive add of 0 queues behind every send already in a key's inbox, so its answer
	// is the value once all of them have run: a duplicate still queued would show here.
	for _, key := range SortedKeys(want) {
		a, err := w.Post(context.Background(), w.Ingress+"/Counter/"+key+"/add", "0", nil)
		if err != nil {
			t.Fatalf("barrier add on %s: %v", key, err)
		}
		if a.Status != http.StatusOK || a.Body != strconv.Itoa(want[key]) {
			t.Errorf("key %s: barrier add answered %d %q, want %d", key, a.Status, a.Body, want[key])
		}
	}

	resendSample(t, w, kills, 40, func(op *Op, a *Answer) error {
		first, _ := parseSend(op.Status, op.Body)
		got, ok := parseSend(a.Status, a.Body)
		if !ok || got.Status != "PreviouslyAccepted" || got.InvocationID != first.InvocationID {
			return fmt.Errorf("got %d %s, want 202 PreviouslyAccepted for %s", a.Status, a.Body, first.InvocationID)
		}
		return nil
	})
	if got, err := counterValues(w); err != nil {
		t.Fatal(err)
	} else if diff := report(got); diff != "" {
		t.Errorf("values changed by re-sending acknowledged sends:\n%s", diff)
	}
}
