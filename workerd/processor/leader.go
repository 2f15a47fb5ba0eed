package processor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// Leader is the acting side of a partition processor: it appends records on behalf of
// ingress requests, the invoker, timers and the shuffler, and executes the actions that
// applying records produces.
type Leader struct {
	p      *Processor
	epoch  uint64
	timers *timerService
	shuf   *shuffler
	window *appendWindow

	nextRequest atomic.Uint64
	// fencedAt is the LSN of the first record whose apply brought a newer leader's
	// announcement (0: none yet): this leadership's records after it are dropped by every
	// replica.
	fencedAt atomic.Uint64
	mu       sync.Mutex
	replies  map[uint64]chan rpc.InvokeResponse   // by ingress request id
	manages  map[uint64]chan rpc.ManageOutcome    // by admin request id
	restarts map[uint64]chan rpc.RestartOutcome   // by admin request id
	waiters  map[string][]chan rpc.InvokeResponse // by invocation id
	// stacktraces are the failures the invoker ends invocations with, by invocation id,
	// kept for their stacktrace, which the log does not hold (see NoteFailure).
	stacktraces map[string]rpc.Failure
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

func newLeader(p *Processor, epoch uint64) *Leader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Leader{
		p:        p,
		epoch:    epoch,
		replies:  map[uint64]chan rpc.InvokeResponse{},
		manages:  map[uint64]chan rpc.ManageOutcome{},
		restarts: map[uint64]chan rpc.RestartOutcome{},
		waiters:  map[string][]chan rpc.InvokeResponse{},
		ctx:      ctx,
		cancel:   cancel,
		window:   newAppendWindow(p.cfg.AppendWindow),

		stacktraces: map[string]rpc.Failure{},
	}
	l.timers = newTimerService(l)
	l.shuf = newShuffler(l)
	return l
}

// Partition is the id of the led partition.
func (l *Leader) Partition() uint32 { return l.p.cfg.Partition }

// Store is the led partition's store.
func (l *Leader) Store() *store.Partition { return l.p.cfg.Store }

// Snapshot is a consistent read view of the led partition's store.
func (l *Leader) Snapshot() (*store.Snapshot, error) { return l.p.cfg.Store.Snapshot() }

// Epoch is the leader's epoch.
func (l *Leader) Epoch() uint64 { return l.epoch }

// Context ends when the leadership ends.
func (l *Leader) Context() context.Context { return l.ctx }

func (l *Leader) stop() {
	l.cancel()
	l.wg.Wait() // the resumer first: it may still be starting tasks
	l.p.cfg.Invoker.StopPartition(l.p.cfg.Partition)
}

func (l *Leader) stamp(r *logrecord.Record) []byte {
	r.Epoch = l.epoch
	r.Time = nowMs()
	b, err := logrecord.Encode(r)
	if err != nil {
		panic(fmt.Sprintf("encode own log record: %v", err)) // only plain data: cannot fail
	}
	return b
}

// appendRecord appends a record with the leader's epoch and waits until it is durable.
func (l *Leader) appendRecord(ctx context.Context, r *logrecord.Record) (bifrost.LSN, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("append to the log of partition %d: %w", l.p.cfg.Partition, err)
	}
	b := l.stamp(r)
	n, err := l.window.acquire(ctx, l.ctx.Done(), len(b))
	if err != nil {
		return 0, fmt.Errorf("append to the log of partition %d: %w", l.p.cfg.Partition, err)
	}
	type result struct {
		lsn bifrost.LSN
		err error
	}
	ch := make(chan result, 1)
	l.p.writer().AppendAsync([][]byte{b}, func(lsn bifrost.LSN, err error) {
		l.window.release(n) // once durable or failed, also when ctx ended before
		ch <- result{lsn, err}
	})
	select {
	case r := <-ch:
		return r.lsn, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("append to the log of partition %d: %w", l.p.cfg.Partition, ctx.Err())
	}
}

