package processor

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// Golden traces of the state machine: each scenario is a list of records; its trace is, for
// every record, the record as logged, the actions applying it asked for, and the changes it
// made to the store. The traces live in testdata/traces and are compared byte for byte, so
// any change of behaviour shows up as a diff to review. Regenerate them with
//
//	go test ./workerd/processor -run TestGoldenTraces -update
var update = flag.Bool("update", false, "rewrite the golden traces in testdata/traces")

const t0 = 1_000_000 // the time of the first record of every scenario (ms)

// scenario is a list of records applied in order to a fresh store of partition 0.
type scenario struct {
	name          string
	numPartitions uint32
	records       []*logrecord.Record
}

// goldenID is a deterministic invocation id in the partition of key.
func goldenID(key string, n byte) []byte {
	id := ids.InvocationID{PartitionKey: ids.PartitionKeyOf(key)}
	id.UUID[15] = n
	return id.Bytes()
}

func at(ms int64, r *logrecord.Record) *logrecord.Record {
	r.Time = t0 + ms
	return r
}

func invokeOf(id []byte, service, handler, key, serviceType, handlerType string, reqID uint64, input string) *logrecord.Invoke {
	return &logrecord.Invoke{
		InvocationID: id, RequestID: reqID, Input: []byte(input),
		Target:                logrecord.Target{Service: service, Handler: handler, Key: key, ServiceType: serviceType, HandlerType: handlerType},
		CompletionRetentionMs: 60_000, JournalRetentionMs: 60_000,
	}
}

func invokeRecord(inv *logrecord.Invoke) *logrecord.Record {
	return &logrecord.Record{Kind: logrecord.KindInvoke, Invoke: inv}
}

func effect(id []byte, kind logrecord.EffectKind, entries ...logrecord.Entry) *logrecord.Record {
	return &logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: id, Kind: kind, Entries: entries}}
}

func suspend(id []byte, completions, signals []uint32) *logrecord.Record {
	r := effect(id, logrecord.EffectSuspend)
	r.InvokerEffect.WaitingCompletions, r.InvokerEffect.WaitingSignals = completions, signals
	return r
}

func entry(b protocol.TypedBody) logrecord.Entry {
	return logrecord.Entry{Type: uint16(b.MessageType()), Payload: b.Marshal()}
}

func output(value string) logrecord.Entry {
	return entry(&protocol.OutputCommand{Value: protocol.NewValue([]byte(value))})
}

func notification(t protocol.MessageType, n *protocol.Notification) logrecord.Entry {
	return logrecord.Entry{Type: uint16(t), Payload: n.Marshal()}
}

