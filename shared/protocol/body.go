package protocol

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

var (
	// ErrUnknownMessageType reports a type outside the catalogue (custom entries included).
	ErrUnknownMessageType = errors.New("unknown protocol message type")
	// ErrNotCommand reports a message that is not a command where one is required.
	ErrNotCommand = errors.New("not a command message")
)

// Body is a typed message payload.
type Body interface {
	Marshal() []byte
	Unmarshal(b []byte) error
}

// TypedBody is a Body that knows its frame type; every message except Notification (whose
// type depends on which completion it is) implements it.
type TypedBody interface {
	Body
	MessageType() MessageType
}

// NewBody returns an empty typed body for t: a *Notification for every notification type, and
// the matching struct otherwise.
func NewBody(t MessageType) (Body, error) {
	if t.IsNotification() && t.IsKnown() {
		return &Notification{}, nil
	}
	switch t {
	case StartMessageType:
		return &StartMessage{}, nil
	case SuspensionMessageType:
		return &SuspensionMessage{}, nil
	case ErrorMessageType:
		return &ErrorMessage{}, nil
	case EndMessageType:
		return &EndMessage{}, nil
	case CommandAckMessageType:
		return &CommandAckMessage{}, nil
	case ProposeRunCompletionMessageType:
		return &ProposeRunCompletionMessage{}, nil
	case AwaitingOnMessageType:
		return &AwaitingOnMessage{}, nil
	case ProposeRunCompletionAckMessageType:
		return &ProposeRunCompletionAckMessage{}, nil
	case InputCommandType:
		return &InputCommand{}, nil
	case OutputCommandType:
		return &OutputCommand{}, nil
	case GetLazyStateCommandType:
		return &GetLazyStateCommand{}, nil
	case SetStateCommandType:
		return &SetStateCommand{}, nil
	case ClearStateCommandType:
		return &ClearStateCommand{}, nil
	case ClearAllStateCommandType:
		return &ClearAllStateCommand{}, nil
	case GetLazyStateKeysCommandType:
		return &GetLazyStateKeysCommand{}, nil
	case GetEagerStateCommandType:
		return &GetEagerStateCommand{}, nil
	case GetEagerStateKeysCommandType:
		return &GetEagerStateKeysCommand{}, nil
	case GetPromiseCommandType:
		return &GetPromiseCommand{}, nil
	case PeekPromiseCommandType:
		return &PeekPromiseCommand{}, nil
	case CompletePromiseCommandType:
		return &CompletePromiseCommand{}, nil
	case SleepCommandType:
		return &SleepCommand{}, nil
	case CallCommandType:
		return &CallCommand{}, nil
	case OneWayCallCommandType:
		return &OneWayCallCommand{}, nil
	case SendSignalCommandType:
		return &SendSignalCommand{}, nil
	case RunCommandType:
		return &RunCommand{}, nil
	case AttachInvocationCommandType:
		return &AttachInvocationCommand{}, nil
	case GetInvocationOutputCommandType:
		return &GetInvocationOutputCommand{}, nil
	case CompleteAwakeableCommandType:
		return &CompleteAwakeableCommand{}, nil
	}
	return nil, fmt.Errorf("%s: %w", t, ErrUnknownMessageType)
}

// ParseBody decodes m's payload into the typed body for m.Type.
func ParseBody(m Message) (Body, error) {
	body, err := NewBody(m.Type)
	if err != nil {
		return nil, err
	}
	if err := body.Unmarshal(m.Payload); err != nil {
		return nil, err
	}
	return body, nil
}

// NewMessage frames a typed body (without flags).
func NewMessage(b TypedBody) Message {
	return Message{Type: b.MessageType(), Payload: b.Marshal()}
}

// ExpectedNotification is a notification a command waits for.
type ExpectedNotification struct {
	Type         MessageType
	CompletionID uint32
}

// ExpectedNotifications returns the notifications command m will be answered with, in the
// order the runtime produces them (Call: invocation id, then result). It reads only the id
// fields, so large parameters are not copied.
func ExpectedNotifications(m Message) ([]ExpectedNotification, error) {
	if !m.Type.IsCommand() {
		return nil, fmt.Errorf("%s: %w", m.Type, ErrNotCommand)
	}
	if !m.Type.IsKnown() {
		return nil, fmt.Errorf("%s: %w", m.Type, ErrUnknownMessageType)
	}
	completionType, ok := CompletionTypeFor(m.Type)
	if !ok {
		return nil, validatePayload(m)
	}
	idIdx, resultID, err := scanCompletionFields(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", m.Type, err)
	}
	switch m.Type {
	case CallCommandType:
		return []ExpectedNotification{
			{Type: CallInvocationIDCompletionType, CompletionID: idIdx},
			{Type: CallCompletionType, CompletionID: resultID},
		}, nil
	case OneWayCallCommandType:
		return []ExpectedNotification{{Type: CallInvocationIDCompletionType, CompletionID: idIdx}}, nil
	}
	return []ExpectedNotification{{Type: completionType, CompletionID: resultID}}, nil
}

// CommandCompletionIDs returns the completion ids command m expects notifications for
// (Call: [invocation_id_notification_idx, result_completion_id]); nil for commands answered
// by nothing.
func CommandCompletionIDs(m Message) ([]uint32, error) {
	expected, err := ExpectedNotifications(m)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, e := range expected {
		ids = append(ids, e.CompletionID)
	}
	return ids, nil
}

// CompletionIDOf returns the result_completion_id of a command that carries one.
func CompletionIDOf(m Message) (uint32, bool) {
	if _, ok := CompletionTypeFor(m.Type); !ok || m.Type == OneWayCallCommandType {
		return 0, false
	}
	_, resultID, err := scanCompletionFields(m.Payload)
	if err != nil {
		return 0, false
	}
	return resultID, true
}

// scanCompletionFields reads fields 10 (invocation_id_notification_idx) and 11
// (result_completion_id), the last occurrence winning, and validates the rest of the framing.
func scanCompletionFields(b []byte) (idIdx, resultID uint32, err error) {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(10, protowire.VarintType):
			idIdx = r.uint32()
		case r.is(fieldResultCompletionID, protowire.VarintType):
			resultID = r.uint32()
		default:
			r.skip()
		}
	}
	return idIdx, resultID, r.err
}

func validatePayload(m Message) error {
	_, err := ParseBody(m)
	return err
}