// appendApplied appends r and returns once this node has applied it. If a newer leader's
// announcement came before it in the log, every replica drops it: the caller gets
// rpc.ErrNotLeader (nothing took effect; it may send the request to the new leader) rather
// than an acknowledgement of a write that is lost. If ctx ends first the record is durable
// but its fate unknown: rpc.ErrOutcomeUnknown.
func (l *Leader) appendApplied(ctx context.Context, r *logrecord.Record) (bifrost.LSN, error) {
	lsn, err := l.appendRecord(ctx, r)
	if err != nil {
		return 0, err
	}
	// Once the leadership ended, the record is applied by the processor following on, if
	// it still runs: a processor that stopped (its partition moved off this node, a failed
	// Run waiting for its restart) never applies it, and the caller must not wait for ever.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, func() { time.AfterFunc(leadershipEndedWait, cancel) })()
	if err := l.p.WaitApplied(wctx, uint64(lsn)); err != nil {
		return lsn, fmt.Errorf("%w: waiting for lsn %d to be applied: %v", rpc.ErrOutcomeUnknown, lsn, err)
	}
	if f := l.fencedAt.Load(); f != 0 {
		if f < uint64(lsn) {
			return lsn, rpc.ErrNotLeader
		}
		return lsn, nil
	}
	if l.ctx.Err() != nil {
		// The leadership ended before lsn was applied, and what applied it (the processor
		// following, or leading again with a new epoch) does not fence this leadership:
		// the record was applied only if no newer announcement was applied at all.
		if e, err := l.p.cfg.Store.Epoch(); err != nil || e != l.epoch {
			return lsn, fmt.Errorf("%w: the leadership of epoch %d ended before lsn %d was applied", rpc.ErrOutcomeUnknown, l.epoch, lsn)
		}
	}
	return lsn, nil
}

// leadershipEndedWait bounds appendApplied's wait once the leadership has ended.
var leadershipEndedWait = 2 * time.Second

// fence records that the record at lsn brought a newer leader's announcement; the apply
// loop calls it before it publishes lsn as applied.
func (l *Leader) fence(lsn bifrost.LSN) { l.fencedAt.CompareAndSwap(0, uint64(lsn)) }

// AppendAsync appends a record with the leader's epoch; done (if not nil) runs with the
// record's LSN once it is durable. Records appended from one goroutine keep their order.
// It waits while the leader's window of appends that are not durable yet is full; once
// the leadership has ended it no longer waits (such appends are fenced anyway).
func (l *Leader) AppendAsync(r *logrecord.Record, done func(bifrost.LSN, error)) {
	b := l.stamp(r)
	n, err := l.window.acquire(l.ctx, nil, len(b))
	if err != nil {
		n = 0
	}
	l.p.writer().AppendAsync([][]byte{b}, func(lsn bifrost.LSN, err error) {
		if n > 0 {
			l.window.release(n)
		}
		if done != nil {
			done(lsn, err)
		}
	})
}

// NoteFailure tells the leader the failure that the effect the invoker is about to append
// ends invocation id with (retries exhausted, on-max-attempts = "kill"). The log keeps its
// code and message only; the callers waiting for the invocation also get its stacktrace, as
// Restate answers them (its record carries the stacktrace). A completion with another
// failure (a kill that came first) answers without it.
func (l *Leader) NoteFailure(id []byte, f rpc.Failure) {
	if f.Stacktrace == "" {
		return
	}
	l.mu.Lock()
	l.stacktraces[string(id)] = f
	l.mu.Unlock()
}

// WaitApplied blocks until the record at lsn and all before it are applied to the store.
func (l *Leader) WaitApplied(ctx context.Context, lsn bifrost.LSN) error {
	return l.p.WaitApplied(ctx, uint64(lsn))
}

// activate re-derives pending work from the store when the leadership starts: timers,
// the outbox, expiry, and the invocations that were running under the previous leader.
func (l *Leader) activate() {
	l.wg.Add(4)
	go func() { defer l.wg.Done(); l.resumeInvoked(l.ctx) }()
	go func() { defer l.wg.Done(); l.timers.run(l.ctx) }()
	go func() { defer l.wg.Done(); l.shuf.run(l.ctx) }()
	go func() { defer l.wg.Done(); l.runExpiry(l.ctx) }()
	l.shuf.nudge()
}

// resumePage is how many invoked invocations are read from the store at a time.
const resumePage = 256

// resumeInvoked hands the invoked invocations to the invoker a page at a time, each as an
// attempt slot frees up: becoming leader of 100k running invocations neither reads them
// all into memory nor starts 100k tasks at once.
func (l *Leader) resumeInvoked(ctx context.Context) {
	var after []byte
	for ctx.Err() == nil {
		ids, err := l.p.cfg.Store.InvokedPage(after, resumePage)
		if err != nil {
			// The store failing is the processor's business; it restarts on its next
			// write error. Retrying here would only spin.
			l.p.log.Error("read invoked invocations; they resume at the next leadership", "error", err)
			return
		}
		for _, id := range ids {
			l.p.cfg.Invoker.Resume(l, id)
			if ctx.Err() != nil {
				return
			}
		}
		if len(ids) < resumePage {
			return
		}
		after = ids[len(ids)-1]
	}
}