func scenarios() []scenario {
	greet := goldenID("", 1)
	counterA, counterB := goldenID("apples", 2), goldenID("apples", 3)
	sleeper := goldenID("", 4)
	caller := goldenID("", 5)
	waiter, completer := goldenID("", 7), goldenID("", 8)
	wf, wfSignal := goldenID("order-1", 9), goldenID("order-1", 10)
	paused, parent := goldenID("", 11), goldenID("", 12)
	holder, queued := goldenID("pears", 13), goldenID("pears", 14)
	wf2, wf2Signal := goldenID("order-2", 16), goldenID("order-2", 17)
	napper, wf3, attacher := goldenID("", 18), goldenID("order-3", 19), goldenID("", 20)
	restarted, restartedNew, restartedNew2 := goldenID("", 21), goldenID("", 22), goldenID("", 23)
	remoteCaller := ids.InvocationID{PartitionKey: 0}
	remoteCaller.UUID[15] = 15

	callerID, _ := ids.InvocationIDFromBytes(caller)
	callee := calleeID(callerID, "", 1).Bytes() // derived from the caller and the id notification index
	parentID, _ := ids.InvocationIDFromBytes(parent)
	child := calleeID(parentID, "", 1).Bytes()
	callTarget := &logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	counterTarget := &logrecord.Target{Service: "Counter", Handler: "add", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"}
	sleepCmd := &protocol.SleepCommand{WakeUpTime: t0 + 5_000, ResultCompletionID: 1}
	awakeable := ids.AwakeableID(waiter, protocol.FirstAwakeableSignalID)

	announce := func(epoch uint64, node string) *logrecord.Record {
		return &logrecord.Record{Kind: logrecord.KindAnnounceLeader, Epoch: epoch, AnnounceLeader: &logrecord.AnnounceLeader{Node: node}}
	}
	withEpoch := func(epoch uint64, r *logrecord.Record) *logrecord.Record { r.Epoch = epoch; return r }
	shuffled := func(producer uint32, seq uint64, r *logrecord.Record) *logrecord.Record {
		r.Dedup = &logrecord.Dedup{Producer: producer, Seq: seq}
		return r
	}

	return []scenario{
		{name: "greet_and_expire", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(greet, "Greeter", "greet", "", "SERVICE", "", 1, `"Ann"`))),
			at(5, effect(greet, logrecord.EffectEntries, output(`"Hello Ann"`))),
			at(6, effect(greet, logrecord.EffectEnd)),
			// The same idempotent request again: answered from the retained result.
			at(10, invokeRecord(invokeOf(greet, "Greeter", "greet", "", "SERVICE", "", 2, `"Ann"`))),
			at(70_000, &logrecord.Record{Kind: logrecord.KindExpire}),
		}},
		{name: "object_inbox_and_state", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(counterA, "Counter", "add", "apples", "VIRTUAL_OBJECT", "EXCLUSIVE", 1, `5`))),
			at(1, invokeRecord(invokeOf(counterB, "Counter", "add", "apples", "VIRTUAL_OBJECT", "EXCLUSIVE", 2, `7`))),
			at(5, effect(counterA, logrecord.EffectEntries,
				entry(&protocol.SetStateCommand{Key: []byte("count"), Value: protocol.NewValue([]byte(`5`))}),
				output(`5`))),
			at(6, effect(counterA, logrecord.EffectEnd)), // the lock passes to counterB
			at(8, effect(counterB, logrecord.EffectEntries, entry(&protocol.GetLazyStateCommand{Key: []byte("count"), ResultCompletionID: 1}))),
			at(9, effect(counterB, logrecord.EffectEntries,
				entry(&protocol.ClearStateCommand{Key: []byte("count")}),
				output(`12`))),
			at(10, effect(counterB, logrecord.EffectEnd)),
		}},
		{name: "sleep_suspend_and_timer", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(sleeper, "Sleeper", "nap", "", "SERVICE", "", 1, ``))),
			at(5, effect(sleeper, logrecord.EffectEntries, entry(sleepCmd))),
			at(6, suspend(sleeper, []uint32{1}, nil)),
			at(5_000, &logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: &logrecord.TimerFired{InvocationID: sleeper, Kind: logrecord.TimerSleep, CompletionID: 1, WakeAt: t0 + 5_000, InvocationCreatedAt: t0}}),
			// The same timer again (a resend after failover) changes nothing.
			at(5_001, &logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: &logrecord.TimerFired{InvocationID: sleeper, Kind: logrecord.TimerSleep, CompletionID: 1, WakeAt: t0 + 5_000, InvocationCreatedAt: t0}}),
			at(5_010, effect(sleeper, logrecord.EffectEntries, output(`"rested"`))),
			at(5_011, effect(sleeper, logrecord.EffectEnd)),
		}},
		{name: "call_send_and_result", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(caller, "Orders", "place", "", "SERVICE", "", 1, `"o1"`))),
			at(5, effect(caller, logrecord.EffectEntries, logrecord.Entry{
				Type:       uint16(protocol.CallCommandType),
				Payload:    (&protocol.CallCommand{ServiceName: "Greeter", HandlerName: "greet", Parameter: []byte(`"o1"`), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}).Marshal(),
				CallTarget: callTarget, CallRetention: &logrecord.Retention{CompletionMs: 60_000},
			}, logrecord.Entry{
				Type:       uint16(protocol.OneWayCallCommandType),
				Payload:    (&protocol.OneWayCallCommand{ServiceName: "Counter", HandlerName: "add", Key: "orders", Parameter: []byte(`1`), InvocationIDNotificationIdx: 3, InvokeTime: t0 + 60_000}).Marshal(),
				CallTarget: counterTarget,
			})),
			at(6, suspend(caller, []uint32{2}, nil)),
			at(10, effect(callee, logrecord.EffectEntries, output(`"Hello o1"`))),
			at(11, effect(callee, logrecord.EffectEnd)), // the result goes to the caller, who resumes
			at(20, effect(caller, logrecord.EffectEntries, output(`"placed"`))),
			at(21, effect(caller, logrecord.EffectEnd)),
		}},
		{name: "awakeable_completed_by_another_invocation", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(waiter, "Approvals", "wait", "", "SERVICE", "", 1, ``))),
			at(5, suspend(waiter, nil, []uint32{protocol.FirstAwakeableSignalID})),
			at(10, invokeRecord(invokeOf(completer, "Approvals", "approve", "", "SERVICE", "", 2, ``))),
			at(15, effect(completer, logrecord.EffectEntries,
				entry(&protocol.CompleteAwakeableCommand{AwakeableID: awakeable, Value: protocol.NewValue([]byte(`"yes"`))}),
				output(`null`))),
			at(16, effect(completer, logrecord.EffectEnd)),
			// A second completion of the same awakeable is dropped.
			at(17, &logrecord.Record{Kind: logrecord.KindSignal, Signal: &logrecord.Signal{InvocationID: waiter, SignalID: protocol.FirstAwakeableSignalID, Value: []byte(`"no"`)}}),
		}},
		{name: "workflow_and_promise", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(wf, "Checkout", "run", "order-1", "WORKFLOW", "WORKFLOW", 1, `{}`))),
			at(5, effect(wf, logrecord.EffectEntries, entry(&protocol.GetPromiseCommand{Key: "paid", ResultCompletionID: 1}))),
			at(6, suspend(wf, []uint32{1}, nil)),
			at(10, invokeRecord(invokeOf(wfSignal, "Checkout", "pay", "order-1", "WORKFLOW", "SHARED", 2, `{}`))),
			at(15, effect(wfSignal, logrecord.EffectEntries,
				entry(&protocol.CompletePromiseCommand{Key: "paid", CompletionValue: protocol.NewValue([]byte(`true`)), ResultCompletionID: 1}))),
			at(16, effect(wfSignal, logrecord.EffectEntries, output(`null`))),
			at(17, effect(wfSignal, logrecord.EffectEnd)),
			// A second run of the same workflow is refused.
			at(20, invokeRecord(invokeOf(wf, "Checkout", "run", "order-1", "WORKFLOW", "WORKFLOW", 3, `{}`))),
		}},
		{name: "pause_resume_kill_cancel", numPartitions: 1, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(paused, "Flaky", "run", "", "SERVICE", "", 1, ``))),
			at(5, &logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{InvocationID: paused, Kind: logrecord.EffectPause, FailureMessage: "retries exhausted"}}),
			at(10, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: paused, Op: logrecord.ManageResume, RequestID: 7}}),
			at(20, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: paused, Op: logrecord.ManageKill, RequestID: 8}}),
			// A parent with a child call in flight is killed: the child goes too.
			at(30, invokeRecord(invokeOf(parent, "Orders", "place", "", "SERVICE", "", 2, ``))),
			at(31, effect(parent, logrecord.EffectEntries, logrecord.Entry{
				Type:       uint16(protocol.CallCommandType),
				Payload:    (&protocol.CallCommand{ServiceName: "Greeter", HandlerName: "greet", InvocationIDNotificationIdx: 1, ResultCompletionID: 2}).Marshal(),
				CallTarget: callTarget,
			})),
			at(32, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: parent, Op: logrecord.ManageKill, RequestID: 9}}),
			// A late effect of the killed child changes nothing.
			at(33, effect(child, logrecord.EffectEntries, output(`"late"`))),
			// Cancelling an invocation queued behind an object lock completes it at once.
			at(40, invokeRecord(invokeOf(holder, "Counter", "add", "pears", "VIRTUAL_OBJECT", "EXCLUSIVE", 3, `1`))),
			at(41, invokeRecord(invokeOf(queued, "Counter", "add", "pears", "VIRTUAL_OBJECT", "EXCLUSIVE", 4, `2`))),
			at(42, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: queued, Op: logrecord.ManageCancel, RequestID: 10}}),
		}},
		{name: "manage_rules", numPartitions: 1, records: []*logrecord.Record{
			// From the marker on, operator actions and modification times as Restate applies them.
			at(0, &logrecord.Record{Kind: logrecord.KindManageFormat}),
			at(1, invokeRecord(invokeOf(wf2, "Checkout", "run", "order-2", "WORKFLOW", "WORKFLOW", 1, `{}`))),
			at(5, effect(wf2, logrecord.EffectEntries, entry(&protocol.GetPromiseCommand{Key: "paid", ResultCompletionID: 1}))),
			at(6, suspend(wf2, []uint32{1}, nil)),
			// Pausing the suspended run leaves it suspended, answered done.
			at(10, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: wf2, Op: logrecord.ManagePause, RequestID: 2}}),
			// A state patch of the workflow applies while the run is in flight.
			at(11, &logrecord.Record{Kind: logrecord.KindPatchState, PatchState: &logrecord.PatchState{Service: "Checkout", Key: "order-2",
				State: []logrecord.StateEntry{{Key: []byte("x"), Value: []byte("1")}}}}),
			// The promise wakes the run: modified_at is the notification's time.
			at(20, invokeRecord(invokeOf(wf2Signal, "Checkout", "pay", "order-2", "WORKFLOW", "SHARED", 3, `{}`))),
			at(25, effect(wf2Signal, logrecord.EffectEntries,
				entry(&protocol.CompletePromiseCommand{Key: "paid", CompletionValue: protocol.NewValue([]byte(`true`)), ResultCompletionID: 1}))),
			// Suspended again, then resumed: it runs at once.
			at(30, suspend(wf2, []uint32{2}, nil)),
			at(40, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: wf2, Op: logrecord.ManageResume, RequestID: 4}}),
		}},
		{name: "manage_rules_switch", numPartitions: 1, records: []*logrecord.Record{
			// Before the marker, the earlier rules: a resume leaves a suspended invocation
			// suspended, a workflow's run holds a state patch back.
			at(0, invokeRecord(invokeOf(napper, "Sleeper", "nap", "", "SERVICE", "", 1, ``))),
			at(1, suspend(napper, []uint32{1}, nil)),
			at(2, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: napper, Op: logrecord.ManageResume, RequestID: 2}}),
			at(3, invokeRecord(invokeOf(wf3, "Checkout", "run", "order-3", "WORKFLOW", "WORKFLOW", 3, `{}`))),
			at(4, &logrecord.Record{Kind: logrecord.KindPatchState, PatchState: &logrecord.PatchState{Service: "Checkout", Key: "order-3",
				State: []logrecord.StateEntry{{Key: []byte("x"), Value: []byte("queued")}}}}),
			// From the marker on, the same records apply by rulesManage.
			at(5, &logrecord.Record{Kind: logrecord.KindManageFormat}),
			at(6, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: napper, Op: logrecord.ManageResume, RequestID: 4}}),
			// Resuming it again while it runs: the leader's invoker retries now if it backs off.
			at(7, &logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: napper, Op: logrecord.ManageResume, RequestID: 5}}),
			at(8, &logrecord.Record{Kind: logrecord.KindPatchState, PatchState: &logrecord.PatchState{Service: "Checkout", Key: "order-3",
				State: []logrecord.StateEntry{{Key: []byte("x"), Value: []byte("now")}}}}),
			// A caller attached stamps modified_at.
			at(9, &logrecord.Record{Kind: logrecord.KindAttach, Attach: &logrecord.Attach{InvocationID: wf3, Wait: true,
				Caller: logrecord.Caller{InvocationID: attacher, CompletionID: 1}}}),
			// The run ends: the patch queued before the marker applies now, after the later one.
			at(10, effect(wf3, logrecord.EffectEntries, output(`"ok"`))),
			at(11, effect(wf3, logrecord.EffectEnd)),
		}},
		{name: "restart_as_new", numPartitions: 1, records: restartScenario(restarted, restartedNew, restartedNew2)},
		{name: "epochs_and_dedup", numPartitions: 1, records: []*logrecord.Record{
			at(0, announce(1, "n1")),
			at(1, withEpoch(1, invokeRecord(invokeOf(greet, "Greeter", "greet", "", "SERVICE", "", 1, `"a"`)))),
			at(2, announce(2, "n2")),
			// The deposed leader of epoch 1 still writes: every replica drops it.
			at(3, withEpoch(1, effect(greet, logrecord.EffectEntries, output(`"from the old leader"`)))),
			at(4, withEpoch(2, effect(greet, logrecord.EffectEntries, output(`"from the new leader"`)))),
			// An announcement of an older epoch changes nothing.
			at(5, announce(1, "n1")),
			// Records from another partition's shuffler are not fenced but deduplicated.
			at(6, shuffled(3, 1, &logrecord.Record{Kind: logrecord.KindInvocationResult, InvocationResult: &logrecord.InvocationResult{InvocationID: greet, CompletionID: 4, Value: []byte(`1`)}})),
			at(7, shuffled(3, 1, &logrecord.Record{Kind: logrecord.KindInvocationResult, InvocationResult: &logrecord.InvocationResult{InvocationID: greet, CompletionID: 5, Value: []byte(`2`)}})),
			at(8, withEpoch(2, effect(greet, logrecord.EffectEnd))),
		}},
		{name: "outbox_to_another_partition", numPartitions: 4, records: []*logrecord.Record{
			at(0, invokeRecord(invokeOf(remoteCaller.Bytes(), "Orders", "place", "", "SERVICE", "", 1, ``))),
			at(5, effect(remoteCaller.Bytes(), logrecord.EffectEntries, logrecord.Entry{
				Type:       uint16(protocol.CallCommandType),
				Payload:    (&protocol.CallCommand{ServiceName: "Counter", HandlerName: "add", Key: keyOutside(0, 4), Parameter: []byte(`1`), InvocationIDNotificationIdx: 1, ResultCompletionID: 2}).Marshal(),
				CallTarget: counterTarget,
			})),
			at(6, &logrecord.Record{Kind: logrecord.KindTruncateOutbox, TruncateOutbox: &logrecord.TruncateOutbox{Seq: 1}}),
			at(20, shuffled(2, 1, &logrecord.Record{Kind: logrecord.KindInvocationResult, InvocationResult: &logrecord.InvocationResult{InvocationID: remoteCaller.Bytes(), CompletionID: 2, Value: []byte(`1`)}})),
		}},
	}
}

