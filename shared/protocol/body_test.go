package protocol

import (
	"errors"
	"reflect"
	"testing"
)

func TestExpectedNotifications(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body TypedBody
		want []ExpectedNotification
	}{
		{"call", &CallCommand{ServiceName: "S", Parameter: make([]byte, 1000), InvocationIDNotificationIdx: 1, ResultCompletionID: 2},
			[]ExpectedNotification{{CallInvocationIDCompletionType, 1}, {CallCompletionType, 2}}},
		{"one way call", &OneWayCallCommand{InvocationIDNotificationIdx: 3},
			[]ExpectedNotification{{CallInvocationIDCompletionType, 3}}},
		{"sleep", &SleepCommand{WakeUpTime: 5, ResultCompletionID: 1}, []ExpectedNotification{{SleepCompletionType, 1}}},
		{"run", &RunCommand{ResultCompletionID: 4}, []ExpectedNotification{{RunCompletionType, 4}}},
		{"lazy state", &GetLazyStateCommand{Key: []byte("k"), ResultCompletionID: 2}, []ExpectedNotification{{GetLazyStateCompletionType, 2}}},
		{"lazy keys", &GetLazyStateKeysCommand{ResultCompletionID: 2}, []ExpectedNotification{{GetLazyStateKeysCompletionType, 2}}},
		{"get promise", &GetPromiseCommand{Key: "p", ResultCompletionID: 1}, []ExpectedNotification{{GetPromiseCompletionType, 1}}},
		{"peek promise", &PeekPromiseCommand{Key: "p", ResultCompletionID: 1}, []ExpectedNotification{{PeekPromiseCompletionType, 1}}},
		{"complete promise", &CompletePromiseCommand{Key: "p", CompletionValue: &Value{}, ResultCompletionID: 2}, []ExpectedNotification{{CompletePromiseCompletionType, 2}}},
		{"attach", &AttachInvocationCommand{Target: InvocationTarget{InvocationID: Ptr("i")}, ResultCompletionID: 6}, []ExpectedNotification{{AttachInvocationCompletionType, 6}}},
		{"get output", &GetInvocationOutputCommand{Target: InvocationTarget{InvocationID: Ptr("i")}, ResultCompletionID: 7}, []ExpectedNotification{{GetInvocationOutputCompletionType, 7}}},
		{"output", &OutputCommand{Value: &Value{}}, nil},
		{"set state", &SetStateCommand{Key: []byte("k")}, nil},
		{"eager state", &GetEagerStateCommand{Void: true}, nil},
		{"send signal", &SendSignalCommand{SignalIdx: Ptr(uint32(1)), Void: true}, nil},
		{"complete awakeable", &CompleteAwakeableCommand{AwakeableID: "a", Value: &Value{}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := NewMessage(tc.body)
			got, err := ExpectedNotifications(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ExpectedNotifications = %v, want %v", got, tc.want)
			}
			ids, err := CommandCompletionIDs(msg)
			if err != nil {
				t.Fatal(err)
			}
			var wantIDs []uint32
			for _, e := range tc.want {
				wantIDs = append(wantIDs, e.CompletionID)
			}
			if !reflect.DeepEqual(ids, wantIDs) {
				t.Errorf("CommandCompletionIDs = %v, want %v", ids, wantIDs)
			}
			id, ok := CompletionIDOf(msg)
			wantOK := len(tc.want) > 0 && msg.Type != OneWayCallCommandType
			if ok != wantOK || (ok && id != tc.want[len(tc.want)-1].CompletionID) {
				t.Errorf("CompletionIDOf = %d, %v", id, ok)
			}
		})
	}
}

func TestExpectedNotificationsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  Message
		want error
	}{
		{"control message", NewMessage(&EndMessage{}), ErrNotCommand},
		{"notification", NotificationMessage(SleepCompletionType, CompletionNotification(1)), ErrNotCommand},
		{"custom entry", Message{Type: 0xFC00}, ErrNotCommand},
		{"unknown command", Message{Type: 0x040F}, ErrUnknownMessageType},
		{"malformed completable", Message{Type: SleepCommandType, Payload: []byte{0x58}}, ErrMalformed},
		{"malformed plain command", Message{Type: OutputCommandType, Payload: []byte{0x72, 9}}, ErrMalformed},
	}
	for _, tc := range tests {
		if _, err := CommandCompletionIDs(tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, ok := CompletionIDOf(Message{Type: SleepCommandType, Payload: []byte{0x58}}); ok {
		t.Error("CompletionIDOf(malformed) ok")
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	if got := ContentType(Version6); got != "application/vnd.restate.invocation.v6" {
		t.Errorf("ContentType(6) = %q", got)
	}
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"application/vnd.restate.invocation.v6", 6, true},
		{"application/vnd.restate.invocation.v5", 5, true},
		{"Application/VND.Restate.Invocation.V7 ; charset=utf-8", 7, true},
		{"  application/vnd.restate.invocation.v12", 12, true},
		{"application/vnd.restate.invocation.v", 0, false},
		{"application/vnd.restate.invocation.v0", 0, false},
		{"application/vnd.restate.invocation.v6x", 0, false},
		{"application/vnd.restate.invocation.v-1", 0, false},
		{"application/vnd.restate.invocation.v99999", 0, false},
		{"application/json", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseContentType(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseContentType(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotProtocolContentType) {
			t.Errorf("ParseContentType(%q) error %v is not ErrNotProtocolContentType", tc.in, err)
		}
	}
	for v := 1; v <= 8; v++ {
		if got, err := ParseContentType(ContentType(v)); err != nil || got != v {
			t.Errorf("round trip v%d: %d, %v", v, got, err)
		}
	}
}
