package processor

import (
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// fixture applies records to a fresh partition store, collecting actions.
type fixture struct {
	t       *testing.T
	part    *store.Partition
	sm      *StateMachine
	actions []Action
	now     int64
}

func newFixture(t *testing.T) *fixture {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{t: t, part: db.Partition(0), sm: &StateMachine{Partition: 0, NumPartitions: 1}, now: 1_000_000}
}

func (f *fixture) apply(r *logrecord.Record) []Action {
	f.t.Helper()
	f.actions = nil
	if r.Time == 0 {
		r.Time = f.now
	}
	txn := f.part.Begin()
	if err := f.sm.Apply(txn, r, func(a Action) { f.actions = append(f.actions, a) }); err != nil {
		f.t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		f.t.Fatal(err)
	}
	return f.actions
}

func (f *fixture) status(id []byte) *store.Status {
	st, err := f.part.Begin().Status(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func newID(key string) []byte { return ids.NewInvocationID(ids.PartitionKeyOf(key)).Bytes() }

func invokeRec(id []byte, handlerType, key string, reqID uint64) *logrecord.Record {
	st := "SERVICE"
	if key != "" {
		st = "VIRTUAL_OBJECT"
	}
	return &logrecord.Record{Kind: logrecord.KindInvoke, Invoke: &logrecord.Invoke{
		InvocationID: id, RequestID: reqID, Input: []byte(`1`),
		Target: logrecord.Target{Service: "Counter", Handler: "add", Key: key, ServiceType: st, HandlerType: handlerType},
	}}
}

func outputEnd(id []byte, value string) []*logrecord.Record {
	out := &protocol.OutputCommand{Value: protocol.NewValue([]byte(value))}
	return []*logrecord.Record{
		{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id, Entries: []logrecord.Entry{{Type: uint16(protocol.OutputCommandType), Payload: out.Marshal()}}}},
		{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id, Kind: logrecord.EffectEnd}},
	}
}

func has[T Action](actions []Action) (T, bool) {
	for _, a := range actions {
		if x, ok := a.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func TestInvokeRunsAndCompletes(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	acts := f.apply(invokeRec(id, "", "", 7))
	if _, ok := has[ActInvoke](acts); !ok {
		t.Fatalf("no ActInvoke in %v", acts)
	}
	st := f.status(id)
	if st.Phase != store.PhaseInvoked || st.JournalLen != 1 {
		t.Fatalf("status %+v", st)
	}
	recs := outputEnd(id, `"done"`)
	f.apply(recs[0])
	acts = f.apply(recs[1])
	done, ok := has[ActCompleted](acts)
	if !ok || string(done.Result.Value) != `"done"` {
		t.Fatalf("completion %v", acts)
	}
	if f.status(id) != nil {
		t.Error("status kept for an invocation without retention")
	}
}

func TestExclusiveInvocationsQueueBehindTheLock(t *testing.T) {
	f := newFixture(t)
	first, second := newID("k"), newID("k")
	f.apply(invokeRec(first, "EXCLUSIVE", "k", 1))
	acts := f.apply(invokeRec(second, "EXCLUSIVE", "k", 2))
	if _, ok := has[ActInvoke](acts); ok {
		t.Fatal("second exclusive invocation started while the key was locked")
	}
	if st := f.status(second); st.Phase != store.PhaseInboxed {
		t.Fatalf("second is %s", st.Phase)
	}
	// A shared handler on the same key is not blocked.
	shared := newID("k")
	if _, ok := has[ActInvoke](f.apply(invokeRec(shared, "SHARED", "k", 3))); !ok {
		t.Fatal("shared handler blocked by the lock")
	}
	recs := outputEnd(first, "1")
	f.apply(recs[0])
	acts = f.apply(recs[1])
	next, ok := has[ActInvoke](acts)
	if !ok || string(next.ID) != string(second) {
		t.Fatalf("the inbox did not hand the lock to the next invocation: %v", acts)
	}
	if st := f.status(second); st.Phase != store.PhaseInvoked {
		t.Fatalf("second is %s", st.Phase)
	}
}

func TestStaleEpochIsFenced(t *testing.T) {
	f := newFixture(t)
	f.apply(&logrecord.Record{Kind: logrecord.KindAnnounceLeader, Epoch: 2, AnnounceLeader: &logrecord.AnnounceLeader{}})
	id := newID("")
	rec := invokeRec(id, "", "", 1)
	rec.Epoch = 1
	if acts := f.apply(rec); len(acts) != 0 || f.status(id) != nil {
		t.Fatal("a record of a deposed leader was applied")
	}
	rec.Epoch = 2
	f.apply(rec)
	if f.status(id) == nil {
		t.Fatal("a record of the current leader was not applied")
	}
}

func TestDuplicateShuffledRecordIsDropped(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	rec := invokeRec(id, "", "", 0)
	rec.Dedup = &logrecord.Dedup{Producer: 3, Seq: 5}
	f.apply(rec)
	recs := outputEnd(id, "1")
	f.apply(recs[0])
	f.apply(recs[1])
	if acts := f.apply(rec); len(acts) != 0 || f.status(id) != nil {
		t.Fatalf("the resent record was applied again: %v", acts)
	}
}

func TestSuspendedInvocationResumesOnTimer(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	sleep := &protocol.SleepCommand{WakeUpTime: uint64(f.now + 1000), ResultCompletionID: 1}
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id,
		Entries: []logrecord.Entry{{Type: uint16(protocol.SleepCommandType), Payload: sleep.Marshal()}}}})
	timer, ok := has[ActTimer](acts)
	if !ok {
		t.Fatal("no timer registered")
	}
	f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id, Kind: logrecord.EffectSuspend, WaitingCompletions: []uint32{1}, WaitingSignals: []uint32{1}}})
	if st := f.status(id); st.Phase != store.PhaseSuspended {
		t.Fatalf("phase %s", st.Phase)
	}
	acts = f.apply(&logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: timer.Timer})
	if _, ok := has[ActInvoke](acts); !ok {
		t.Fatalf("not resumed: %v", acts)
	}
	st := f.status(id)
	if st.Phase != store.PhaseInvoked || st.JournalLen != 3 {
		t.Fatalf("status %+v", st)
	}
	// The same timer firing again (a resend) changes nothing.
	if acts := f.apply(&logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: timer.Timer}); len(acts) != 0 {
		t.Fatalf("timer fired twice: %v", acts)
	}
}