// restartScenario: an invocation runs a Run and a Sleep whose completions come after both,
// sets state and completes; restarts of it copy prefixes of its journal.
func restartScenario(id, newID, newID2 []byte) []*logrecord.Record {
	pinned := effect(id, logrecord.EffectEntries, runCmd(1), entry(&protocol.SleepCommand{WakeUpTime: t0 + 10, ResultCompletionID: 2}))
	pinned.InvokerEffect.DeploymentID, pinned.InvokerEffect.ProtocolVersion = "dp_old", 6
	restart := func(newID []byte, from uint32, deployment string, reqID uint64) *logrecord.Record {
		return &logrecord.Record{Kind: logrecord.KindRestartAsNew, RestartAsNew: &logrecord.RestartAsNew{
			InvocationID: id, NewInvocationID: newID, From: from, DeploymentID: deployment, RequestID: reqID}}
	}
	return []*logrecord.Record{
		at(0, invokeRecord(invokeOf(id, "Sleeper", "nap", "", "SERVICE", "", 1, `"x"`))),
		at(1, pinned),
		// Still running: refused.
		at(2, restart(newID, 0, "", 2)),
		at(5, effect(id, logrecord.EffectEntries, runDone(1, `"r"`))),
		at(10, &logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: &logrecord.TimerFired{InvocationID: id, Kind: logrecord.TimerSleep, CompletionID: 2, WakeAt: t0 + 10, InvocationCreatedAt: t0}}),
		at(11, effect(id, logrecord.EffectEntries, entry(&protocol.SetStateCommand{Key: []byte("k"), Value: protocol.NewValue([]byte("v"))}), output(`"napped"`))),
		at(12, effect(id, logrecord.EffectEnd)),
		// Entries 0..2 (Input, Run, Sleep) and the two completions after them, on another
		// deployment.
		at(20, restart(newID, 2, "dp_new", 3)),
		// Past the journal: refused.
		at(21, restart(newID2, 7, "", 4)),
		// The whole journal: the copied Output is the new invocation's result.
		at(22, restart(newID2, 6, "", 5)),
		at(23, effect(newID2, logrecord.EffectEnd)),
	}
}

