package processor

import (
	"testing"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// The changes of rulesManage, each checked against restate-server 1.7.12 with the restate
// CLI (see the README), and each with the earlier rules for records before the
// KindManageFormat marker.

// newManageFixture is a fixture whose log switched to rulesManage.
func newManageFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.apply(&logrecord.Record{Kind: logrecord.KindManageFormat})
	return f
}

// suspendedOnCompletion starts an invocation and suspends it waiting for completion 1.
func (f *fixture) suspendedOnCompletion() []byte {
	f.t.Helper()
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	f.now += 10
	f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{
		InvocationID: id, Kind: logrecord.EffectSuspend, WaitingCompletions: []uint32{1}}})
	if st := f.status(id); st.Phase != store.PhaseSuspended {
		f.t.Fatalf("not suspended: %+v", st)
	}
	return id
}

func (f *fixture) manage(id []byte, op logrecord.ManageOp) []Action {
	f.t.Helper()
	return f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: op, RequestID: 99}})
}

func completionOf(id []byte, cid uint32) *logrecord.Record {
	return &logrecord.Record{Kind: logrecord.KindInvocationResult, InvocationResult: &logrecord.InvocationResult{InvocationID: id, CompletionID: cid, Value: []byte(`"done"`)}}
}

// Restate answers a pause of a suspended invocation with 200 and leaves it suspended, so
// that what it waits for still wakes it. Here it was paused (202) and stayed paused when
// its completion came.
func TestPauseLeavesASuspendedInvocationSuspended(t *testing.T) {
	f := newManageFixture(t)
	id := f.suspendedOnCompletion()
	suspendedAt := f.status(id).ModifiedAt
	f.now += 10
	acts := f.manage(id, logrecord.ManagePause)
	if r, ok := has[ActManageReply](acts); !ok || r.Outcome != rpc.ManageDone {
		t.Fatalf("pause answered %v, want %s (200)", acts, rpc.ManageDone)
	}
	if _, ok := has[ActAbort](acts); ok {
		t.Fatalf("pause aborted a suspended invocation: %v", acts)
	}
	st := f.status(id)
	if st.Phase != store.PhaseSuspended || st.ModifiedAt != suspendedAt || len(st.WaitingCompletions) != 1 {
		t.Fatalf("after pause: %+v", st)
	}
	// Its completion wakes it.
	f.now += 10
	acts = f.apply(completionOf(id, 1))
	if _, ok := has[ActInvoke](acts); !ok {
		t.Fatalf("completion did not wake it: %v", acts)
	}
	if st := f.status(id); st.Phase != store.PhaseInvoked {
		t.Fatalf("after its completion: %s", st.Phase)
	}
}

// Restate runs a suspended invocation again when it is resumed (200, then running, with
// modified_at the resume's time). Here the resume did nothing.
func TestResumeRunsASuspendedInvocation(t *testing.T) {
	f := newManageFixture(t)
	id := f.suspendedOnCompletion()
	f.now += 10
	acts := f.manage(id, logrecord.ManageResume)
	if r, ok := has[ActManageReply](acts); !ok || r.Outcome != rpc.ManageDone {
		t.Fatalf("resume answered %v, want %s (200)", acts, rpc.ManageDone)
	}
	if inv, ok := has[ActInvoke](acts); !ok || string(inv.ID) != string(id) {
		t.Fatalf("resume did not run it: %v", acts)
	}
	st := f.status(id)
	if st.Phase != store.PhaseInvoked || st.ModifiedAt != f.now || st.WaitingCompletions != nil {
		t.Fatalf("after resume: %+v", st)
	}
	// The new attempt's effects apply (the attempt is the same: nothing was aborted).
	recs := outputEnd(id, `"x"`)
	f.apply(recs[0])
	if _, ok := has[ActCompleted](f.apply(recs[1])); !ok {
		t.Fatal("the resumed run's effects were not applied")
	}
}

// Restate has a running invocation that waits to retry try again at once when it is
// resumed (200); the status does not change.
func TestResumeOfARunningInvocationRetriesNow(t *testing.T) {
	f := newManageFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	before := f.status(id)
	f.now += 10
	acts := f.manage(id, logrecord.ManageResume)
	if r, ok := has[ActRetryNow](acts); !ok || string(r.ID) != string(id) {
		t.Fatalf("resume: %v, want a retry now", acts)
	}
	if r, _ := has[ActManageReply](acts); r.Outcome != rpc.ManageDone {
		t.Fatalf("resume answered %s", r.Outcome)
	}
	if st := f.status(id); st.Phase != store.PhaseInvoked || st.ModifiedAt != before.ModifiedAt {
		t.Fatalf("after resume: %+v", st)
	}
}

// Restate stamps modified_at with the time a suspended invocation's notification was
// appended when it wakes it; here it kept the suspension's time.
func TestWakeUpStampsModifiedAt(t *testing.T) {
	f := newManageFixture(t)
	id := f.suspendedOnCompletion()
	f.now += 1000
	f.apply(completionOf(id, 1))
	if st := f.status(id); st.Phase != store.PhaseInvoked || st.ModifiedAt != f.now {
		t.Fatalf("woken: phase %s modified %d, want modified %d", st.Phase, st.ModifiedAt, f.now)
	}
}