func TestSuspensionWithCompletionAlreadyThereResumesAtOnce(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	n := protocol.CompletionNotification(4).WithValue([]byte(`"x"`))
	f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id,
		Entries: []logrecord.Entry{{Type: uint16(protocol.RunCompletionType), Payload: n.Marshal()}}}})
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id, Kind: logrecord.EffectSuspend, WaitingCompletions: []uint32{4}}})
	if _, ok := has[ActInvoke](acts); !ok {
		t.Fatalf("not resumed: %v", acts)
	}
	if st := f.status(id); st.Phase != store.PhaseInvoked {
		t.Fatalf("phase %s", st.Phase)
	}
}

func TestTimerOfAnEarlierLifeDoesNotFireIntoALaterOne(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	sleep := &protocol.SleepCommand{WakeUpTime: uint64(f.now + 1000), ResultCompletionID: 1}
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id,
		Entries: []logrecord.Entry{{Type: uint16(protocol.SleepCommandType), Payload: sleep.Marshal()}}}})
	timer, _ := has[ActTimer](acts)
	for _, r := range outputEnd(id, "1") {
		f.apply(r)
	}
	// The same id comes back later (an idempotency key reused after retention).
	f.now += 500
	f.apply(invokeRec(id, "", "", 2))
	if acts := f.apply(&logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: timer.Timer}); len(acts) != 0 {
		t.Fatalf("old timer acted on the new invocation: %v", acts)
	}
	if st := f.status(id); st.JournalLen != 1 {
		t.Fatalf("journal length %d, want 1", st.JournalLen)
	}
}

func TestSecondResultForACompletionIsDropped(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	res := &logrecord.Record{Kind: logrecord.KindInvocationResult, InvocationResult: &logrecord.InvocationResult{InvocationID: id, CompletionID: 2, Value: []byte("1")}}
	if _, ok := has[ActNotify](f.apply(res)); !ok {
		t.Fatal("first result not delivered")
	}
	if acts := f.apply(res); len(acts) != 0 {
		t.Fatalf("second result delivered: %v", acts)
	}
	if st := f.status(id); st.JournalLen != 2 {
		t.Fatalf("journal length %d, want 2", st.JournalLen)
	}
}

func TestPausedInvocationResumesAndKillReleasesTheLock(t *testing.T) {
	f := newFixture(t)
	id, next := newID("k"), newID("k")
	f.apply(invokeRec(id, "EXCLUSIVE", "k", 1))
	f.apply(invokeRec(next, "EXCLUSIVE", "k", 2))
	f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id, Kind: logrecord.EffectPause, FailureMessage: "boom"}})
	if st := f.status(id); st.Phase != store.PhasePaused || st.LastFailure != "boom" {
		t.Fatalf("status %+v", st)
	}
	manage := func(op logrecord.ManageOp) []Action {
		return f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: op, RequestID: 9}})
	}
	acts := manage(logrecord.ManageResume)
	if _, ok := has[ActInvoke](acts); !ok {
		t.Fatalf("resume did not restart the invocation: %v", acts)
	}
	if acts := manage(logrecord.ManageResume); len(acts) != 1 {
		t.Fatalf("resume of a running invocation did more than answer: %v", acts)
	}
	acts = manage(logrecord.ManagePause)
	if abort, ok := has[ActAbort](acts); !ok || !abort.Pause || f.status(id).Phase != store.PhasePaused {
		t.Fatalf("pause: %v, phase %s", acts, f.status(id).Phase)
	}
	acts = manage(logrecord.ManageKill)
	if abort, ok := has[ActAbort](acts); !ok || abort.Pause {
		t.Fatalf("kill did not abort the attempt: %v", acts)
	}
	if inv, ok := has[ActInvoke](acts); !ok || string(inv.ID) != string(next) {
		t.Fatalf("kill did not hand the lock on: %v", acts)
	}
	if done, ok := has[ActCompleted](acts); !ok || done.Result.Code != 409 || done.Result.Message != "killed" {
		t.Fatalf("kill result %v", acts)
	}
	if r, _ := has[ActManageReply](manage(logrecord.ManageKill)); r.Outcome != rpc.ManageNotFound {
		t.Fatalf("kill of a dropped invocation: %v", r.Outcome)
	}
}

