package processor

import (
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// The changes of rulesCallee: each test shows a divergence from Restate's invocation
// semantics under the earlier rules, fixed from the KindCalleeFormat marker on.

// newRulesFixture is a fixture whose log switched to the newest apply rules, as a leader's
// log does once its format marker is applied.
func newRulesFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.apply(&logrecord.Record{Kind: logrecord.KindCalleeFormat})
	return f
}

// callUUID is a fresh callee uuid, as the invoker logs it with a call.
func callUUID() []byte {
	u := ids.NewInvocationID(0).UUID
	return u[:]
}

func idempotentInvoke(id []byte, target logrecord.Target, key string, reqID uint64, retentionMs int64) *logrecord.Record {
	return &logrecord.Record{Kind: logrecord.KindInvoke, Invoke: &logrecord.Invoke{
		InvocationID: id, RequestID: reqID, Input: []byte(`1`), Target: target, IdempotencyKey: key,
		CompletionRetentionMs: retentionMs, JournalRetentionMs: retentionMs,
	}}
}

// A workflow's run handler called by another invocation with an idempotency key is still
// the one run of its workflow key: Restate derives the id of a workflow run from the
// workflow alone (InvocationUuid::generate: the workflow-run case comes before the
// idempotency key) and ignores the key ("The idempotency key for workflow methods is
// ignored!"), so a second call gets 409 "the workflow method was already invoked". Here
// the callee gets the id of an idempotent request, and the workflow runs a second time.
func TestWorkflowRunCalledWithAnIdempotencyKeyIsStillTheWorkflowsOneRun(t *testing.T) {
	f := newRulesFixture(t)
	wfKey := "order-1"
	wfTarget := logrecord.Target{Service: "Checkout", Handler: "run", Key: wfKey, ServiceType: "WORKFLOW", HandlerType: "WORKFLOW"}
	wfID := ids.WorkflowInvocationID(ids.PartitionKeyOf(wfKey), "Checkout", wfKey).Bytes()
	// The workflow's run, from the ingress, completes and is retained.
	f.apply(idempotentInvoke(wfID, wfTarget, "", 1, 60_000))
	for _, r := range outputEnd(wfID, `"first"`) {
		f.apply(r)
	}
	if st := f.status(wfID); st == nil || st.Phase != store.PhaseCompleted {
		t.Fatalf("workflow run status %+v", st)
	}
	// Another invocation calls the run handler again, with an idempotency key.
	caller := newID("")
	f.apply(invokeRec(caller, "", "", 2))
	ik := "ik-1"
	call := &protocol.CallCommand{ServiceName: "Checkout", HandlerName: "run", Key: wfKey, IdempotencyKey: &ik, Parameter: []byte(`{}`), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}
	tgt := wfTarget
	tgt.Key = ""
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: caller, Entries: []logrecord.Entry{{
		Type: uint16(protocol.CallCommandType), Payload: call.Marshal(), CallTarget: &tgt,
	}}}})
	if inv, ok := has[ActInvoke](acts); ok && string(inv.ID) != string(caller) {
		t.Fatalf("the workflow's run handler started a second time (as %s)", invString(inv.ID))
	}
	// The caller gets 409 "the workflow method was already invoked" for completion 2.
	found := false
	for _, a := range acts {
		if n, ok := a.(ActNotify); ok && string(n.ID) == string(caller) {
			nn := &protocol.Notification{}
			if nn.Unmarshal(n.Entry.Payload) == nil && nn.CompletionID == 2 && nn.Failure != nil && nn.Failure.Code == 409 {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("caller not told the workflow was already invoked: %v", acts)
	}
}

// Killing an invocation that never started (queued behind an object's lock) frees it in
// Restate (terminate_inboxed_invocation: reply KILLED to the callers, then
// do_free_invocation, whatever the retention), as cancelling does here. Kill instead keeps
// it as completed with "killed" for the whole idempotency retention, so the same
// idempotent request sent again is answered "killed" instead of running.
func TestKillingAQueuedIdempotentInvocationFreesItsKey(t *testing.T) {
	f := newRulesFixture(t)
	target := logrecord.Target{Service: "Counter", Handler: "add", Key: "k", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"}
	holder := newID("k")
	f.apply(invokeRec(holder, "EXCLUSIVE", "k", 1))
	queued := ids.IdempotentInvocationID(ids.PartitionKeyOf("k"), "Counter", "k", "add", "ik").Bytes()
	f.apply(idempotentInvoke(queued, target, "ik", 2, 60_000))
	if st := f.status(queued); st.Phase != store.PhaseInboxed {
		t.Fatalf("queued is %s", st.Phase)
	}
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: queued, Op: logrecord.ManageKill, RequestID: 3}})
	if done, ok := has[ActCompleted](acts); !ok || done.Result.Message != "killed" {
		t.Fatalf("kill: %v", acts)
	}
	if st := f.status(queued); st != nil {
		t.Fatalf("a killed invocation that never ran is retained: %+v", st)
	}
	// The same idempotent request again is a new invocation (queued behind the holder).
	f.now += 10
	acts = f.apply(idempotentInvoke(queued, target, "ik", 4, 60_000))
	if r, ok := has[ActReply](acts); ok {
		t.Fatalf("the re-sent request was answered with the killed result: %+v", r.Response.Failure)
	}
}