// Restate stamps modified_at on every change of a status: a notification appended to a
// paused invocation's journal, a caller attached to it, a cancel that resumes it.
func TestStatusChangesStampModifiedAt(t *testing.T) {
	f := newManageFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 1))
	f.now += 10
	f.manage(id, logrecord.ManagePause)
	check := func(what string) {
		t.Helper()
		if st := f.status(id); st.ModifiedAt != f.now {
			t.Fatalf("%s: modified %d, want %d (%s)", what, st.ModifiedAt, f.now, st.Phase)
		}
	}
	f.now += 10
	f.apply(&logrecord.Record{Kind: logrecord.KindSignal, Signal: &logrecord.Signal{InvocationID: id, SignalID: 17, Value: []byte(`"ok"`)}})
	check("awakeable resolved while paused")
	f.now += 10
	caller := newID("")
	f.apply(&logrecord.Record{Kind: logrecord.KindAttach, Attach: &logrecord.Attach{InvocationID: id, Wait: true,
		Caller: logrecord.Caller{InvocationID: caller, CompletionID: 3}}})
	check("attached by another invocation")
	f.now += 10
	f.apply(&logrecord.Record{Kind: logrecord.KindSignal, Signal: &logrecord.Signal{InvocationID: id, SignalID: protocol.CancelSignalID}})
	if st := f.status(id); st.Phase != store.PhaseInvoked {
		t.Fatalf("cancel did not resume it: %s", st.Phase)
	}
	check("cancelled while paused")
}

// An idempotent request from another invocation that joins the run in flight is a caller
// attached to it too.
func TestIdempotentCallerStampsModifiedAt(t *testing.T) {
	f := newManageFixture(t)
	target := logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	id := newID("")
	f.apply(idempotentInvoke(id, target, "ik", 1, 60_000))
	f.now += 10
	again := idempotentInvoke(id, target, "ik", 0, 60_000)
	again.Invoke.Caller = &logrecord.Caller{InvocationID: newID(""), CompletionID: 2}
	f.apply(again)
	if st := f.status(id); len(st.Callers) != 1 || st.ModifiedAt != f.now {
		t.Fatalf("callers %d, modified %d, want %d", len(st.Callers), st.ModifiedAt, f.now)
	}
}

func workflowRun(id []byte, key string) *logrecord.Record {
	r := invokeRec(id, "WORKFLOW", key, 1)
	r.Invoke.Target.ServiceType = "WORKFLOW"
	return r
}

// In Restate a workflow's run holds no lock: a state patch of its key applies while the run
// is in flight. Here it waited for the run to end.
func TestWorkflowRunDoesNotHoldBackAStatePatch(t *testing.T) {
	f := newManageFixture(t)
	run := newID("wf1")
	f.apply(workflowRun(run, "wf1"))
	f.apply(patchRec("wf1", nil, "x", "1"))
	wantState(t, f.state("wf1"), "x", "1")
	// An object's lock holder still holds a patch back.
	holder := newID("k")
	f.apply(invokeRec(holder, "EXCLUSIVE", "k", 2))
	f.apply(patchRec("k", nil, "a", "patched"))
	wantState(t, f.state("k"))
	for _, r := range outputEnd(holder, "1") {
		f.apply(r)
	}
	wantState(t, f.state("k"), "a", "patched")
}

// Before the marker every replica applies these records as the previous version did.
func TestManageRulesBeforeTheMarker(t *testing.T) {
	f := newRulesFixture(t) // rulesCallee only
	// Pause of a suspended invocation: paused, accepted.
	id := f.suspendedOnCompletion()
	f.now += 10
	acts := f.manage(id, logrecord.ManagePause)
	if r, _ := has[ActManageReply](acts); r.Outcome != rpc.ManageAccepted || f.status(id).Phase != store.PhasePaused {
		t.Fatalf("pause: %v, phase %s", acts, f.status(id).Phase)
	}
	// Resume of a running one: answered, nothing else.
	running := newID("")
	f.apply(invokeRec(running, "", "", 3))
	if acts := f.manage(running, logrecord.ManageResume); len(acts) != 1 {
		t.Fatalf("resume of a running invocation by the earlier rules: %v", acts)
	}
	// Resume of a suspended one: left suspended.
	other := f.suspendedOnCompletion()
	if _, ok := has[ActInvoke](f.manage(other, logrecord.ManageResume)); ok || f.status(other).Phase != store.PhaseSuspended {
		t.Fatalf("resume of a suspended invocation ran it by the earlier rules")
	}
	// Wake-up: modified_at stays the suspension's.
	suspendedAt := f.status(other).ModifiedAt
	f.now += 1000
	f.apply(completionOf(other, 1))
	if st := f.status(other); st.Phase != store.PhaseInvoked || st.ModifiedAt != suspendedAt {
		t.Fatalf("woken by the earlier rules: %+v", st)
	}
	// A workflow's run holds a state patch back.
	run := newID("wf1")
	f.apply(workflowRun(run, "wf1"))
	f.apply(patchRec("wf1", nil, "x", "1"))
	wantState(t, f.state("wf1"))
}