func TestCancellingAQueuedInvocationLeavesTheLockToItsHolder(t *testing.T) {
	f := newFixture(t)
	holder, queued, last := newID("k"), newID("k"), newID("k")
	f.apply(invokeRec(holder, "EXCLUSIVE", "k", 1))
	f.apply(invokeRec(queued, "EXCLUSIVE", "k", 2))
	f.apply(invokeRec(last, "EXCLUSIVE", "k", 3))
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: queued, Op: logrecord.ManageCancel, RequestID: 4}})
	if _, ok := has[ActInvoke](acts); ok {
		t.Fatalf("cancelling a queued invocation started another one: %v", acts)
	}
	if done, ok := has[ActCompleted](acts); !ok || done.Result.Message != "Cancelled" {
		t.Fatalf("queued invocation not cancelled: %v", acts)
	}
	for _, r := range outputEnd(holder, "1") {
		acts = f.apply(r)
	}
	if next, ok := has[ActInvoke](acts); !ok || string(next.ID) != string(last) {
		t.Fatalf("the lock went to %v, want the last queued invocation", acts)
	}
}

func TestSecondSignalForTheSameAwakeableIsDropped(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	sig := &logrecord.Record{Kind: logrecord.KindSignal, Signal: &logrecord.Signal{InvocationID: id, SignalID: 17, Value: []byte(`"a"`)}}
	f.apply(sig)
	again := &logrecord.Record{Kind: logrecord.KindSignal, Signal: &logrecord.Signal{InvocationID: id, SignalID: 17, Value: []byte(`"b"`)}}
	if acts := f.apply(again); len(acts) != 0 {
		t.Fatalf("second resolution delivered: %v", acts)
	}
	if st := f.status(id); st.JournalLen != 2 {
		t.Fatalf("journal length %d, want 2", st.JournalLen)
	}
}

func TestEffectsOfAPausedRunAreDropped(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: logrecord.ManagePause}})
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: logrecord.ManageResume}})
	recs := outputEnd(id, "1") // logged by the paused run: attempt 0
	for _, r := range recs {
		if acts := f.apply(r); len(acts) != 0 {
			t.Fatalf("late effect of the paused run applied: %v", acts)
		}
	}
	for _, r := range recs {
		r.InvokerEffect.Attempt = 1
	}
	f.apply(recs[0])
	if _, ok := has[ActCompleted](f.apply(recs[1])); !ok {
		t.Fatal("the resumed run's effects were not applied")
	}
}

// restate-server 1.7.12 refuses to resume an invocation that has not started (queued behind
// an object's lock, or scheduled for later) with 425 "is either inboxed or scheduled, cannot
// be resumed."; the answer was "done" (200) here. Nothing changes either way.
func TestResumeOfAnInvocationNotStarted(t *testing.T) {
	f := newFixture(t)
	holder, queued := newID("k"), newID("k")
	f.apply(invokeRec(holder, "EXCLUSIVE", "k", 0))
	f.apply(invokeRec(queued, "EXCLUSIVE", "k", 0))
	scheduled := newID("")
	sr := invokeRec(scheduled, "", "", 0)
	sr.Invoke.ExecutionTime = f.now + 60_000
	f.apply(sr)
	for name, id := range map[string][]byte{"inboxed": queued, "scheduled": scheduled} {
		before := *f.status(id)
		acts := f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: logrecord.ManageResume, RequestID: 7}})
		if r, ok := has[ActManageReply](acts); !ok || r.Outcome != rpc.ManageNotStarted || len(acts) != 1 {
			t.Errorf("resume of the %s invocation: %v, want only the answer %s", name, acts, rpc.ManageNotStarted)
		}
		if st := f.status(id); st.Phase != before.Phase || st.ModifiedAt != before.ModifiedAt {
			t.Errorf("resume changed the %s invocation: %+v", name, st)
		}
	}
}
