package protocol

import "google.golang.org/protobuf/encoding/protowire"

// CallCommand invokes another handler and waits for its result. It is answered first by a
// CallInvocationIDCompletion (InvocationIDNotificationIdx) and later by a CallCompletion
// (ResultCompletionID).
type CallCommand struct {
	ServiceName                 string
	HandlerName                 string
	Parameter                   []byte
	Headers                     []Header
	Key                         string
	IdempotencyKey              *string
	Scope                       *string // V7
	LimitKey                    *string // V7
	InvocationIDNotificationIdx uint32
	ResultCompletionID          uint32
	Name                        string
}

// MessageType returns CallCommandType.
func (*CallCommand) MessageType() MessageType { return CallCommandType }

// Marshal encodes the message payload.
func (m *CallCommand) Marshal() []byte {
	b := appendString(nil, 1, m.ServiceName)
	b = appendString(b, 2, m.HandlerName)
	b = appendBytes(b, 3, m.Parameter)
	b = appendHeaders(b, 4, m.Headers)
	b = appendString(b, 5, m.Key)
	b = appendOptString(b, 6, m.IdempotencyKey)
	b = appendOptString(b, 7, m.Scope)
	b = appendOptString(b, 8, m.LimitKey)
	b = appendUint32(b, 10, m.InvocationIDNotificationIdx)
	return appendCompletionAndName(b, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *CallCommand) Unmarshal(b []byte) error {
	*m = CallCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.ServiceName = r.string()
		case r.is(2, protowire.BytesType):
			m.HandlerName = r.string()
		case r.is(3, protowire.BytesType):
			m.Parameter = r.bytes()
		case r.is(4, protowire.BytesType):
			m.Headers = r.header(m.Headers)
		case r.is(5, protowire.BytesType):
			m.Key = r.string()
		case r.is(6, protowire.BytesType):
			m.IdempotencyKey = r.ptrString()
		case r.is(7, protowire.BytesType):
			m.Scope = r.ptrString()
		case r.is(8, protowire.BytesType):
			m.LimitKey = r.ptrString()
		case r.is(10, protowire.VarintType):
			m.InvocationIDNotificationIdx = r.uint32()
		case r.completionOrName(&m.ResultCompletionID, &m.Name):
		default:
			r.skip()
		}
	}
	return wrapDecode(CallCommandType, r.err)
}

// OneWayCallCommand invokes another handler without waiting (optionally delayed until
// InvokeTime); answered only by a CallInvocationIDCompletion.
type OneWayCallCommand struct {
	ServiceName                 string
	HandlerName                 string
	Parameter                   []byte
	InvokeTime                  uint64 // ms since the epoch; 0 or past means now
	Headers                     []Header
	Key                         string
	IdempotencyKey              *string
	Scope                       *string // V7
	LimitKey                    *string // V7
	InvocationIDNotificationIdx uint32
	Name                        string
}

// MessageType returns OneWayCallCommandType.
func (*OneWayCallCommand) MessageType() MessageType { return OneWayCallCommandType }

// Marshal encodes the message payload.
func (m *OneWayCallCommand) Marshal() []byte {
	b := appendString(nil, 1, m.ServiceName)
	b = appendString(b, 2, m.HandlerName)
	b = appendBytes(b, 3, m.Parameter)
	b = appendUint64(b, 4, m.InvokeTime)
	b = appendHeaders(b, 5, m.Headers)
	b = appendString(b, 6, m.Key)
	b = appendOptString(b, 7, m.IdempotencyKey)
	b = appendOptString(b, 8, m.Scope)
	b = appendOptString(b, 9, m.LimitKey)
	b = appendUint32(b, 10, m.InvocationIDNotificationIdx)
	return appendString(b, fieldName, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *OneWayCallCommand) Unmarshal(b []byte) error {
	*m = OneWayCallCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.ServiceName = r.string()
		case r.is(2, protowire.BytesType):
			m.HandlerName = r.string()
		case r.is(3, protowire.BytesType):
			m.Parameter = r.bytes()
		case r.is(4, protowire.VarintType):
			m.InvokeTime = r.uint64()
		case r.is(5, protowire.BytesType):
			m.Headers = r.header(m.Headers)
		case r.is(6, protowire.BytesType):
			m.Key = r.string()
		case r.is(7, protowire.BytesType):
			m.IdempotencyKey = r.ptrString()
		case r.is(8, protowire.BytesType):
			m.Scope = r.ptrString()
		case r.is(9, protowire.BytesType):
			m.LimitKey = r.ptrString()
		case r.is(10, protowire.VarintType):
			m.InvocationIDNotificationIdx = r.uint32()
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(OneWayCallCommandType, r.err)
}

// SendSignalCommand delivers a signal to another invocation (index 1 cancels it). The signal
// is addressed by SignalIdx or SignalName, and carries Void, Value or Failure.
type SendSignalCommand struct {
	TargetInvocationID string
	SignalIdx          *uint32
	SignalName         *string
	Void               bool
	Value              *Value
	Failure            *Failure
	Name               string // entry_name, field 12
}

// MessageType returns SendSignalCommandType.
func (*SendSignalCommand) MessageType() MessageType { return SendSignalCommandType }

// Marshal encodes the message payload. Within each oneof the first set member in declaration
// order wins (index over name; void over value over failure).
func (m *SendSignalCommand) Marshal() []byte {
	b := appendString(nil, 1, m.TargetInvocationID)
	switch {
	case m.SignalIdx != nil:
		b = appendOptUint32(b, 2, m.SignalIdx)
	case m.SignalName != nil:
		b = appendOptString(b, 3, m.SignalName)
	}
	b = appendVoidValueFailure(b, m.Void, m.Value, m.Failure)
	return appendString(b, fieldName, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *SendSignalCommand) Unmarshal(b []byte) error {
	*m = SendSignalCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.TargetInvocationID = r.string()
		case r.is(2, protowire.VarintType):
			m.SignalIdx, m.SignalName = r.ptrUint32(), nil
		case r.is(3, protowire.BytesType):
			m.SignalIdx, m.SignalName = nil, r.ptrString()
		case r.voidValueFailure(&m.Void, &m.Value, &m.Failure):
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(SendSignalCommandType, r.err)
}
