package protocol

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// NotificationIDKind says which member of a notification's id oneof is set.
type NotificationIDKind uint8

// Notification id kinds.
const (
	NotificationIDUnset NotificationIDKind = iota
	NotificationIDCompletion
	NotificationIDSignal
	NotificationIDSignalName
)

// ResultKind says which member of a notification's result oneof is set.
type ResultKind uint8

// Result kinds.
const (
	ResultUnset ResultKind = iota
	ResultVoid
	ResultValue
	ResultFailure
	ResultInvocationID
	ResultStateKeys
)

// Notification is the single "duck type" every notification message shares (completions of
// commands and signals): an id oneof and a result oneof. The frame's MessageType says which
// notification it is; the payload layout is the same for all of them.
type Notification struct {
	Kind         NotificationIDKind
	CompletionID uint32 // Kind == NotificationIDCompletion
	SignalID     uint32 // Kind == NotificationIDSignal
	SignalName   string // Kind == NotificationIDSignalName

	Result       ResultKind
	Value        []byte   // Result == ResultValue (content of the Value wrapper)
	Failure      *Failure // Result == ResultFailure
	InvocationID string   // Result == ResultInvocationID
	StateKeys    [][]byte // Result == ResultStateKeys
}

// CompletionNotification returns a notification for completion id; set its result next.
func CompletionNotification(completionID uint32) *Notification {
	return &Notification{Kind: NotificationIDCompletion, CompletionID: completionID}
}

// SignalNotification returns a notification for an unnamed signal (1 = cancel).
func SignalNotification(signalID uint32) *Notification {
	return &Notification{Kind: NotificationIDSignal, SignalID: signalID}
}

// NamedSignalNotification returns a notification for a named signal.
func NamedSignalNotification(name string) *Notification {
	return &Notification{Kind: NotificationIDSignalName, SignalName: name}
}

// WithVoid sets a void result and returns n.
func (n *Notification) WithVoid() *Notification {
	n.clearResult()
	n.Result = ResultVoid
	return n
}

// WithValue sets a value result (empty content is still a value) and returns n.
func (n *Notification) WithValue(content []byte) *Notification {
	n.clearResult()
	n.Result, n.Value = ResultValue, content
	return n
}

// WithFailure sets a failure result and returns n.
func (n *Notification) WithFailure(f Failure) *Notification {
	n.clearResult()
	n.Result, n.Failure = ResultFailure, &f
	return n
}

// WithInvocationID sets an invocation-id result (CallInvocationIdCompletion) and returns n.
func (n *Notification) WithInvocationID(id string) *Notification {
	n.clearResult()
	n.Result, n.InvocationID = ResultInvocationID, id
	return n
}

// WithStateKeys sets a state-keys result (GetLazyStateKeysCompletion) and returns n.
func (n *Notification) WithStateKeys(keys [][]byte) *Notification {
	n.clearResult()
	n.Result, n.StateKeys = ResultStateKeys, keys
	return n
}

func (n *Notification) clearResult() {
	n.Result, n.Value, n.Failure, n.InvocationID, n.StateKeys = ResultUnset, nil, nil, "", nil
}

// Marshal encodes the notification payload. Oneof members are written whenever their kind is
// set, even with zero values: a completion id 0 or an empty value is still present.
func (n *Notification) Marshal() []byte {
	var b []byte
	switch n.Kind {
	case NotificationIDCompletion:
		b = appendVarintField(b, 1, uint64(n.CompletionID))
	case NotificationIDSignal:
		b = appendVarintField(b, 2, uint64(n.SignalID))
	case NotificationIDSignalName:
		b = appendStringField(b, 3, n.SignalName)
	}
	switch n.Result {
	case ResultVoid:
		b = appendEmptyMessage(b, 4)
	case ResultValue:
		b = appendBytesField(b, 5, appendBytes(nil, 1, n.Value))
	case ResultFailure:
		f := n.Failure
		if f == nil {
			f = &Failure{}
		}
		b = appendMessage(b, 6, f.appendTo)
	case ResultInvocationID:
		b = appendStringField(b, 16, n.InvocationID)
	case ResultStateKeys:
		keys := StateKeys{Keys: n.StateKeys}
		b = appendMessage(b, 17, keys.appendTo)
	}
	return b
}

// Unmarshal decodes a notification payload of any notification type, replacing n.
func (n *Notification) Unmarshal(b []byte) error {
	*n = Notification{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.VarintType):
			n.setID(NotificationIDCompletion)
			n.CompletionID = r.uint32()
		case r.is(2, protowire.VarintType):
			n.setID(NotificationIDSignal)
			n.SignalID = r.uint32()
		case r.is(3, protowire.BytesType):
			n.setID(NotificationIDSignalName)
			n.SignalName = r.string()
		case r.is(4, protowire.BytesType):
			n.clearResult()
			n.Result = ResultVoid
			r.message(mergeVoid)
		case r.is(5, protowire.BytesType):
			if n.Result != ResultValue {
				n.clearResult()
				n.Result = ResultValue
			}
			v := Value{Content: n.Value}
			r.message(v.merge)
			n.Value = v.Content
		case r.is(6, protowire.BytesType):
			if n.Result != ResultFailure {
				n.clearResult()
				n.Result = ResultFailure
			}
			r.mergeFailure(&n.Failure)
		case r.is(16, protowire.BytesType):
			n.clearResult()
			n.Result, n.InvocationID = ResultInvocationID, r.string()
		case r.is(17, protowire.BytesType):
			if n.Result != ResultStateKeys {
				n.clearResult()
				n.Result = ResultStateKeys
			}
			keys := StateKeys{Keys: n.StateKeys}
			r.message(keys.merge)
			n.StateKeys = keys.Keys
		default:
			r.skip()
		}
	}
	if r.err != nil {
		return fmt.Errorf("decode notification: %w", r.err)
	}
	return nil
}

func (n *Notification) setID(kind NotificationIDKind) {
	n.Kind, n.CompletionID, n.SignalID, n.SignalName = kind, 0, 0, ""
}

// NotificationMessage frames n as a notification of type t.
func NotificationMessage(t MessageType, n *Notification) Message {
	return Message{Type: t, Payload: n.Marshal()}
}
