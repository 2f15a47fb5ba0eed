package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Golden encodings written by hand from protocol.proto's field numbers and wire types
// (tag byte = field<<3 | wiretype; 0 = varint, 2 = length-delimited), so the encoder is
// checked against the spec rather than against its own decoder.
func TestGoldenEncodings(t *testing.T) {
	t.Parallel()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	id := bytes.Repeat([]byte{0x01}, 24)
	tests := []struct {
		name string
		body Body
		want []byte
	}{
		{"start", &StartMessage{ID: id, DebugID: "inv", KnownEntries: 1,
			StateMap: []StateEntry{{Key: []byte("count"), Value: []byte("5")}}, Key: "k", RandomSeed: 300},
			cat([]byte{0x0a, 24}, id, // id=1 bytes
				[]byte{0x12, 3}, []byte("inv"), // debug_id=2
				[]byte{0x18, 0x01},                                               // known_entries=3
				[]byte{0x22, 10, 0x0a, 5}, []byte("count"), []byte{0x12, 1, '5'}, // state_map=4 {key=1,value=2}
				[]byte{0x32, 1, 'k'},       // key=6
				[]byte{0x48, 0xac, 0x02})}, // random_seed=9: 300 = 0xac 0x02
		{"start v7 optional empty strings are present", &StartMessage{Scope: Ptr(""), IdempotencyKey: Ptr("i")},
			[]byte{0x52, 0, 0x62, 1, 'i'}},
		{"suspension v6", &SuspensionMessage{WaitingCompletions: []uint32{1}, WaitingSignals: []uint32{1, 17}},
			[]byte{0x0a, 1, 1, 0x12, 2, 1, 17}}, // packed repeated uint32
		{"suspension v7", &SuspensionMessage{AwaitingOn: &Future{WaitingCompletions: []uint32{3}, CombinatorType: CombinatorAllCompleted,
			NestedFutures: []Future{{WaitingSignals: []uint32{1}}}}},
			[]byte{0x22, 10, 0x0a, 1, 3, 0x22, 3, 0x12, 1, 1, 0x28, 2}},
		{"error", &ErrorMessage{Code: 500, Message: "boom", RelatedCommandIndex: Ptr(uint32(0)), NextRetryDelay: Ptr(uint64(1000)), Behavior: ErrorBehaviorFail},
			cat([]byte{0x08, 0xf4, 0x03, 0x12, 4}, []byte("boom"), []byte{0x20, 0x00, 0x40, 0xe8, 0x07, 0x48, 0x02})},
		{"end", &EndMessage{}, nil},
		{"propose run empty value", &ProposeRunCompletionMessage{ResultCompletionID: 1, HasValue: true},
			[]byte{0x08, 1, 0x72, 0}}, // value=14 raw bytes, present although empty
		{"propose run failure", &ProposeRunCompletionMessage{ResultCompletionID: 1, Failure: &Failure{Code: 500}},
			[]byte{0x08, 1, 0x7a, 3, 0x08, 0xf4, 0x03}},
		{"input", &InputCommand{Headers: []Header{{Key: "a", Value: "b"}}, Value: NewValue([]byte("x"))},
			[]byte{0x0a, 6, 0x0a, 1, 'a', 0x12, 1, 'b', 0x72, 3, 0x0a, 1, 'x'}},
		{"output empty value", &OutputCommand{Value: &Value{}}, []byte{0x72, 0}},
		{"output failure", &OutputCommand{Failure: &Failure{Code: 418, Message: "nope"}},
			cat([]byte{0x7a, 9, 0x08, 0xa2, 0x03, 0x12, 4}, []byte("nope"))},
		{"failure metadata", &OutputCommand{Failure: &Failure{Metadata: []FailureMetadata{{Key: "k", Value: "v"}}}},
			[]byte{0x7a, 8, 0x1a, 6, 0x0a, 1, 'k', 0x12, 1, 'v'}},
		{"set state", &SetStateCommand{Key: []byte("count"), Value: NewValue([]byte("8")), Name: "n"},
			cat([]byte{0x0a, 5}, []byte("count"), []byte{0x1a, 3, 0x0a, 1, '8', 0x62, 1, 'n'})},
		{"eager state void", &GetEagerStateCommand{Key: []byte("count"), Void: true},
			cat([]byte{0x0a, 5}, []byte("count"), []byte{0x6a, 0})},
		{"eager keys", &GetEagerStateKeysCommand{Value: &StateKeys{Keys: [][]byte{[]byte("a"), nil}}},
			[]byte{0x72, 5, 0x0a, 1, 'a', 0x0a, 0}},
		{"sleep", &SleepCommand{WakeUpTime: 1, ResultCompletionID: 1}, []byte{0x08, 1, 0x58, 1}},
		{"call", &CallCommand{ServiceName: "S", HandlerName: "h", Parameter: []byte("x"), Key: "k",
			IdempotencyKey: Ptr(""), InvocationIDNotificationIdx: 1, ResultCompletionID: 2},
			[]byte{0x0a, 1, 'S', 0x12, 1, 'h', 0x1a, 1, 'x', 0x2a, 1, 'k', 0x32, 0, 0x50, 1, 0x58, 2}},
		{"one way call", &OneWayCallCommand{ServiceName: "S", InvokeTime: 5, Key: "k", IdempotencyKey: Ptr("i"), LimitKey: Ptr("l"), InvocationIDNotificationIdx: 1},
			[]byte{0x0a, 1, 'S', 0x20, 5, 0x32, 1, 'k', 0x3a, 1, 'i', 0x4a, 1, 'l', 0x50, 1}},
		{"send signal cancel", &SendSignalCommand{TargetInvocationID: "i", SignalIdx: Ptr(uint32(1)), Void: true, Name: "n"},
			[]byte{0x0a, 1, 'i', 0x10, 1, 0x22, 0, 0x62, 1, 'n'}},
		{"send signal named value", &SendSignalCommand{SignalName: Ptr("s"), Value: NewValue([]byte("v"))},
			[]byte{0x1a, 1, 's', 0x2a, 3, 0x0a, 1, 'v'}},
		{"attach idempotent", &AttachInvocationCommand{Target: InvocationTarget{IdempotentRequest: &IdempotentRequestTarget{
			ServiceName: "S", HandlerName: "h", IdempotencyKey: "i"}}, ResultCompletionID: 1},
			[]byte{0x1a, 9, 0x0a, 1, 'S', 0x1a, 1, 'h', 0x22, 1, 'i', 0x58, 1}},
		{"get output workflow", &GetInvocationOutputCommand{Target: InvocationTarget{Workflow: &WorkflowTarget{WorkflowName: "W", WorkflowKey: "k"}}, ResultCompletionID: 1},
			[]byte{0x22, 6, 0x0a, 1, 'W', 0x12, 1, 'k', 0x58, 1}},
		{"complete awakeable", &CompleteAwakeableCommand{AwakeableID: "a", Failure: &Failure{Code: 1}},
			[]byte{0x0a, 1, 'a', 0x1a, 2, 0x08, 1}},
		{"sleep completion", CompletionNotification(1).WithVoid(), []byte{0x08, 1, 0x22, 0}},
		{"completion id zero is present", CompletionNotification(0).WithValue(nil), []byte{0x08, 0, 0x2a, 0}},
		{"call invocation id", CompletionNotification(1).WithInvocationID("inv"),
			[]byte{0x08, 1, 0x82, 0x01, 3, 'i', 'n', 'v'}}, // field 16 needs a two-byte tag
		{"state keys", CompletionNotification(2).WithStateKeys([][]byte{[]byte("a")}),
			[]byte{0x08, 2, 0x8a, 0x01, 3, 0x0a, 1, 'a'}},
		{"cancel signal", SignalNotification(1).WithVoid(), []byte{0x10, 1, 0x22, 0}},
		{"named signal failure", NamedSignalNotification("s").WithFailure(Failure{Code: 2}),
			[]byte{0x1a, 1, 's', 0x32, 2, 0x08, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.body.Marshal(); !bytes.Equal(got, tc.want) {
				t.Errorf("Marshal = % x\n            want % x", got, tc.want)
			}
		})
	}
}