func (l *Leader) dispatch(a Action) {
	switch a := a.(type) {
	case ActInvoke:
		l.p.cfg.Invoker.Invoke(l, a.ID)
	case ActNotify:
		l.p.cfg.Invoker.Notify(l, a.ID, a.Index, a.Entry)
	case ActTimer:
		l.timers.add(a.Timer)
	case ActOutbox:
		l.shuf.nudge()
	case ActAbort:
		if a.Pause {
			l.p.cfg.Invoker.Pause(l, a.ID)
		} else {
			l.p.cfg.Invoker.Abort(l, a.ID)
		}
	case ActRetryNow:
		l.p.cfg.Invoker.RetryNow(l, a.ID)
	case ActManageReply:
		answer(&l.mu, l.manages, a.RequestID, a.Outcome)
	case ActRestartReply:
		answer(&l.mu, l.restarts, a.RequestID, a.Outcome)
	case ActReply:
		answer(&l.mu, l.replies, a.RequestID, a.Response)
	case ActCompleted:
		observeCompleted(a)
		l.mu.Lock()
		ws := l.waiters[string(a.ID)]
		delete(l.waiters, string(a.ID))
		noted, ok := l.stacktraces[string(a.ID)]
		delete(l.stacktraces, string(a.ID))
		l.mu.Unlock()
		if len(ws) > 0 {
			// Like Restate, the answer at completion carries no idempotency-expires; answers
			// from the retained result (a repeated call, attach, output) do.
			resp := responseOf(a.ID, a.Result, 0)
			if f := resp.Failure; ok && f != nil && f.Code == noted.Code && f.Message == noted.Message {
				f.Stacktrace = noted.Stacktrace
			}
			for _, ch := range ws {
				ch <- resp
			}
		}
	}
}

// Invoke serves an ingress request: it appends the Invoke record and waits for the answer
// (the durable acceptance of a send, or the result of a call).
func (l *Leader) Invoke(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
	if l.ctx.Err() != nil {
		return nil, rpc.ErrNotLeader // never append for a leadership that is over
	}
	reqID := l.nextRequest.Add(1)
	ch := make(chan rpc.InvokeResponse, 2) // at most one reply and one completion
	idKey := string(req.InvocationID)
	l.mu.Lock()
	l.replies[reqID] = ch
	if !req.Send {
		l.waiters[idKey] = append(l.waiters[idKey], ch)
	}
	l.mu.Unlock()
	defer l.forget(reqID, idKey, ch)

	inv := &logrecord.Invoke{
		InvocationID:   req.InvocationID,
		Target:         logrecord.Target{Service: req.Target.Service, Handler: req.Target.Handler, Key: req.Target.Key, ServiceType: req.Target.ServiceType, HandlerType: req.Target.HandlerType},
		Input:          req.Input,
		IdempotencyKey: req.IdempotencyKey,
		RequestID:      reqID,
		Send:           req.Send,
	}
	if !req.ExecutionTime.IsZero() {
		inv.ExecutionTime = req.ExecutionTime.UnixMilli()
	}
	inv.CompletionRetentionMs = max(req.CompletionRetention.Milliseconds(), 0)
	inv.JournalRetentionMs = max(req.JournalRetention.Milliseconds(), 0)
	for _, h := range req.Headers {
		inv.Headers = append(inv.Headers, logrecord.Header{Key: h.Key, Value: h.Value})
	}
	if _, err := l.appendRecord(ctx, &logrecord.Record{Kind: logrecord.KindInvoke, Invoke: inv}); err != nil {
		return nil, fmt.Errorf("append invoke: %w", err)
	}
	select {
	case resp := <-ch:
		return &resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		return nil, rpc.ErrNotLeader
	}
}

func (l *Leader) forget(reqID uint64, idKey string, ch chan rpc.InvokeResponse) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.replies, reqID)
	ws := l.waiters[idKey]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(l.waiters, idKey)
	} else {
		l.waiters[idKey] = ws
	}
}

