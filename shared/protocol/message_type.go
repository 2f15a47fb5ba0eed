package protocol

import "fmt"

// MessageType is the 16-bit code in a frame header. Its range says what kind of message it is:
// 0x0000–0x03FF control, 0x0400–0x7FFF commands, 0x8000–0xFBFF notifications, 0xFC00–0xFFFF
// custom entries.
type MessageType uint16

// Control messages.
const (
	StartMessageType                   MessageType = 0x0000
	SuspensionMessageType              MessageType = 0x0001
	ErrorMessageType                   MessageType = 0x0002
	EndMessageType                     MessageType = 0x0003
	CommandAckMessageType              MessageType = 0x0004 // never send to shared-core SDKs
	ProposeRunCompletionMessageType    MessageType = 0x0005
	AwaitingOnMessageType              MessageType = 0x0006 // V7
	ProposeRunCompletionAckMessageType MessageType = 0x0007 // V7
)

// Commands.
const (
	InputCommandType               MessageType = 0x0400
	OutputCommandType              MessageType = 0x0401
	GetLazyStateCommandType        MessageType = 0x0402
	SetStateCommandType            MessageType = 0x0403
	ClearStateCommandType          MessageType = 0x0404
	ClearAllStateCommandType       MessageType = 0x0405
	GetLazyStateKeysCommandType    MessageType = 0x0406
	GetEagerStateCommandType       MessageType = 0x0407
	GetEagerStateKeysCommandType   MessageType = 0x0408
	GetPromiseCommandType          MessageType = 0x0409
	PeekPromiseCommandType         MessageType = 0x040A
	CompletePromiseCommandType     MessageType = 0x040B
	SleepCommandType               MessageType = 0x040C
	CallCommandType                MessageType = 0x040D
	OneWayCallCommandType          MessageType = 0x040E
	SendSignalCommandType          MessageType = 0x0410
	RunCommandType                 MessageType = 0x0411
	AttachInvocationCommandType    MessageType = 0x0412
	GetInvocationOutputCommandType MessageType = 0x0413
	CompleteAwakeableCommandType   MessageType = 0x0414
)

// Notifications.
const (
	GetLazyStateCompletionType        MessageType = 0x8002
	GetLazyStateKeysCompletionType    MessageType = 0x8006
	GetPromiseCompletionType          MessageType = 0x8009
	PeekPromiseCompletionType         MessageType = 0x800A
	CompletePromiseCompletionType     MessageType = 0x800B
	SleepCompletionType               MessageType = 0x800C
	CallCompletionType                MessageType = 0x800D
	CallInvocationIDCompletionType    MessageType = 0x800E
	RunCompletionType                 MessageType = 0x8011
	AttachInvocationCompletionType    MessageType = 0x8012
	GetInvocationOutputCompletionType MessageType = 0x8013
	SignalNotificationType            MessageType = 0xFBFF
)

const (
	firstCommandType      MessageType = 0x0400
	firstNotificationType MessageType = 0x8000
	firstCustomType       MessageType = 0xFC00
)

// Built-in signal ids. Ids 2–16 are reserved; SDK-created awakeables start at 17.
const (
	CancelSignalID         uint32 = 1
	FirstAwakeableSignalID uint32 = 17
)

// IsControl reports whether t is in the control range (Start, End, Suspension, …).
func (t MessageType) IsControl() bool { return t < firstCommandType }

// IsCommand reports whether t is in the command range. Commands are journal entries the SDK
// produces and replays.
func (t MessageType) IsCommand() bool { return t >= firstCommandType && t < firstNotificationType }

// IsNotification reports whether t is in the notification range (completions and signals).
func (t MessageType) IsNotification() bool {
	return t >= firstNotificationType && t < firstCustomType
}

// IsCustom reports whether t is a custom entry, which the runtime stores and replays opaquely.
func (t MessageType) IsCustom() bool { return t >= firstCustomType }

// IsKnown reports whether t is in the catalogue (custom entries are not).
func (t MessageType) IsKnown() bool {
	_, ok := typeNames[t]
	return ok
}

