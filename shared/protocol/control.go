package protocol

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// StartMessage opens every attempt (runtime → SDK).
type StartMessage struct {
	ID                             []byte // raw invocation id (24 bytes)
	DebugID                        string // "inv_1…", what handler code sees
	KnownEntries                   uint32 // commands + notifications replayed after Start
	StateMap                       []StateEntry
	PartialState                   bool
	Key                            string
	RetryCountSinceLastStoredEntry uint32
	DurationSinceLastStoredEntry   uint64 // ms
	RandomSeed                     uint64 // V6
	Scope                          *string
	LimitKey                       *string
	IdempotencyKey                 *string
}

// StateEntry is one eager-state pair. An empty Value is an empty value, not a missing one.
type StateEntry struct {
	Key   []byte
	Value []byte
}

// MessageType returns StartMessageType.
func (*StartMessage) MessageType() MessageType { return StartMessageType }

// Marshal encodes the message payload.
func (m *StartMessage) Marshal() []byte {
	b := appendBytes(nil, 1, m.ID)
	b = appendString(b, 2, m.DebugID)
	b = appendUint32(b, 3, m.KnownEntries)
	for i := range m.StateMap {
		b = appendMessage(b, 4, m.StateMap[i].appendTo)
	}
	b = appendBool(b, 5, m.PartialState)
	b = appendString(b, 6, m.Key)
	b = appendUint32(b, 7, m.RetryCountSinceLastStoredEntry)
	b = appendUint64(b, 8, m.DurationSinceLastStoredEntry)
	b = appendUint64(b, 9, m.RandomSeed)
	b = appendOptString(b, 10, m.Scope)
	b = appendOptString(b, 11, m.LimitKey)
	return appendOptString(b, 12, m.IdempotencyKey)
}

// Unmarshal decodes a payload, replacing m.
func (m *StartMessage) Unmarshal(b []byte) error {
	*m = StartMessage{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.ID = r.bytes()
		case r.is(2, protowire.BytesType):
			m.DebugID = r.string()
		case r.is(3, protowire.VarintType):
			m.KnownEntries = r.uint32()
		case r.is(4, protowire.BytesType):
			var e StateEntry
			r.message(e.merge)
			m.StateMap = append(m.StateMap, e)
		case r.is(5, protowire.VarintType):
			m.PartialState = r.bool()
		case r.is(6, protowire.BytesType):
			m.Key = r.string()
		case r.is(7, protowire.VarintType):
			m.RetryCountSinceLastStoredEntry = r.uint32()
		case r.is(8, protowire.VarintType):
			m.DurationSinceLastStoredEntry = r.uint64()
		case r.is(9, protowire.VarintType):
			m.RandomSeed = r.uint64()
		case r.is(10, protowire.BytesType):
			m.Scope = r.ptrString()
		case r.is(11, protowire.BytesType):
			m.LimitKey = r.ptrString()
		case r.is(12, protowire.BytesType):
			m.IdempotencyKey = r.ptrString()
		default:
			r.skip()
		}
	}
	return wrapDecode(StartMessageType, r.err)
}

func (m *StateEntry) appendTo(b []byte) []byte {
	b = appendBytes(b, 1, m.Key)
	return appendBytes(b, 2, m.Value)
}

func (m *StateEntry) merge(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Key = r.bytes()
		case r.is(2, protowire.BytesType):
			m.Value = r.bytes()
		default:
			r.skip()
		}
	}
	return r.err
}

// CombinatorType says how a Future's children combine (V7).
type CombinatorType uint32

// Combinators; Unknown is treated as FirstCompleted.
const (
	CombinatorUnknown                   CombinatorType = 0
	CombinatorFirstCompleted            CombinatorType = 1
	CombinatorAllCompleted              CombinatorType = 2
	CombinatorFirstSucceededOrAllFailed CombinatorType = 3
	CombinatorAllSucceededOrFirstFailed CombinatorType = 4
)

