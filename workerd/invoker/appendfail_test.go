package invoker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/store"
)

// failFirstLeadership fails the first append and accepts the rest (a loglet error that
// does not repeat).
type failFirstLeadership struct {
	mu   sync.Mutex
	n    int
	recs []*logrecord.Record
}

func (l *failFirstLeadership) NoteFailure([]byte, rpc.Failure)    {}
func (l *failFirstLeadership) Partition() uint32                  { return 1 }
func (l *failFirstLeadership) Context() context.Context           { return context.Background() }
func (l *failFirstLeadership) Snapshot() (*store.Snapshot, error) { return nil, fmt.Errorf("unused") }
func (l *failFirstLeadership) WaitApplied(context.Context, bifrost.LSN) error {
	return nil
}
func (l *failFirstLeadership) AppendAsync(r *logrecord.Record, done func(bifrost.LSN, error)) {
	l.mu.Lock()
	l.n++
	n := l.n
	if n > 1 {
		l.recs = append(l.recs, r)
	}
	l.mu.Unlock()
	if n == 1 {
		done(0, errors.New("transient loglet error"))
		return
	}
	done(bifrost.LSN(n), nil)
}

// An attempt whose effect failed to append must not append later effects: the log would hold
// the SDK's Suspension (waiting on completion 1) without the Sleep command that completion 1
// belongs to, and the invocation would stay suspended forever.
func TestNoEffectIsAppendedAfterAFailedOne(t *testing.T) {
	l := &failFirstLeadership{}
	a := &run{t: &task{l: l, id: []byte("inv")}, dp: &schema.Deployment{ID: "dp_1"}, version: 6, st: &store.Status{}, reg: &schema.Registry{}}
	// What exchange does: Sleep arrives, the SDK may wait for it, so it is flushed.
	sleep := &protocol.SleepCommand{WakeUpTime: 1, ResultCompletionID: 1}
	if _, err, _ := a.handle(protocol.Message{Type: protocol.SleepCommandType, Payload: sleep.Marshal()}); err != nil {
		t.Fatal(err)
	}
	if a.pendingAwaited() {
		a.flush() // fails
	}
	// Then the SDK suspends on completion 1.
	susp := &protocol.SuspensionMessage{WaitingCompletions: []uint32{1}, WaitingSignals: []uint32{1}}
	if done, err, _ := a.handle(protocol.Message{Type: protocol.SuspensionMessageType, Payload: susp.Marshal()}); err != nil || !done {
		t.Fatal(done, err)
	}
	err := a.wait()
	for _, r := range l.recs {
		if r.InvokerEffect.Kind == logrecord.EffectSuspend {
			t.Fatalf("the suspension was appended after the Sleep command's append failed (wait err: %v): the log has Suspend(waiting on 1) but no Sleep", err)
		}
	}
}

// Retry delays never shrink to nothing and never wrap around to a negative Duration (no
// wait at all): a failing deployment is not retried in a hot loop. A factor between 0 and 1
// shrinks them, as restate-server 1.7.12 does with exponentiation-factor = 0.5 (4s, then 2s
// plus its jitter); we kept them at the initial interval.
func TestBackoffStaysPositiveAndBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    schema.RetryPolicy
		n    int
		want time.Duration
	}{
		{"doubling", schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 2}, 3, 400 * time.Millisecond},
		{"capped", schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 2, MaxInterval: time.Second}, 10, time.Second},
		{"factor 0 counts as 1", schema.RetryPolicy{InitialInterval: 100 * time.Millisecond}, 5, 100 * time.Millisecond},
		{"negative factor counts as 1", schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: -2}, 5, 100 * time.Millisecond},
		{"NaN factor counts as 1", schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: math.NaN()}, 5, 100 * time.Millisecond},
		{"halving", schema.RetryPolicy{InitialInterval: 4 * time.Second, ExponentiationFactor: 0.5}, 2, 2 * time.Second},
		{"halving down to 10ms", schema.RetryPolicy{InitialInterval: 4 * time.Second, ExponentiationFactor: 0.5}, 30, 10 * time.Millisecond},
		{"halving below a shorter initial interval", schema.RetryPolicy{InitialInterval: time.Millisecond, ExponentiationFactor: 0.5}, 3, time.Millisecond},
		{"overflow without a cap", schema.RetryPolicy{InitialInterval: time.Hour, ExponentiationFactor: 10}, 40, math.MaxInt64},
	} {
		if got := backoff(tc.p, tc.n); got != tc.want {
			t.Errorf("%s: backoff %v, want %v", tc.name, got, tc.want)
		}
	}
	huge := uint64(math.MaxUint64)
	a := &run{}
	e := &protocol.ErrorMessage{Code: 500, Message: "x", NextRetryDelay: &huge}
	if _, _, retry := a.handle(protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()}); retry <= 0 {
		t.Fatalf("next_retry_delay of %d ms gave a retry delay of %v", huge, retry)
	}
}