// keyOutside returns the first of k0, k1, ... whose partition is not p.
func keyOutside(p, numPartitions uint32) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%d", i)
		if ids.PartitionOf(ids.PartitionKeyOf(k), numPartitions) != p {
			return k
		}
	}
}

func TestGoldenTraces(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			got := trace(t, sc)
			path := filepath.Join("testdata", "traces", sc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("trace of %s differs from %s (run with -update after reviewing):\n%s", sc.name, path, firstDifference(want, got))
			}
		})
	}
}

// Two replicas that apply the same log end with identical stores, whatever their batch
// boundaries: one applies every record in its own transaction (as the trace does), the other
// all of them in a single transaction.
func TestReplicasOfTheSameLogAreIdentical(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			sm := &StateMachine{Partition: 0, NumPartitions: sc.numPartitions}
			a, b := openPartition(t), openPartition(t)
			for _, r := range sc.records {
				txn := a.Begin()
				if err := sm.Apply(txn, decoded(t, r), func(Action) {}); err != nil {
					t.Fatal(err)
				}
				if err := txn.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			txn := b.Begin()
			for _, r := range sc.records {
				if err := sm.Apply(txn, decoded(t, r), func(Action) {}); err != nil {
					t.Fatal(err)
				}
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			da, errA := a.Digest()
			db, errB := b.Digest()
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			if da != db {
				t.Fatalf("replicas differ:\n%s", firstDifference([]byte(dumpStore(t, a)), []byte(dumpStore(t, b))))
			}
		})
	}
}

