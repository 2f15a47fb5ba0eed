package invoker

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
)

// task drives the attempts of one invocation on one leader, one attempt at a time, so that
// the effects of an old attempt are always logged before a new attempt reads the journal.
type task struct {
	inv  *Invoker
	l    processor.Leadership
	id   []byte
	key  string
	done chan struct{}
	// ctx is the task's context: the leadership's, cancelled early when the invocation is killed.
	ctx    context.Context
	cancel context.CancelFunc

	again bool  // guarded by inv.mu
	prev  *task // an aborted run of the same invocation to wait for first
	// holding: the task holds a node slot (taken by Resume for its first attempt, or by
	// run for the current one).
	holding bool

	mu         sync.Mutex
	pending    []notification
	appended   bifrost.LSN  // LSN of the newest effect logged for this invocation
	lastEvent  *loggedEvent // guarded by mu
	runAttempt uint32       // the status's attempt number when the current run loaded it
	progress   Progress     // guarded by mu
	wake       chan struct{}
	retryNow   chan struct{} // cuts a retry's wait short
	// attempts counts the failed attempts the retry policy counts (those retried after
	// its own backoff); failures every failed attempt since the invocation last finished
	// an attempt.
	attempts int
	failures int
}

// RelatedCommand is the command an SDK related a failure to, as sys_invocation's
// last_failure_related_command_index, _name and _type show it; nil and "" where it shows none.
type RelatedCommand struct {
	Index *uint32
	Name  string
	Type  string
}

// Progress is what the invoker knows of an invocation's attempts; it lives only in memory,
// as in Restate.
type Progress struct {
	// StartCount counts the attempts this task started (Restate's retry_count); RetryCount
	// the ones that failed.
	StartCount  int
	RetryCount  int
	LastFailure string
	// LastFailureCode is the code of Restate's error catalogue of the last failure (RT0011),
	// "" when it has none.
	LastFailureCode string
	// LastFailureCommand is the command the SDK related the last failure to.
	LastFailureCommand RelatedCommand
	LastStartAt        time.Time
	NextRetryAt        time.Time // zero while an attempt runs
	// LastAttemptDeployment is the deployment of the latest attempt, and LastAttemptServer
	// what it answered in x-restate-server (its SDK), "" before it answered.
	LastAttemptDeployment string
	LastAttemptServer     string
	// Paused: the invocation was paused while it waited to retry (Invoker.Pause); the rest
	// is as it was then.
	Paused bool
}

func (t *task) setProgress(f func(*Progress)) {
	t.mu.Lock()
	f(&t.progress)
	t.mu.Unlock()
}

func (t *task) noteAppended(lsn bifrost.LSN) {
	t.mu.Lock()
	t.appended = max(t.appended, lsn)
	t.mu.Unlock()
}

func (t *task) lastAppended() bifrost.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.appended
}

type notification struct {
	index uint32
	entry store.JournalEntry
}

