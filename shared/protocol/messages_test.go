package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

type bodyCase struct {
	name string
	typ  MessageType
	body Body
}

func failure() *Failure {
	return &Failure{Code: 418, Message: "nope", Metadata: []FailureMetadata{{Key: "k", Value: "v"}, {Key: "empty"}}}
}

// allBodies covers every message type, each oneof member, and the present-but-empty cases.
func allBodies() []bodyCase {
	id := bytes.Repeat([]byte{0xAB}, 24)
	future := &Future{
		WaitingCompletions:  []uint32{3},
		WaitingSignals:      []uint32{1},
		WaitingNamedSignals: []string{"s"},
		CombinatorType:      CombinatorAllSucceededOrFirstFailed,
		NestedFutures: []Future{
			{WaitingSignals: []uint32{1, 2}, CombinatorType: CombinatorFirstCompleted},
			{NestedFutures: []Future{{WaitingCompletions: []uint32{7, 1 << 31}}}},
		},
	}
	return []bodyCase{
		{"start full", StartMessageType, &StartMessage{
			ID: id, DebugID: "inv_1abc", KnownEntries: 5,
			StateMap:     []StateEntry{{Key: []byte("count"), Value: []byte("5")}, {Key: []byte("empty")}},
			PartialState: true, Key: "alice", RetryCountSinceLastStoredEntry: 2,
			DurationSinceLastStoredEntry: 1500, RandomSeed: 1<<63 + 5,
			Scope: Ptr("sc"), LimitKey: Ptr(""), IdempotencyKey: Ptr("ik"),
		}},
		{"start empty", StartMessageType, &StartMessage{}},
		{"suspension v6", SuspensionMessageType, &SuspensionMessage{WaitingCompletions: []uint32{1, 2, 300}, WaitingSignals: []uint32{1, 17}, WaitingNamedSignals: []string{"a", ""}}},
		{"suspension v7", SuspensionMessageType, &SuspensionMessage{AwaitingOn: future}},
		{"suspension v7 empty future", SuspensionMessageType, &SuspensionMessage{AwaitingOn: &Future{}}},
		{"error full", ErrorMessageType, &ErrorMessage{
			Code: 500, Message: "boom", Stacktrace: "at x", RelatedCommandIndex: Ptr(uint32(0)),
			RelatedCommandName: Ptr("n"), RelatedCommandType: Ptr(uint32(CallCommandType)),
			NextRetryDelay: Ptr(uint64(0)), Behavior: ErrorBehaviorPause,
		}},
		{"error minimal", ErrorMessageType, &ErrorMessage{Code: 570}},
		{"end", EndMessageType, &EndMessage{}},
		{"command ack", CommandAckMessageType, &CommandAckMessage{CommandIndex: 9}},
		{"propose value", ProposeRunCompletionMessageType, &ProposeRunCompletionMessage{ResultCompletionID: 1, Value: []byte(`"x"`), HasValue: true}},
		{"propose empty value", ProposeRunCompletionMessageType, &ProposeRunCompletionMessage{ResultCompletionID: 1, HasValue: true}},
		{"propose failure", ProposeRunCompletionMessageType, &ProposeRunCompletionMessage{ResultCompletionID: 2, Failure: failure()}},
		{"propose unset", ProposeRunCompletionMessageType, &ProposeRunCompletionMessage{ResultCompletionID: 2}},
		{"awaiting on", AwaitingOnMessageType, &AwaitingOnMessage{AwaitingOn: future, ExecutingSideEffects: true}},
		{"propose ack", ProposeRunCompletionAckMessageType, &ProposeRunCompletionAckMessage{CompletionID: 4}},

		{"input", InputCommandType, &InputCommand{Headers: []Header{{Key: "a", Value: "1"}, {Key: "b"}}, Value: NewValue([]byte("body")), Name: "in"}},
		{"input empty value", InputCommandType, &InputCommand{Value: &Value{}}},
		{"output value", OutputCommandType, &OutputCommand{Value: NewValue([]byte("hi")), Name: "o"}},
		{"output empty value", OutputCommandType, &OutputCommand{Value: &Value{}}},
		{"output failure", OutputCommandType, &OutputCommand{Failure: failure()}},
		{"output empty failure", OutputCommandType, &OutputCommand{Failure: &Failure{}}},
		{"get lazy state", GetLazyStateCommandType, &GetLazyStateCommand{Key: []byte("k"), ResultCompletionID: 3, Name: "g"}},
		{"set state", SetStateCommandType, &SetStateCommand{Key: []byte("k"), Value: NewValue([]byte("8")), Name: "s"}},
		{"set state empty", SetStateCommandType, &SetStateCommand{Key: []byte("k"), Value: &Value{}}},
		{"clear state", ClearStateCommandType, &ClearStateCommand{Key: []byte("k"), Name: "c"}},
		{"clear all", ClearAllStateCommandType, &ClearAllStateCommand{Name: "ca"}},
		{"get lazy keys", GetLazyStateKeysCommandType, &GetLazyStateKeysCommand{ResultCompletionID: 1, Name: "lk"}},
		{"eager state value", GetEagerStateCommandType, &GetEagerStateCommand{Key: []byte("count"), Value: NewValue([]byte("5"))}},
		{"eager state empty value", GetEagerStateCommandType, &GetEagerStateCommand{Key: []byte("count"), Value: &Value{}}},
		{"eager state void", GetEagerStateCommandType, &GetEagerStateCommand{Key: []byte("count"), Void: true, Name: "e"}},
		{"eager keys", GetEagerStateKeysCommandType, &GetEagerStateKeysCommand{Value: &StateKeys{Keys: [][]byte{[]byte("a"), nil, []byte("c")}}}},
		{"eager keys empty", GetEagerStateKeysCommandType, &GetEagerStateKeysCommand{Value: &StateKeys{}}},
		{"get promise", GetPromiseCommandType, &GetPromiseCommand{Key: "p", ResultCompletionID: 1, Name: "gp"}},
		{"peek promise", PeekPromiseCommandType, &PeekPromiseCommand{Key: "p", ResultCompletionID: 2}},
		{"complete promise value", CompletePromiseCommandType, &CompletePromiseCommand{Key: "p", CompletionValue: NewValue([]byte("v")), ResultCompletionID: 2, Name: "cp"}},
		{"complete promise failure", CompletePromiseCommandType, &CompletePromiseCommand{Key: "p", CompletionFailure: failure(), ResultCompletionID: 2}},
		{"sleep", SleepCommandType, &SleepCommand{WakeUpTime: 1_700_000_000_000, ResultCompletionID: 1, Name: "nap"}},
		{"call", CallCommandType, &CallCommand{
			ServiceName: "Greeter", HandlerName: "greet", Parameter: []byte(`"bob"`),
			Headers: []Header{{Key: "x", Value: "y"}}, Key: "k", IdempotencyKey: Ptr("ik"),
			Scope: Ptr("s"), LimitKey: Ptr("l"), InvocationIDNotificationIdx: 1, ResultCompletionID: 2, Name: "c",
		}},
		{"call minimal", CallCommandType, &CallCommand{ServiceName: "S", HandlerName: "h", InvocationIDNotificationIdx: 1, ResultCompletionID: 2}},
		{"one way call", OneWayCallCommandType, &OneWayCallCommand{
			ServiceName: "S", HandlerName: "h", Parameter: []byte("p"), InvokeTime: 99,
			Headers: []Header{{Key: "x"}}, Key: "k", IdempotencyKey: Ptr(""), Scope: Ptr("s"),
			LimitKey: Ptr("l"), InvocationIDNotificationIdx: 3, Name: "ow",
		}},
		{"send signal cancel", SendSignalCommandType, &SendSignalCommand{TargetInvocationID: "inv_1x", SignalIdx: Ptr(CancelSignalID), Void: true, Name: "cancel"}},
		{"send signal idx zero", SendSignalCommandType, &SendSignalCommand{TargetInvocationID: "inv_1x", SignalIdx: Ptr(uint32(0)), Value: &Value{}}},
		{"send signal named value", SendSignalCommandType, &SendSignalCommand{TargetInvocationID: "inv_1x", SignalName: Ptr("go"), Value: NewValue([]byte("v"))}},
		{"send signal failure", SendSignalCommandType, &SendSignalCommand{TargetInvocationID: "inv_1x", SignalIdx: Ptr(uint32(17)), Failure: failure()}},
		{"run", RunCommandType, &RunCommand{ResultCompletionID: 1, Name: "side effect"}},
		{"attach by id", AttachInvocationCommandType, &AttachInvocationCommand{Target: InvocationTarget{InvocationID: Ptr("inv_1x")}, ResultCompletionID: 1}},
		{"attach by idempotency", AttachInvocationCommandType, &AttachInvocationCommand{Target: InvocationTarget{IdempotentRequest: &IdempotentRequestTarget{
			ServiceName: "S", ServiceKey: Ptr(""), HandlerName: "h", IdempotencyKey: "ik", Scope: Ptr("s"),
		}}, ResultCompletionID: 1, Name: "a"}},
		{"attach by workflow", AttachInvocationCommandType, &AttachInvocationCommand{Target: InvocationTarget{Workflow: &WorkflowTarget{WorkflowName: "W", WorkflowKey: "k", Scope: Ptr("s")}}, ResultCompletionID: 1}},
		{"attach empty workflow", AttachInvocationCommandType, &AttachInvocationCommand{Target: InvocationTarget{Workflow: &WorkflowTarget{}}}},
		{"get output by id", GetInvocationOutputCommandType, &GetInvocationOutputCommand{Target: InvocationTarget{InvocationID: Ptr("")}, ResultCompletionID: 5, Name: "o"}},
		{"get output by workflow", GetInvocationOutputCommandType, &GetInvocationOutputCommand{Target: InvocationTarget{Workflow: &WorkflowTarget{WorkflowName: "W", WorkflowKey: "k"}}, ResultCompletionID: 5}},
		{"complete awakeable value", CompleteAwakeableCommandType, &CompleteAwakeableCommand{AwakeableID: "sign_1x", Value: NewValue([]byte("v")), Name: "aw"}},
		{"complete awakeable failure", CompleteAwakeableCommandType, &CompleteAwakeableCommand{AwakeableID: "prom_1x", Failure: failure()}},

		{"lazy state value", GetLazyStateCompletionType, CompletionNotification(1).WithValue([]byte("v"))},
		{"lazy state void", GetLazyStateCompletionType, CompletionNotification(1).WithVoid()},
		{"lazy keys", GetLazyStateKeysCompletionType, CompletionNotification(1).WithStateKeys([][]byte{[]byte("a"), []byte("b")})},
		{"lazy keys none", GetLazyStateKeysCompletionType, CompletionNotification(1).WithStateKeys(nil)},
		{"promise value", GetPromiseCompletionType, CompletionNotification(1).WithValue([]byte("v"))},
		{"peek void", PeekPromiseCompletionType, CompletionNotification(2).WithVoid()},
		{"complete promise conflict", CompletePromiseCompletionType, CompletionNotification(2).WithFailure(Failure{Code: 409, Message: "promise was already completed"})},
		{"sleep done", SleepCompletionType, CompletionNotification(1).WithVoid()},
		{"call result empty value", CallCompletionType, CompletionNotification(2).WithValue(nil)},
		{"call invocation id", CallInvocationIDCompletionType, CompletionNotification(1).WithInvocationID("inv_1abc")},
		{"run failure", RunCompletionType, CompletionNotification(1).WithFailure(*failure())},
		{"attach value", AttachInvocationCompletionType, CompletionNotification(3).WithValue([]byte("v"))},
		{"get output void", GetInvocationOutputCompletionType, CompletionNotification(3).WithVoid()},
		{"completion id zero", SleepCompletionType, CompletionNotification(0).WithVoid()},
		{"cancel signal", SignalNotificationType, SignalNotification(CancelSignalID).WithVoid()},
		{"awakeable signal", SignalNotificationType, SignalNotification(17).WithValue([]byte("v"))},
		{"named signal", SignalNotificationType, NamedSignalNotification("go").WithFailure(Failure{Code: 500})},
		{"empty notification", SignalNotificationType, &Notification{}},
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	t.Parallel()
	seen := map[MessageType]bool{}
	for _, tc := range allBodies() {
		seen[tc.typ] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tb, ok := tc.body.(TypedBody); ok && tb.MessageType() != tc.typ {
				t.Fatalf("MessageType() = %s, want %s", tb.MessageType(), tc.typ)
			}
			encoded := tc.body.Marshal()
			frame := AppendFrame(nil, Message{Type: tc.typ, Payload: encoded})
			msg, _, err := DecodeFrame(frame)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := ParseBody(msg)
			if err != nil {
				t.Fatalf("ParseBody: %v", err)
			}
			if !reflect.DeepEqual(decoded, tc.body) {
				t.Fatalf("round trip mismatch:\n got  %#v\n want %#v", decoded, tc.body)
			}
			if again := decoded.Marshal(); !bytes.Equal(again, encoded) {
				t.Fatalf("re-encoding differs:\n got  % x\n want % x", again, encoded)
			}
		})
	}
	for typ := range typeNames {
		if !seen[typ] {
			t.Errorf("no round-trip case for %s", typ)
		}
	}
}