// Same for an invocation scheduled for later (a delayed send).
func TestKillingAScheduledIdempotentInvocationFreesItsKey(t *testing.T) {
	f := newRulesFixture(t)
	target := logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	id := ids.IdempotentInvocationID(ids.PartitionKeyOf("ik"), "Greeter", "", "greet", "ik").Bytes()
	rec := idempotentInvoke(id, target, "ik", 1, 60_000)
	rec.Invoke.ExecutionTime = f.now + 10_000
	rec.Invoke.Send = true
	f.apply(rec)
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: logrecord.ManageKill, RequestID: 3}})
	if st := f.status(id); st != nil {
		t.Fatalf("a killed invocation that never ran is retained: %+v", st)
	}
}

// A virtual object's key may be the empty string; its invocations must still run on the
// partition of that key (Restate's deterministic_partition_key hashes the key of every
// keyed target, empty or not; the ingress here does the same: svc.Keyed()). A call from
// another invocation to object key "" gets the caller's partition key instead, so the same
// object is served by whichever partition the caller happened to live on: its lock and
// its state are split across partitions.
func TestCallToAnObjectWithTheEmptyKeyRunsOnTheKeysPartition(t *testing.T) {
	f := newRulesFixture(t)
	caller := newID("some-other-key")
	f.apply(invokeRec(caller, "", "", 1))
	call := &protocol.CallCommand{ServiceName: "Counter", HandlerName: "add", Key: "", Parameter: []byte(`1`), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}
	tgt := &logrecord.Target{Service: "Counter", Handler: "add", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"}
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: caller, Entries: []logrecord.Entry{{
		Type: uint16(protocol.CallCommandType), Payload: call.Marshal(), CallTarget: tgt,
	}}}})
	var callee []byte
	for _, a := range acts {
		if inv, ok := a.(ActInvoke); ok && string(inv.ID) != string(caller) {
			callee = inv.ID
		}
	}
	if callee == nil {
		t.Fatalf("callee not started: %v", acts)
	}
	id, err := ids.InvocationIDFromBytes(callee)
	if err != nil {
		t.Fatal(err)
	}
	if want := ids.PartitionKeyOf(""); id.PartitionKey != want {
		t.Fatalf("callee of Counter/\"\" has partition key %d (the caller's), want %d (the key's)", id.PartitionKey, want)
	}
}