func openPartition(t *testing.T) *store.Partition {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Partition(0)
}

// decoded is r as a replica reads it from the log: encoded and decoded again, so the
// state machine never sees what the writer held in memory but the log did not carry.
func decoded(t *testing.T, r *logrecord.Record) *logrecord.Record {
	t.Helper()
	b, err := logrecord.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := logrecord.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// trace applies a scenario and renders what each record did.
func trace(t *testing.T, sc scenario) []byte {
	t.Helper()
	part := openPartition(t)
	sm := &StateMachine{Partition: 0, NumPartitions: sc.numPartitions}
	var out strings.Builder
	fmt.Fprintf(&out, "# golden trace %s: partition 0 of %d; regenerate with -update\n", sc.name, sc.numPartitions)
	before := snapshotStore(t, part)
	for i, r := range sc.records {
		b, err := logrecord.EncodeJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "\n== record %d: %s\n", i+1, b)
		var actions []Action
		txn := part.Begin()
		if err := sm.Apply(txn, decoded(t, r), func(a Action) { actions = append(actions, a) }); err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := part.VerifyIndexes(); err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		for _, a := range actions {
			fmt.Fprintf(&out, "action %s\n", renderAction(a))
		}
		after := snapshotStore(t, part)
		for _, line := range storeDiff(before, after) {
			fmt.Fprintf(&out, "store %s\n", line)
		}
		before = after
	}
	return []byte(out.String())
}