func TestNewMessage(t *testing.T) {
	t.Parallel()
	m := NewMessage(&RunCommand{ResultCompletionID: 1})
	if m.Type != RunCommandType || !bytes.Equal(m.Payload, []byte{0x58, 0x01}) || m.Flags != 0 {
		t.Errorf("NewMessage = %+v", m)
	}
	n := NotificationMessage(RunCompletionType, CompletionNotification(1).WithValue([]byte("x")))
	if n.Type != RunCompletionType || !bytes.Equal(n.Payload, []byte{0x08, 0x01, 0x2a, 0x03, 0x0a, 0x01, 'x'}) {
		t.Errorf("NotificationMessage = %+v", n)
	}
	if _, err := NewBody(0xFC00); err == nil {
		t.Error("NewBody(custom) succeeded")
	}
	if _, err := NewBody(0x040F); err == nil {
		t.Error("NewBody(0x040F) succeeded")
	}
}

func TestNotificationBuildersReplaceResult(t *testing.T) {
	t.Parallel()
	n := CompletionNotification(4).WithValue([]byte("v")).WithFailure(Failure{Code: 1}).WithVoid()
	want := &Notification{Kind: NotificationIDCompletion, CompletionID: 4, Result: ResultVoid}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("got %#v, want %#v", n, want)
	}
}