// registerWaiter makes ch receive the result of invocation idKey when it completes.
func (l *Leader) registerWaiter(idKey string, ch chan rpc.InvokeResponse) {
	l.mu.Lock()
	l.waiters[idKey] = append(l.waiters[idKey], ch)
	l.mu.Unlock()
}

// Attach answers an invocation's result: at once if it completed, else (Wait) when it does,
// or rpc.ErrNotCompleted.
func (l *Leader) Attach(ctx context.Context, req *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	ch := make(chan rpc.InvokeResponse, 1)
	idKey := string(req.InvocationID)
	if req.Wait {
		// Registered before reading the store, so a completion in between is not missed.
		l.registerWaiter(idKey, ch)
		defer l.forget(0, idKey, ch)
	}
	st, err := l.Store().Begin().Status(req.InvocationID)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, rpc.ErrNotFound
	}
	if st.Phase == store.PhaseCompleted && st.Result != nil {
		resp := responseOf(req.InvocationID, *st.Result, st.CompletedAt+st.CompletionRetentionMs)
		return &resp, nil
	}
	if !req.Wait {
		return nil, rpc.ErrNotCompleted
	}
	select {
	case resp := <-ch:
		return &resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		return nil, rpc.ErrNotLeader
	}
}

// Signal appends a signal for an invocation of this partition and returns once it is
// applied (appendApplied).
func (l *Leader) Signal(ctx context.Context, req *rpc.SignalRequest) error {
	if l.ctx.Err() != nil {
		return rpc.ErrNotLeader
	}
	sg := &logrecord.Signal{InvocationID: req.InvocationID, SignalID: req.SignalID, Value: req.Value}
	if req.Failure != nil {
		sg.Failed, sg.FailureCode, sg.FailureMsg, sg.Value = true, req.Failure.Code, req.Failure.Message, nil
	} else if sg.Value == nil {
		sg.Value = []byte{}
	}
	_, err := l.appendApplied(ctx, &logrecord.Record{Kind: logrecord.KindSignal, Signal: sg})
	return err
}

// PatchState appends a state patch and returns once its record is applied (appendApplied);
// the patch itself takes effect when the object's lock is free.
func (l *Leader) PatchState(ctx context.Context, req *rpc.PatchStateRequest) error {
	if l.ctx.Err() != nil {
		return rpc.ErrNotLeader
	}
	p := &logrecord.PatchState{Service: req.Service, Key: req.Key, Version: req.Version}
	for _, e := range req.State {
		p.State = append(p.State, logrecord.StateEntry{Key: e.Key, Value: e.Value})
	}
	_, err := l.appendApplied(ctx, &logrecord.Record{Kind: logrecord.KindPatchState, PatchState: p})
	return err
}

// Manage applies an operator action and reports its outcome.
func (l *Leader) Manage(ctx context.Context, req *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	if l.ctx.Err() != nil {
		return "", rpc.ErrNotLeader
	}
	reqID, ch, done := awaitAnswer(l, l.manages)
	defer done()
	m := &logrecord.Manage{InvocationID: req.InvocationID, Op: logrecord.ManageOp(req.Op), RequestID: reqID}
	if _, err := l.appendRecord(ctx, &logrecord.Record{Kind: logrecord.KindManage, Manage: m}); err != nil {
		return "", err
	}
	select {
	case o := <-ch:
		return o, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-l.ctx.Done():
		// The record is in the log: the next leader applies it. Not ErrNotLeader, which
		// callers answer by sending the request again.
		return "", rpc.ErrOutcomeUnknown
	}
}

// awaitAnswer registers a new request id in waiting (under l.mu): its answer, given with
// answer once the record carrying the id is applied, arrives on ch; done unregisters it.
func awaitAnswer[T any](l *Leader, waiting map[uint64]chan T) (id uint64, ch chan T, done func()) {
	id = l.nextRequest.Add(1)
	ch = make(chan T, 1)
	l.mu.Lock()
	waiting[id] = ch
	l.mu.Unlock()
	return id, ch, func() {
		l.mu.Lock()
		delete(waiting, id)
		l.mu.Unlock()
	}
}

// answer hands v to the request waiting under id, if it still waits.
func answer[T any](mu *sync.Mutex, waiting map[uint64]chan T, id uint64, v T) {
	mu.Lock()
	ch := waiting[id]
	delete(waiting, id)
	mu.Unlock()
	if ch != nil {
		ch <- v
	}
}