// Future is a V7 await point: leaves are notification ids, inner nodes combine children.
type Future struct {
	WaitingCompletions  []uint32
	WaitingSignals      []uint32
	WaitingNamedSignals []string
	NestedFutures       []Future
	CombinatorType      CombinatorType
}

func (m *Future) appendTo(b []byte) []byte {
	b = appendPackedUint32(b, 1, m.WaitingCompletions)
	b = appendPackedUint32(b, 2, m.WaitingSignals)
	b = appendRepeatedString(b, 3, m.WaitingNamedSignals)
	for i := range m.NestedFutures {
		b = appendMessage(b, 4, m.NestedFutures[i].appendTo)
	}
	return appendUint32(b, 5, uint32(m.CombinatorType))
}

func (m *Future) merge(b []byte, depth int) error {
	if depth > maxNestingDepth {
		return fmt.Errorf("%w: %w", ErrMalformed, errTooDeep)
	}
	r := newFieldReader(b)
	for r.next() {
		var ok bool
		if m.WaitingCompletions, ok = r.repeatedUint32(1, m.WaitingCompletions); ok {
			continue
		}
		if m.WaitingSignals, ok = r.repeatedUint32(2, m.WaitingSignals); ok {
			continue
		}
		switch {
		case r.is(3, protowire.BytesType):
			m.WaitingNamedSignals = append(m.WaitingNamedSignals, r.string())
		case r.is(4, protowire.BytesType):
			var f Future
			r.message(func(b []byte) error { return f.merge(b, depth+1) })
			m.NestedFutures = append(m.NestedFutures, f)
		case r.is(5, protowire.VarintType):
			// Enums are open in proto3: unknown values are kept, not rejected.
			m.CombinatorType = CombinatorType(r.uint32())
		default:
			r.skip()
		}
	}
	return r.err
}

func (r *fieldReader) mergeFuture(dst **Future) {
	if *dst == nil {
		*dst = &Future{}
	}
	r.message(func(b []byte) error { return (*dst).merge(b, 1) })
}

// SuspensionMessage ends an attempt that waits for notifications (SDK → runtime). V5/V6 SDKs
// fill the flat lists; V7 SDKs fill AwaitingOn.
type SuspensionMessage struct {
	WaitingCompletions  []uint32
	WaitingSignals      []uint32
	WaitingNamedSignals []string
	AwaitingOn          *Future // V7
}

// MessageType returns SuspensionMessageType.
func (*SuspensionMessage) MessageType() MessageType { return SuspensionMessageType }

// Marshal encodes the message payload.
func (m *SuspensionMessage) Marshal() []byte {
	b := appendPackedUint32(nil, 1, m.WaitingCompletions)
	b = appendPackedUint32(b, 2, m.WaitingSignals)
	b = appendRepeatedString(b, 3, m.WaitingNamedSignals)
	if m.AwaitingOn != nil {
		b = appendMessage(b, 4, m.AwaitingOn.appendTo)
	}
	return b
}

// Unmarshal decodes a payload, replacing m.
func (m *SuspensionMessage) Unmarshal(b []byte) error {
	*m = SuspensionMessage{}
	r := newFieldReader(b)
	for r.next() {
		var ok bool
		if m.WaitingCompletions, ok = r.repeatedUint32(1, m.WaitingCompletions); ok {
			continue
		}
		if m.WaitingSignals, ok = r.repeatedUint32(2, m.WaitingSignals); ok {
			continue
		}
		switch {
		case r.is(3, protowire.BytesType):
			m.WaitingNamedSignals = append(m.WaitingNamedSignals, r.string())
		case r.is(4, protowire.BytesType):
			r.mergeFuture(&m.AwaitingOn)
		default:
			r.skip()
		}
	}
	return wrapDecode(SuspensionMessageType, r.err)
}

// ErrorBehavior tells the runtime what to do after a failed attempt (V7).
type ErrorBehavior uint32