var typeNames = map[MessageType]string{
	StartMessageType:                   "Start",
	SuspensionMessageType:              "Suspension",
	ErrorMessageType:                   "Error",
	EndMessageType:                     "End",
	CommandAckMessageType:              "CommandAck",
	ProposeRunCompletionMessageType:    "ProposeRunCompletion",
	AwaitingOnMessageType:              "AwaitingOn",
	ProposeRunCompletionAckMessageType: "ProposeRunCompletionAck",

	InputCommandType:               "Command: Input",
	OutputCommandType:              "Command: Output",
	GetLazyStateCommandType:        "Command: GetLazyState",
	SetStateCommandType:            "Command: SetState",
	ClearStateCommandType:          "Command: ClearState",
	ClearAllStateCommandType:       "Command: ClearAllState",
	GetLazyStateKeysCommandType:    "Command: GetLazyStateKeys",
	GetEagerStateCommandType:       "Command: GetEagerState",
	GetEagerStateKeysCommandType:   "Command: GetEagerStateKeys",
	GetPromiseCommandType:          "Command: GetPromise",
	PeekPromiseCommandType:         "Command: PeekPromise",
	CompletePromiseCommandType:     "Command: CompletePromise",
	SleepCommandType:               "Command: Sleep",
	CallCommandType:                "Command: Call",
	OneWayCallCommandType:          "Command: OneWayCall",
	SendSignalCommandType:          "Command: SendSignal",
	RunCommandType:                 "Command: Run",
	AttachInvocationCommandType:    "Command: AttachInvocation",
	GetInvocationOutputCommandType: "Command: GetInvocationOutput",
	CompleteAwakeableCommandType:   "Command: CompleteAwakeable",

	GetLazyStateCompletionType:        "Notification: GetLazyState",
	GetLazyStateKeysCompletionType:    "Notification: GetLazyStateKeys",
	GetPromiseCompletionType:          "Notification: GetPromise",
	PeekPromiseCompletionType:         "Notification: PeekPromise",
	CompletePromiseCompletionType:     "Notification: CompletePromise",
	SleepCompletionType:               "Notification: Sleep",
	CallCompletionType:                "Notification: Call",
	CallInvocationIDCompletionType:    "Notification: CallInvocationId",
	RunCompletionType:                 "Notification: Run",
	AttachInvocationCompletionType:    "Notification: AttachInvocation",
	GetInvocationOutputCompletionType: "Notification: GetInvocationOutput",
	SignalNotificationType:            "Notification: Signal",
}

// String names the type the way Restate's sys_journal.entry_type column does
// ("Command: Call", "Notification: Sleep"); control messages get their bare name.
func (t MessageType) String() string {
	if name, ok := typeNames[t]; ok {
		return name
	}
	switch {
	case t.IsCustom():
		return fmt.Sprintf("Custom: 0x%04X", uint16(t))
	case t.IsCommand():
		return fmt.Sprintf("Command: 0x%04X", uint16(t))
	case t.IsNotification():
		return fmt.Sprintf("Notification: 0x%04X", uint16(t))
	default:
		return fmt.Sprintf("Control: 0x%04X", uint16(t))
	}
}

// CompletionTypeFor returns the notification type that completes a command of type t, or
// false for commands without completions. Call commands also get a CallInvocationIDCompletion
// (see ExpectedNotifications).
func CompletionTypeFor(t MessageType) (MessageType, bool) {
	switch t {
	case GetLazyStateCommandType, GetLazyStateKeysCommandType, GetPromiseCommandType,
		PeekPromiseCommandType, CompletePromiseCommandType, SleepCommandType, CallCommandType,
		RunCommandType, AttachInvocationCommandType, GetInvocationOutputCommandType:
		// The completion reuses the command's low byte: 0x040C Sleep → 0x800C.
		return firstNotificationType | t&0x00FF, true
	case OneWayCallCommandType:
		return CallInvocationIDCompletionType, true
	}
	return 0, false
}
