package processor

import (
	"testing"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// Before the KindCalleeFormat marker every replica must apply a record as the previous
// version did. That version's killChildren stopped at the first call whose callee it could
// not find (calleeOf nil: `if err != nil || callee == nil { return err }`); this one goes on
// and kills the calls after it, whatever the rules. A replica of each version applying the
// same kill, before the marker, ends with a different state for the later callee.
func TestKillChildrenBeforeTheMarkerKeepsTheEarlierRules(t *testing.T) {
	f := newFixture(t) // no marker: the earlier rules
	caller := newID("")
	f.apply(invokeRec(caller, "", "", 1))
	effect := func(typ protocol.MessageType, payload []byte, target *logrecord.Target) []Action {
		return f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: caller,
			Entries: []logrecord.Entry{{Type: uint16(typ), Payload: payload, CallTarget: target}}}})
	}
	// A sleep that completes: completion 5 is notified with a void result.
	sleep := &protocol.SleepCommand{WakeUpTime: uint64(f.now + 1000), ResultCompletionID: 5}
	timer, ok := has[ActTimer](effect(protocol.SleepCommandType, sleep.Marshal(), nil))
	if !ok {
		t.Fatal("no timer")
	}
	f.apply(&logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: timer.Timer})
	// A call whose id notification index is that completion (an SDK bug): its callee runs,
	// but calleeOf finds the sleep's notification, not an invocation id.
	tgt := &logrecord.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}
	b := &protocol.CallCommand{ServiceName: "S", HandlerName: "h", Parameter: []byte(`1`), InvocationIDNotificationIdx: 5, ResultCompletionID: 6}
	effect(protocol.CallCommandType, b.Marshal(), tgt)
	// A well-formed call after it.
	c := &protocol.CallCommand{ServiceName: "S", HandlerName: "h", Parameter: []byte(`2`), InvocationIDNotificationIdx: 7, ResultCompletionID: 8}
	effect(protocol.CallCommandType, c.Marshal(), tgt)
	calleeC, err := (&applier{sm: f.sm, txn: f.part.Begin()}).calleeOf(caller, 7)
	if err != nil || calleeC == nil {
		t.Fatalf("callee of the second call: %v, %v", calleeC, err)
	}
	if st := f.status(calleeC.Bytes()); st == nil || st.Phase != store.PhaseInvoked {
		t.Fatalf("second callee %+v", st)
	}

	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: caller, Op: logrecord.ManageKill, RequestID: 9}})
	if st := f.status(calleeC.Bytes()); st == nil || st.Phase != store.PhaseInvoked {
		t.Fatalf("before the marker, the previous version leaves the second callee running; this one: %+v", st)
	}
}

// The previous version pinned an invocation to the deployment an effect names whether or not
// the effect carries entries; its invoker named the deployment on an attempt's first effect,
// also one that only suspended or failed. Applied by this version, the same record must pin
// too, or a replica of each version ends with a different deployment for the invocation
// (and a leader on the unpinned one runs the next attempt on whatever deployment is newest).
// Whether an attempt pins is the invoker's decision, logged with the effect: this version's
// invoker names the deployment only on an effect with entries.
func TestEffectWithoutEntriesPinsAsThePreviousVersion(t *testing.T) {
	for _, marker := range []bool{false, true} {
		f := newFixture(t)
		if marker {
			f.apply(&logrecord.Record{Kind: logrecord.KindCalleeFormat})
		}
		id := newID("")
		f.apply(invokeRec(id, "", "", 1))
		f.apply(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{
			InvocationID: id, Kind: logrecord.EffectSuspend, WaitingCompletions: []uint32{1},
			DeploymentID: "dp_old", ProtocolVersion: 5,
		}})
		st := f.status(id)
		if st == nil || st.Phase != store.PhaseSuspended {
			t.Fatalf("marker %v: status %+v", marker, st)
		}
		if st.DeploymentID != "dp_old" || st.ProtocolVersion != 5 {
			t.Fatalf("marker %v: deployment %q v%d after an effect naming dp_old v5, want it pinned as the previous version pins it", marker, st.DeploymentID, st.ProtocolVersion)
		}
	}
}