func newTask(inv *Invoker, l processor.Leadership, id []byte, key string) *task {
	ctx, cancel := context.WithCancel(l.Context())
	return &task{inv: inv, l: l, id: id, key: key, done: make(chan struct{}), wake: make(chan struct{}, 1), retryNow: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

func (t *task) notify(index uint32, e store.JournalEntry) {
	t.mu.Lock()
	t.pending = append(t.pending, notification{index, e})
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// takeNotifications returns queued notifications with index >= from.
func (t *task) takeNotifications(from uint32) []notification {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []notification
	for _, n := range t.pending {
		if n.index >= from {
			out = append(out, n)
		}
	}
	t.pending = t.pending[:0]
	return out
}

// outcome is how an attempt ended.
type outcome struct {
	// finished: the SDK ended with End or Suspension, or there is nothing to run.
	finished bool
	err      error
	// retryAfter overrides the policy's next delay (ErrorMessage.next_retry_delay).
	retryAfter time.Duration
	// policy of the invocation's handler, known once the target was resolved.
	policy *schema.RetryPolicy
}

func (t *task) run() {
	defer close(t.done)
	defer t.cancel()
	defer func() {
		if t.holding { // ended before its first attempt
			<-t.inv.sem
		}
	}()
	ctx := t.ctx
	if t.prev != nil {
		select {
		case <-t.prev.done:
		case <-ctx.Done():
		}
		t.prev = nil
	}
	for {
		if ctx.Err() != nil {
			t.inv.forget(t)
			return
		}
		if !t.holding {
			if err := t.inv.nodeSlot(ctx); err != nil {
				t.inv.forget(t)
				return
			}
			t.holding = true
		}
		t.setProgress(func(p *Progress) { p.LastStartAt, p.NextRetryAt = time.Now(), time.Time{}; p.StartCount++ })
		out := t.attempt(ctx)
		// A retry-now asked for before the attempt ended found no retry waiting (the
		// invocation ran, and resuming a running invocation changes nothing): it must not cut
		// the backoff after this attempt short.
		select {
		case <-t.retryNow:
		default:
		}
		if t.holding {
			<-t.inv.sem
			t.holding = false
		}
		if out.finished {
			t.attempts, t.failures = 0, 0
			if t.inv.finish(t) {
				continue
			}
			return
		}
		if ctx.Err() != nil {
			t.inv.forget(t)
			return
		}
		t.failures++
		policy := t.inv.opts.RetryPolicy
		if out.policy != nil {
			policy = *out.policy
		}
		t.inv.log.Warn("invocation attempt failed", append([]any{"invocation", invString(t.id), "attempt", t.failures}, logFields(out.err)...)...)
		// A delay the SDK asks for (a Run retrying under its own retry policy, which ends
		// the retries itself) takes the place of the invocation's policy for this retry and
		// uses none of its attempts, as in restate-server 1.7.12. A delay of 0 is one too.
		delay := out.retryAfter
		if !failureOf(out.err).delayAsked {
			t.attempts++
			if policy.MaxAttempts > 0 && t.attempts >= policy.MaxAttempts {
				t.appendSync(ctx, t.exhausted(policy, failureOf(out.err)))
				t.inv.forget(t)
				return
			}
			delay = backoff(policy, t.attempts)
		}
		t.proposeTransientError(failureOf(out.err).event())
		t.setProgress(func(p *Progress) {
			f := failureOf(out.err)
			p.RetryCount, p.LastFailure, p.LastFailureCode, p.NextRetryAt = t.failures, f.Error(), errorCode(out.err), time.Now().Add(delay)
			p.LastFailureCommand = f.related.columns()
		})
		select {
		case <-time.After(delay):
		case <-t.retryNow:
		case <-ctx.Done():
		}
	}
}

// proposeTransientError logs a TransientError journal event with f, unless this task
// logged one with the same failure for the same run and nothing since: the apply would not
// store it (it repeats the latest event, no command came between), so each retry of one
// failure does not cost a log record. Whether an event is stored is still the apply's
// decision, made from the log alone, so a new leader (whose tasks remember nothing)
// proposing it again changes nothing.
//
// An attempt ends only once its effects are durable, and appends complete in order: so if
// the event's append has not completed yet (lsn 0), nothing was logged after it either.
func (t *task) proposeTransientError(f *logrecord.EventFailure) {
	t.mu.Lock()
	last := t.lastEvent
	repeat := last != nil && last.run == t.runAttempt && (last.lsn == 0 || last.lsn == t.appended) && last.failure.SameAs(f)
	ev := &loggedEvent{failure: f, run: t.runAttempt}
	if !repeat {
		t.lastEvent = ev
	}
	t.mu.Unlock()
	if repeat {
		return
	}
	t.l.AppendAsync(&logrecord.Record{Kind: logrecord.KindJournalEvent, JournalEvent: &logrecord.JournalEvent{
		InvocationID: t.id, Type: logrecord.EventTransientError, Attempt: ev.run, Failure: f,
	}}, func(lsn bifrost.LSN, err error) {
		t.noteAppended(lsn)
		t.mu.Lock()
		defer t.mu.Unlock()
		switch {
		case t.lastEvent != ev:
		case err != nil:
			t.lastEvent = nil // not logged: the next failure proposes it again
		default:
			ev.lsn = lsn
		}
	})
}

// loggedEvent is the TransientError a task logged last: its failure, the run it belongs to
// and its LSN (0 until its append completed).
type loggedEvent struct {
	failure *logrecord.EventFailure
	run     uint32
	lsn     bifrost.LSN
}

// exhausted is the record that ends the retries of an invocation whose last attempt failed
// with f, as restate-server 1.7.12 ends them. Killed, it completes with the last failure's
// code and message (and the waiting callers get its stacktrace too), not with a message of
// its own. Paused, it is a Paused journal event with the last failure (which pauses the
// invocation when applied); sys_invocation shows no failure for it there.
func (t *task) exhausted(policy schema.RetryPolicy, f *attemptFailure) *logrecord.Record {
	if policy.OnMaxAttempts != "Kill" {
		return &logrecord.Record{Kind: logrecord.KindJournalEvent, JournalEvent: &logrecord.JournalEvent{
			InvocationID: t.id, Type: logrecord.EventPaused, Attempt: t.runAttempt, Failure: f.event(),
		}}
	}
	t.l.NoteFailure(t.id, rpc.Failure{Code: f.code, Message: f.message, Stacktrace: f.stacktrace})
	return &logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{
		InvocationID: t.id, Kind: logrecord.EffectFail, Attempt: t.runAttempt, FailureCode: f.code, FailureMessage: f.message,
	}}
}

// deploymentSlot takes an attempt slot of deployment id for the attempt under way, which
// holds a node slot. If the deployment has none free, the node slot is given back while the
// attempt queues for the deployment and taken again after: a deployment that hangs must not
// hold node slots with the attempts queued behind it. release gives the deployment slot
// back; on an error the attempt holds no slot of either kind.
func (t *task) deploymentSlot(ctx context.Context, id string) (release func(), err error) {
	ch := t.inv.deploymentSem(id)
	release = func() { <-ch }
	select {
	case ch <- struct{}{}:
		return release, nil
	default:
	}
	t.inv.depMu.Lock()
	t.inv.stats.DeploymentSlotWaits[id]++
	t.inv.signalPressureLocked()
	t.inv.depMu.Unlock()
	defer t.inv.waiting.Add(-1)
	<-t.inv.sem
	t.holding = false
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := t.inv.nodeSlot(ctx); err != nil {
		release()
		return nil, err
	}
	t.holding = true
	return release, nil
}

// minShrunkDelay is as short as a factor below 1 makes the delays.
const minShrunkDelay = 10 * time.Millisecond

// backoff is the delay before retry number n (1-based): the initial interval times the
// factor to the power n-1, at most the max interval. A factor between 0 and 1 shrinks the
// delays, as in Restate, but not below minShrunkDelay (or the initial interval, if shorter):
// a failing deployment is not retried in a hot loop. A factor of 0 (a manifest may say 0),
// a negative one or NaN counts as 1. Past the largest Duration the delay stays there
// instead of wrapping around to a negative one (no wait at all).
func backoff(p schema.RetryPolicy, n int) time.Duration {
	f := p.ExponentiationFactor
	if !(f > 0) {
		f = 1
	}
	d := float64(p.InitialInterval) * math.Pow(f, float64(n-1))
	if p.MaxInterval > 0 && d > float64(p.MaxInterval) {
		d = float64(p.MaxInterval)
	}
	if f < 1 {
		d = max(d, float64(min(p.InitialInterval, minShrunkDelay)))
	}
	return clampDuration(d)
}

// clampDuration converts d (nanoseconds) to a Duration, at most the largest one.
func clampDuration(d float64) time.Duration {
	if d >= math.MaxInt64 || math.IsNaN(d) {
		return math.MaxInt64
	}
	return time.Duration(max(d, 0))
}

// appendSync logs a record, retrying until it is durable or the leadership ends: a lost
// pause would leave the invocation running with nobody driving it.
func (t *task) appendSync(ctx context.Context, rec *logrecord.Record) {
	for {
		done := make(chan error, 1)
		t.l.AppendAsync(rec, func(lsn bifrost.LSN, err error) {
			t.noteAppended(lsn)
			done <- err
		})
		select {
		case err := <-done:
			if err == nil {
				return
			}
			t.inv.log.Error("append invoker effect", "error", err)
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
	}
}

// forget removes the task without a restart check: its leadership is over.
func (inv *Invoker) forget(t *task) {
	inv.mu.Lock()
	inv.dropLocked(t)
	inv.mu.Unlock()
}

// dropLocked removes t wherever it is still registered; a newer task of the same invocation
// stays.
func (inv *Invoker) dropLocked(t *task) {
	if inv.tasks[t.key] == t {
		delete(inv.tasks, t.key)
	}
	if inv.aborted[t.key] == t {
		delete(inv.aborted, t.key)
	}
}

var errNoTerminal = errors.New("the deployment closed the stream without End, Suspension or Error")