// The same for an idempotent call to object key "": the ingress gives the request
// IdempotentInvocationID(PartitionKeyOf(""), ...) (ingress/control.go idempotentID, "even an
// empty key"), the processor IdempotentInvocationID(PartitionKeyOf(idempotencyKey), ...):
// the same idempotent request sent through the ingress and from a handler are two
// invocations on two partitions, and neither deduplicates the other.
func TestIdempotentCallToAnObjectWithTheEmptyKeyHasTheIngresssID(t *testing.T) {
	f := newRulesFixture(t)
	caller := newID("")
	f.apply(invokeRec(caller, "", "", 1))
	ik := "ik-1"
	call := &protocol.CallCommand{ServiceName: "Counter", HandlerName: "add", Key: "", IdempotencyKey: &ik, Parameter: []byte(`1`), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}
	tgt := &logrecord.Target{Service: "Counter", Handler: "add", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"}
	f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: caller, Entries: []logrecord.Entry{{
		Type: uint16(protocol.CallCommandType), Payload: call.Marshal(), CallTarget: tgt,
	}}}})
	ingressID := ids.IdempotentInvocationID(ids.PartitionKeyOf(""), "Counter", "", "add", ik).Bytes()
	if f.status(ingressID) == nil {
		t.Fatalf("no invocation under the id the ingress gives Counter/\"\"/add with idempotency key %q", ik)
	}
}

// Restate (journal v2, protocols V4+) kills the callee of every Call *and* OneWayCall
// command of a killed invocation (kill_child_invocations collects the invocation id of each
// command with CallOrSend metadata, completed or not; entry_codec gives OneWayCall that
// metadata too). Here a one-way send's callee, even one still scheduled for later, lives on.
func TestKillingAnInvocationKillsItsSentChildrenToo(t *testing.T) {
	f := newRulesFixture(t)
	parent := newID("")
	f.apply(invokeRec(parent, "", "", 1))
	send := &protocol.OneWayCallCommand{ServiceName: "Greeter", HandlerName: "greet", Parameter: []byte(`1`), InvocationIDNotificationIdx: 1, InvokeTime: uint64(f.now + 60_000)}
	tgt := &logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	uuid := callUUID()
	f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: parent, Entries: []logrecord.Entry{{
		Type: uint16(protocol.OneWayCallCommandType), Payload: send.Marshal(), CallTarget: tgt, CallUUID: uuid,
	}}}})
	pid, _ := ids.InvocationIDFromBytes(parent)
	childID := ids.InvocationID{PartitionKey: pid.PartitionKey}
	copy(childID.UUID[:], uuid)
	child := childID.Bytes()
	if st := f.status(child); st == nil || st.Phase != store.PhaseScheduled {
		t.Fatalf("child %+v", st)
	}
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: parent, Op: logrecord.ManageKill, RequestID: 2}})
	if st := f.status(child); st != nil && st.Phase != store.PhaseCompleted {
		t.Fatalf("the sent child of a killed invocation is still %s", st.Phase)
	}
}