// Error behaviours.
const (
	ErrorBehaviorRetry ErrorBehavior = 0
	ErrorBehaviorPause ErrorBehavior = 1
	ErrorBehaviorFail  ErrorBehavior = 2
)

// Reserved SDK error codes.
const (
	CodeJournalMismatch    uint32 = 570
	CodeProtocolViolation  uint32 = 571
	CodeAwaitingTwoResults uint32 = 572
	CodeUnsupportedFeature uint32 = 573
)

// ErrorMessage ends a failed attempt (SDK → runtime); the runtime retries.
type ErrorMessage struct {
	Code                uint32
	Message             string
	Stacktrace          string
	RelatedCommandIndex *uint32
	RelatedCommandName  *string
	RelatedCommandType  *uint32 // a MessageType code
	NextRetryDelay      *uint64 // ms, overrides the next retry delay only
	Behavior            ErrorBehavior
}

// MessageType returns ErrorMessageType.
func (*ErrorMessage) MessageType() MessageType { return ErrorMessageType }

// Marshal encodes the message payload.
func (m *ErrorMessage) Marshal() []byte {
	b := appendUint32(nil, 1, m.Code)
	b = appendString(b, 2, m.Message)
	b = appendString(b, 3, m.Stacktrace)
	b = appendOptUint32(b, 4, m.RelatedCommandIndex)
	b = appendOptString(b, 5, m.RelatedCommandName)
	b = appendOptUint32(b, 6, m.RelatedCommandType)
	b = appendOptUint64(b, 8, m.NextRetryDelay)
	return appendUint32(b, 9, uint32(m.Behavior))
}

// Unmarshal decodes a payload, replacing m.
func (m *ErrorMessage) Unmarshal(b []byte) error {
	*m = ErrorMessage{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.VarintType):
			m.Code = r.uint32()
		case r.is(2, protowire.BytesType):
			m.Message = r.string()
		case r.is(3, protowire.BytesType):
			m.Stacktrace = r.string()
		case r.is(4, protowire.VarintType):
			m.RelatedCommandIndex = r.ptrUint32()
		case r.is(5, protowire.BytesType):
			m.RelatedCommandName = r.ptrString()
		case r.is(6, protowire.VarintType):
			m.RelatedCommandType = r.ptrUint32()
		case r.is(8, protowire.VarintType):
			m.NextRetryDelay = r.ptrUint64()
		case r.is(9, protowire.VarintType):
			m.Behavior = ErrorBehavior(r.uint32())
		default:
			r.skip()
		}
	}
	return wrapDecode(ErrorMessageType, r.err)
}

// EndMessage ends a completed attempt (SDK → runtime).
type EndMessage struct{}

// MessageType returns EndMessageType.
func (*EndMessage) MessageType() MessageType { return EndMessageType }

// Marshal encodes the (empty) message payload.
func (*EndMessage) Marshal() []byte { return nil }

// Unmarshal validates a payload; every field is unknown and skipped.
func (*EndMessage) Unmarshal(b []byte) error {
	return wrapDecode(EndMessageType, mergeVoid(b))
}

// CommandAckMessage acknowledges a stored command. Shared-core SDKs treat it as a protocol
// error, so the runtime must not send it to them.
type CommandAckMessage struct {
	CommandIndex uint32
}

// MessageType returns CommandAckMessageType.
func (*CommandAckMessage) MessageType() MessageType { return CommandAckMessageType }

// Marshal encodes the message payload.
func (m *CommandAckMessage) Marshal() []byte { return appendUint32(nil, 1, m.CommandIndex) }

// Unmarshal decodes a payload, replacing m.
func (m *CommandAckMessage) Unmarshal(b []byte) error {
	*m = CommandAckMessage{}
	return wrapDecode(CommandAckMessageType, mergeSingleUint32(b, 1, &m.CommandIndex))
}

