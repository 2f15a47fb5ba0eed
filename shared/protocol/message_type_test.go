package protocol

import "testing"

func TestMessageTypeRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ                                        MessageType
		control, command, notification, custom, ok bool
		name                                       string
	}{
		{StartMessageType, true, false, false, false, true, "Start"},
		{ProposeRunCompletionAckMessageType, true, false, false, false, true, "ProposeRunCompletionAck"},
		{0x03FF, true, false, false, false, false, "Control: 0x03FF"},
		{InputCommandType, false, true, false, false, true, "Command: Input"},
		{CallCommandType, false, true, false, false, true, "Command: Call"},
		{GetEagerStateCommandType, false, true, false, false, true, "Command: GetEagerState"},
		{0x040F, false, true, false, false, false, "Command: 0x040F"},
		{CompleteAwakeableCommandType, false, true, false, false, true, "Command: CompleteAwakeable"},
		{0x7FFF, false, true, false, false, false, "Command: 0x7FFF"},
		{0x8000, false, false, true, false, false, "Notification: 0x8000"},
		{GetPromiseCompletionType, false, false, true, false, true, "Notification: GetPromise"},
		{SleepCompletionType, false, false, true, false, true, "Notification: Sleep"},
		{CallInvocationIDCompletionType, false, false, true, false, true, "Notification: CallInvocationId"},
		{SignalNotificationType, false, false, true, false, true, "Notification: Signal"},
		{0xFC00, false, false, false, true, false, "Custom: 0xFC00"},
		{0xFFFF, false, false, false, true, false, "Custom: 0xFFFF"},
	}
	for _, tc := range tests {
		if got := tc.typ.IsControl(); got != tc.control {
			t.Errorf("%#04x IsControl = %v", uint16(tc.typ), got)
		}
		if got := tc.typ.IsCommand(); got != tc.command {
			t.Errorf("%#04x IsCommand = %v", uint16(tc.typ), got)
		}
		if got := tc.typ.IsNotification(); got != tc.notification {
			t.Errorf("%#04x IsNotification = %v", uint16(tc.typ), got)
		}
		if got := tc.typ.IsCustom(); got != tc.custom {
			t.Errorf("%#04x IsCustom = %v", uint16(tc.typ), got)
		}
		if got := tc.typ.IsKnown(); got != tc.ok {
			t.Errorf("%#04x IsKnown = %v", uint16(tc.typ), got)
		}
		if got := tc.typ.String(); got != tc.name {
			t.Errorf("%#04x String = %q, want %q", uint16(tc.typ), got, tc.name)
		}
	}
}

func TestCatalogueCodes(t *testing.T) {
	t.Parallel()
	// The numeric codes from PROTOCOL.md §1.4, restated literally so that a typo in a
	// constant cannot hide behind itself.
	want := map[MessageType]uint16{
		StartMessageType: 0x0000, SuspensionMessageType: 0x0001, ErrorMessageType: 0x0002,
		EndMessageType: 0x0003, CommandAckMessageType: 0x0004, ProposeRunCompletionMessageType: 0x0005,
		AwaitingOnMessageType: 0x0006, ProposeRunCompletionAckMessageType: 0x0007,
		InputCommandType: 0x0400, OutputCommandType: 0x0401, GetLazyStateCommandType: 0x0402,
		SetStateCommandType: 0x0403, ClearStateCommandType: 0x0404, ClearAllStateCommandType: 0x0405,
		GetLazyStateKeysCommandType: 0x0406, GetEagerStateCommandType: 0x0407,
		GetEagerStateKeysCommandType: 0x0408, GetPromiseCommandType: 0x0409,
		PeekPromiseCommandType: 0x040A, CompletePromiseCommandType: 0x040B, SleepCommandType: 0x040C,
		CallCommandType: 0x040D, OneWayCallCommandType: 0x040E, SendSignalCommandType: 0x0410,
		RunCommandType: 0x0411, AttachInvocationCommandType: 0x0412,
		GetInvocationOutputCommandType: 0x0413, CompleteAwakeableCommandType: 0x0414,
		GetLazyStateCompletionType: 0x8002, GetLazyStateKeysCompletionType: 0x8006,
		GetPromiseCompletionType: 0x8009, PeekPromiseCompletionType: 0x800A,
		CompletePromiseCompletionType: 0x800B, SleepCompletionType: 0x800C,
		CallCompletionType: 0x800D, CallInvocationIDCompletionType: 0x800E,
		RunCompletionType: 0x8011, AttachInvocationCompletionType: 0x8012,
		GetInvocationOutputCompletionType: 0x8013, SignalNotificationType: 0xFBFF,
	}
	for typ, code := range want {
		if uint16(typ) != code {
			t.Errorf("%s = %#04x, want %#04x", typ, uint16(typ), code)
		}
	}
	if len(want) != len(typeNames) {
		t.Errorf("catalogue has %d names, want %d", len(typeNames), len(want))
	}
}

func TestCompletionTypeFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd  MessageType
		want MessageType
		ok   bool
	}{
		{GetLazyStateCommandType, GetLazyStateCompletionType, true},
		{GetLazyStateKeysCommandType, GetLazyStateKeysCompletionType, true},
		{GetPromiseCommandType, GetPromiseCompletionType, true},
		{PeekPromiseCommandType, PeekPromiseCompletionType, true},
		{CompletePromiseCommandType, CompletePromiseCompletionType, true},
		{SleepCommandType, SleepCompletionType, true},
		{CallCommandType, CallCompletionType, true},
		{OneWayCallCommandType, CallInvocationIDCompletionType, true},
		{RunCommandType, RunCompletionType, true},
		{AttachInvocationCommandType, AttachInvocationCompletionType, true},
		{GetInvocationOutputCommandType, GetInvocationOutputCompletionType, true},
		{InputCommandType, 0, false},
		{OutputCommandType, 0, false},
		{SetStateCommandType, 0, false},
		{GetEagerStateCommandType, 0, false},
		{SendSignalCommandType, 0, false},
		{CompleteAwakeableCommandType, 0, false},
		{EndMessageType, 0, false},
	}
	for _, tc := range tests {
		got, ok := CompletionTypeFor(tc.cmd)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CompletionTypeFor(%s) = %s, %v; want %s, %v", tc.cmd, got, ok, tc.want, tc.ok)
		}
	}
}