func snapshotStore(t *testing.T, p *store.Partition) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := p.Each(func(k, v []byte) error { m[string(k)] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func dumpStore(t *testing.T, p *store.Partition) string {
	var lines []string
	for k, v := range snapshotStore(t, p) {
		lines = append(lines, renderBytes([]byte(k))+" = "+renderBytes([]byte(v)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// storeDiff lists added (+), changed (~) and deleted (-) keys in key order.
func storeDiff(before, after map[string]string) []string {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var lines []string
	for _, k := range sorted {
		old, had := before[k]
		now, has := after[k]
		switch {
		case !had:
			lines = append(lines, "+ "+renderBytes([]byte(k))+" = "+renderValue(k, now))
		case !has:
			lines = append(lines, "- "+renderBytes([]byte(k)))
		case old != now:
			lines = append(lines, "~ "+renderBytes([]byte(k))+" = "+renderValue(k, now))
		}
	}
	return lines
}

// renderValue renders a stored value: statuses and outbox records as the JSON of what they
// decode to (both are kept in binary encodings), anything else as renderBytes does.
func renderValue(k, v string) string {
	switch {
	case len(k) > 0 && k[0] == 'S':
		if st, err := store.DecodeStatus([]byte(v)); err == nil {
			b, _ := json.Marshal(st)
			return renderBytes(b)
		}
	case len(k) > 0 && k[0] == 'o' && len(v) > 4: // the target partition, then the record
		if rec, err := logrecord.Decode([]byte(v[4:])); err == nil {
			b, _ := logrecord.EncodeJSON(rec)
			return renderBytes(append([]byte(v[:4]), b...))
		}
	}
	return renderBytes([]byte(v))
}

// renderBytes quotes b; long values are summarised by length and hash.
func renderBytes(b []byte) string {
	if len(b) > 400 {
		return fmt.Sprintf("<%d bytes sha256:%x>", len(b), sha256.Sum256(b))
	}
	return strconv.Quote(string(b))
}

func renderAction(a Action) string {
	switch a := a.(type) {
	case ActInvoke:
		return "invoke " + invString(a.ID)
	case ActNotify:
		return fmt.Sprintf("notify %s index=%d type=%d payload=%s", invString(a.ID), a.Index, a.Entry.Type, renderBytes(a.Entry.Payload))
	case ActCompleted:
		r := a.Result
		return fmt.Sprintf("completed %s value=%s failed=%v code=%d message=%q", invString(a.ID), renderBytes(r.Value), r.Failed, r.Code, r.Message)
	case ActReply:
		r := a.Response
		return fmt.Sprintf("reply request=%d invocation=%s send=%q execution=%d output=%s failure=%+v expires=%d", a.RequestID, invString(r.InvocationID), r.SendStatus, unixMs(r.ExecutionTime), renderBytes(r.Output), r.Failure, unixMs(r.IdempotencyExpires))
	case ActTimer:
		return fmt.Sprintf("timer %s kind=%d completion=%d wake=%d", invString(a.Timer.InvocationID), a.Timer.Kind, a.Timer.CompletionID, a.Timer.WakeAt)
	case ActOutbox:
		return "outbox"
	case ActAbort:
		if a.Pause {
			return "abort " + invString(a.ID) + " pause"
		}
		return "abort " + invString(a.ID)
	case ActRetryNow:
		return "retry-now " + invString(a.ID)
	case ActManageReply:
		return fmt.Sprintf("manage-reply request=%d outcome=%s", a.RequestID, a.Outcome)
	case ActRestartReply:
		return fmt.Sprintf("restart-reply request=%d outcome=%s", a.RequestID, a.Outcome)
	case ActAnnounced:
		return fmt.Sprintf("announced epoch=%d node=%s", a.Epoch, a.Node)
	}
	return fmt.Sprintf("%T %+v", a, a)
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// firstDifference shows the first line where two traces part.
func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d\nwant: %s\ngot:  %s", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}