// ProposeRunCompletionMessage carries the result of a ctx.Run closure (SDK → runtime). The
// result oneof is value (raw bytes, not a Value wrapper) or failure; HasValue marks the value
// member present so that an empty result is still a result.
type ProposeRunCompletionMessage struct {
	ResultCompletionID uint32
	Value              []byte
	HasValue           bool
	Failure            *Failure
}

// MessageType returns ProposeRunCompletionMessageType.
func (*ProposeRunCompletionMessage) MessageType() MessageType {
	return ProposeRunCompletionMessageType
}

// Marshal encodes the message payload. If both result members are set, the value wins.
func (m *ProposeRunCompletionMessage) Marshal() []byte {
	b := appendUint32(nil, 1, m.ResultCompletionID)
	switch {
	case m.HasValue:
		b = appendBytesField(b, 14, m.Value)
	case m.Failure != nil:
		b = appendMessage(b, 15, m.Failure.appendTo)
	}
	return b
}

// Unmarshal decodes a payload, replacing m.
func (m *ProposeRunCompletionMessage) Unmarshal(b []byte) error {
	*m = ProposeRunCompletionMessage{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.VarintType):
			m.ResultCompletionID = r.uint32()
		case r.is(14, protowire.BytesType):
			m.Value, m.HasValue, m.Failure = r.bytes(), true, nil
		case r.is(15, protowire.BytesType):
			m.Value, m.HasValue = nil, false
			r.mergeFailure(&m.Failure)
		default:
			r.skip()
		}
	}
	return wrapDecode(ProposeRunCompletionMessageType, r.err)
}

// AwaitingOnMessage is a V7 hint of what the SDK is blocked on; the runtime may ignore it.
type AwaitingOnMessage struct {
	AwaitingOn           *Future
	ExecutingSideEffects bool
}

// MessageType returns AwaitingOnMessageType.
func (*AwaitingOnMessage) MessageType() MessageType { return AwaitingOnMessageType }

// Marshal encodes the message payload.
func (m *AwaitingOnMessage) Marshal() []byte {
	var b []byte
	if m.AwaitingOn != nil {
		b = appendMessage(b, 1, m.AwaitingOn.appendTo)
	}
	return appendBool(b, 2, m.ExecutingSideEffects)
}

// Unmarshal decodes a payload, replacing m.
func (m *AwaitingOnMessage) Unmarshal(b []byte) error {
	*m = AwaitingOnMessage{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			r.mergeFuture(&m.AwaitingOn)
		case r.is(2, protowire.VarintType):
			m.ExecutingSideEffects = r.bool()
		default:
			r.skip()
		}
	}
	return wrapDecode(AwaitingOnMessageType, r.err)
}

// ProposeRunCompletionAckMessage acknowledges a stored run result (V7, runtime → SDK) when the
// proposal carried RequestedAckFlag.
type ProposeRunCompletionAckMessage struct {
	CompletionID uint32
}

// MessageType returns ProposeRunCompletionAckMessageType.
func (*ProposeRunCompletionAckMessage) MessageType() MessageType {
	return ProposeRunCompletionAckMessageType
}

// Marshal encodes the message payload.
func (m *ProposeRunCompletionAckMessage) Marshal() []byte {
	return appendUint32(nil, 1, m.CompletionID)
}

// Unmarshal decodes a payload, replacing m.
func (m *ProposeRunCompletionAckMessage) Unmarshal(b []byte) error {
	*m = ProposeRunCompletionAckMessage{}
	return wrapDecode(ProposeRunCompletionAckMessageType, mergeSingleUint32(b, 1, &m.CompletionID))
}

func mergeSingleUint32(b []byte, num protowire.Number, dst *uint32) error {
	r := newFieldReader(b)
	for r.next() {
		if r.is(num, protowire.VarintType) {
			*dst = r.uint32()
		} else {
			r.skip()
		}
	}
	return r.err
}

func wrapDecode(t MessageType, err error) error {
	if err != nil {
		return fmt.Errorf("decode %s: %w", t, err)
	}
	return nil
}