// Decoding must accept encodings other producers may legitimately emit.
func TestDecodeForeignEncodings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		into Body
		in   []byte
		want Body
	}{
		{"unpacked repeated uint32", &SuspensionMessage{}, []byte{0x08, 1, 0x08, 2, 0x10, 1},
			&SuspensionMessage{WaitingCompletions: []uint32{1, 2}, WaitingSignals: []uint32{1}}},
		{"mixed packed and unpacked", &SuspensionMessage{}, []byte{0x0a, 2, 1, 2, 0x08, 3},
			&SuspensionMessage{WaitingCompletions: []uint32{1, 2, 3}}},
		{"unknown fields of every wire type", &SleepCommand{},
			[]byte{
				0xb8, 0x06, 7, // field 103 varint
				0x08, 9, // wake_up_time
				0x9d, 0x06, 1, 2, 3, 4, // field 99 fixed32
				0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, // field 99 fixed64
				0x9a, 0x06, 2, 'x', 'y', // field 99 bytes
				0x9b, 0x06, 0x08, 1, 0x9c, 0x06, // field 99 group containing a varint
				0x58, 4,
			},
			&SleepCommand{WakeUpTime: 9, ResultCompletionID: 4}},
		{"known field with wrong wire type is skipped", &SleepCommand{}, []byte{0x0a, 1, 'x', 0x58, 4},
			&SleepCommand{ResultCompletionID: 4}},
		{"last scalar wins", &RunCommand{}, []byte{0x58, 1, 0x58, 2}, &RunCommand{ResultCompletionID: 2}},
		{"uint32 truncates wide varint", &RunCommand{}, []byte{0x58, 0x81, 0x80, 0x80, 0x80, 0x10}, &RunCommand{ResultCompletionID: 1}},
		{"last oneof member wins", &OutputCommand{}, []byte{0x72, 3, 0x0a, 1, 'v', 0x7a, 2, 0x08, 5},
			&OutputCommand{Failure: &Failure{Code: 5}}},
		{"repeated message member merges", &OutputCommand{}, []byte{0x7a, 2, 0x08, 5, 0x7a, 3, 0x12, 1, 'm'},
			&OutputCommand{Failure: &Failure{Code: 5, Message: "m"}}},
		{"void then value", &GetEagerStateCommand{}, []byte{0x6a, 0, 0x72, 0}, &GetEagerStateCommand{Value: &Value{}}},
		{"value then void", &GetEagerStateCommand{}, []byte{0x72, 0, 0x6a, 0}, &GetEagerStateCommand{Void: true}},
		{"signal id replaced by name", &SendSignalCommand{}, []byte{0x10, 1, 0x1a, 1, 'n'}, &SendSignalCommand{SignalName: Ptr("n")}},
		{"target replaced", &AttachInvocationCommand{}, []byte{0x0a, 1, 'i', 0x22, 2, 0x0a, 0}, &AttachInvocationCommand{Target: InvocationTarget{Workflow: &WorkflowTarget{}}}},
		{"notification id replaced", &Notification{}, []byte{0x08, 3, 0x10, 1}, &Notification{Kind: NotificationIDSignal, SignalID: 1}},
		{"notification value merges", &Notification{}, []byte{0x2a, 3, 0x0a, 1, 'a', 0x2a, 0},
			&Notification{Result: ResultValue, Value: []byte("a")}},
		{"notification state keys merge", &Notification{}, []byte{0x8a, 0x01, 3, 0x0a, 1, 'a', 0x8a, 0x01, 3, 0x0a, 1, 'b'},
			&Notification{Result: ResultStateKeys, StateKeys: [][]byte{[]byte("a"), []byte("b")}}},
		{"legacy V1 completion fields ignored", &Notification{}, []byte{0x08, 1, 0x62, 1, 'x', 0x22, 0},
			&Notification{Kind: NotificationIDCompletion, CompletionID: 1, Result: ResultVoid}},
		{"unknown combinator kept", &AwaitingOnMessage{}, []byte{0x0a, 2, 0x28, 9}, &AwaitingOnMessage{AwaitingOn: &Future{CombinatorType: 9}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.into.Unmarshal(tc.in); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.into, tc.want) {
				t.Errorf("got  %#v\nwant %#v", tc.into, tc.want)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		into Body
		in   []byte
	}{
		{"truncated varint", &RunCommand{}, []byte{0x58, 0x80}},
		{"truncated length", &OutputCommand{}, []byte{0x72, 5, 0x0a}},
		{"field number zero", &RunCommand{}, []byte{0x00, 1}},
		{"field number above 2^29-1", &RunCommand{}, []byte{0xb5, 0xb5, 0xb5, 0xb5, 0x30}},
		{"bad nested message", &OutputCommand{}, []byte{0x72, 2, 0x0a, 5}},
		{"bad void content", &GetEagerStateCommand{}, []byte{0x6a, 1, 0x08}},
		{"invalid utf-8 string", &GetPromiseCommand{}, []byte{0x0a, 2, 0xff, 0xfe}},
		{"end with garbage", &EndMessage{}, []byte{0x08}},
		{"unterminated group", &RunCommand{}, []byte{0x9b, 0x06, 0x08, 1}},
		{"bad packed", &SuspensionMessage{}, []byte{0x0a, 1, 0x80}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.into.Unmarshal(tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("Unmarshal(% x) error = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
}

func TestFutureDepthLimit(t *testing.T) {
	t.Parallel()
	f := Future{WaitingCompletions: []uint32{1}}
	for range maxNestingDepth + 5 {
		f = Future{NestedFutures: []Future{f}}
	}
	s := &SuspensionMessage{AwaitingOn: &f}
	var got SuspensionMessage
	if err := got.Unmarshal(s.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep future: error %v, want ErrMalformed", err)
	}
	shallow := Future{WaitingCompletions: []uint32{1}}
	for range maxNestingDepth - 2 {
		shallow = Future{NestedFutures: []Future{shallow}}
	}
	s = &SuspensionMessage{AwaitingOn: &shallow}
	if err := got.Unmarshal(s.Marshal()); err != nil {
		t.Errorf("future within the limit: %v", err)
	}
}