// The id of a plain callee is derived from the caller's id and the command's id
// notification index only. Ids of workflow runs and idempotent requests come back (a purged
// or expired workflow is run again, an idempotent request is sent again after its
// retention), and the new run's calls then get the ids of the old run's callees, which are
// retained (plain calls keep their status for the journal retention, a day by default). The
// new run's call is answered with the old callee's result, for another input, and the
// callee never runs. Restate gives every plain call a fresh random id (the invoker
// generates it and logs it with the command: CallOrSendMetadata.invocation_id).
func TestARerunWorkflowsCallIsNotAnsweredWithThePreviousRunsResult(t *testing.T) {
	f := newRulesFixture(t)
	wfKey := "order-1"
	wfTarget := logrecord.Target{Service: "Checkout", Handler: "run", Key: wfKey, ServiceType: "WORKFLOW", HandlerType: "WORKFLOW"}
	wf := ids.WorkflowInvocationID(ids.PartitionKeyOf(wfKey), "Checkout", wfKey).Bytes()
	tgt := &logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	callGreeter := func(input string) []Action {
		call := &protocol.CallCommand{ServiceName: "Greeter", HandlerName: "greet", Parameter: []byte(input), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}
		return f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: wf, Entries: []logrecord.Entry{{
			Type: uint16(protocol.CallCommandType), Payload: call.Marshal(), CallTarget: tgt, CallRetention: &logrecord.Retention{CompletionMs: 86_400_000, JournalMs: 86_400_000}, CallUUID: callUUID(),
		}}}})
	}
	// First run: calls Greeter, which answers "first", and completes.
	f.apply(idempotentInvoke(wf, wfTarget, "", 1, 60_000))
	acts := callGreeter(`"a"`)
	var callee []byte
	for _, a := range acts {
		if inv, ok := a.(ActInvoke); ok && string(inv.ID) != string(wf) {
			callee = inv.ID
		}
	}
	if callee == nil {
		t.Fatalf("callee not started: %v", acts)
	}
	for _, r := range outputEnd(callee, `"first"`) {
		f.apply(r)
	}
	for _, r := range outputEnd(wf, `"done"`) {
		f.apply(r)
	}
	// The operator purges the run; the workflow is submitted again.
	f.now += 1000
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: wf, Op: logrecord.ManagePurge, RequestID: 2}})
	if f.status(wf) != nil {
		t.Fatal("purge left the run")
	}
	f.now += 1000
	f.apply(idempotentInvoke(wf, wfTarget, "", 3, 60_000))
	acts = callGreeter(`"b"`)
	started := false
	for _, a := range acts {
		if inv, ok := a.(ActInvoke); ok && string(inv.ID) != string(wf) {
			started = true
		}
	}
	if !started {
		t.Fatalf("the second run's call to Greeter did not start an invocation (it reused the first run's callee %s): %v", invString(callee), acts)
	}
}

// TestEarlierRulesHoldBeforeTheMarker: records before a log's KindCalleeFormat marker are
// applied by the earlier rules, as replicas of earlier versions applied them, so that
// replicas of both versions agree on them; the marker switches the partition over.
func TestEarlierRulesHoldBeforeTheMarker(t *testing.T) {
	f := newFixture(t)
	callEmptyKey := func(caller []byte) []byte {
		call := &protocol.CallCommand{ServiceName: "Counter", HandlerName: "get", Key: "", Parameter: []byte(`1`), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}
		tgt := &logrecord.Target{Service: "Counter", Handler: "get", ServiceType: "VIRTUAL_OBJECT", HandlerType: "SHARED"}
		acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: caller, Entries: []logrecord.Entry{{
			Type: uint16(protocol.CallCommandType), Payload: call.Marshal(), CallTarget: tgt, CallUUID: callUUID(),
		}}}})
		for _, a := range acts {
			if inv, ok := a.(ActInvoke); ok && string(inv.ID) != string(caller) {
				return inv.ID
			}
		}
		t.Fatalf("callee not started: %v", acts)
		return nil
	}
	before := newID("a-caller-key")
	f.apply(invokeRec(before, "", "", 1))
	callee, _ := ids.InvocationIDFromBytes(callEmptyKey(before))
	bid, _ := ids.InvocationIDFromBytes(before)
	if want := calleeID(bid, "", 1); callee != want {
		t.Fatalf("before the marker the callee is %s, want %s (derived from the caller)", callee, want)
	}

	f.apply(&logrecord.Record{Kind: logrecord.KindCalleeFormat})
	after := newID("a-caller-key")
	f.apply(invokeRec(after, "", "", 2))
	callee, _ = ids.InvocationIDFromBytes(callEmptyKey(after))
	if callee.PartitionKey != ids.PartitionKeyOf("") {
		t.Fatalf("after the marker the callee of Counter/\"\" has partition key %d, want the key's %d", callee.PartitionKey, ids.PartitionKeyOf(""))
	}
	// An earlier marker does not switch the rules back.
	f.apply(&logrecord.Record{Kind: logrecord.KindTraceFormat})
	if v, err := f.part.Begin().Rules(); err != nil || v != rulesCallee {
		t.Fatalf("rules %d (%v) after an earlier marker, want %d", v, err, rulesCallee)
	}
}
