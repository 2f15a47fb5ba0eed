package protocol

import "google.golang.org/protobuf/encoding/protowire"

// GetPromiseCommand waits for a workflow promise; answered by GetPromiseCompletion.
type GetPromiseCommand struct {
	Key                string
	ResultCompletionID uint32
	Name               string
}

// MessageType returns GetPromiseCommandType.
func (*GetPromiseCommand) MessageType() MessageType { return GetPromiseCommandType }

// Marshal encodes the message payload.
func (m *GetPromiseCommand) Marshal() []byte {
	return appendKeyedCompletion(m.Key, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *GetPromiseCommand) Unmarshal(b []byte) error {
	*m = GetPromiseCommand{}
	return wrapDecode(GetPromiseCommandType, mergeKeyedCompletion(b, &m.Key, &m.ResultCompletionID, &m.Name))
}

// PeekPromiseCommand reads a workflow promise without waiting; answered by
// PeekPromiseCompletion.
type PeekPromiseCommand struct {
	Key                string
	ResultCompletionID uint32
	Name               string
}

// MessageType returns PeekPromiseCommandType.
func (*PeekPromiseCommand) MessageType() MessageType { return PeekPromiseCommandType }

// Marshal encodes the message payload.
func (m *PeekPromiseCommand) Marshal() []byte {
	return appendKeyedCompletion(m.Key, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *PeekPromiseCommand) Unmarshal(b []byte) error {
	*m = PeekPromiseCommand{}
	return wrapDecode(PeekPromiseCommandType, mergeKeyedCompletion(b, &m.Key, &m.ResultCompletionID, &m.Name))
}

// CompletePromiseCommand resolves or rejects a workflow promise; answered by
// CompletePromiseCompletion (void, or a failure if already completed).
type CompletePromiseCommand struct {
	Key                string
	CompletionValue    *Value
	CompletionFailure  *Failure
	ResultCompletionID uint32
	Name               string
}

// MessageType returns CompletePromiseCommandType.
func (*CompletePromiseCommand) MessageType() MessageType { return CompletePromiseCommandType }

// Marshal encodes the message payload. If both completion members are set, the value wins.
func (m *CompletePromiseCommand) Marshal() []byte {
	b := appendString(nil, 1, m.Key)
	b = appendValueOrFailure(b, 2, m.CompletionValue, 3, m.CompletionFailure)
	return appendCompletionAndName(b, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *CompletePromiseCommand) Unmarshal(b []byte) error {
	*m = CompletePromiseCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Key = r.string()
		case r.valueOrFailure(2, &m.CompletionValue, 3, &m.CompletionFailure):
		case r.completionOrName(&m.ResultCompletionID, &m.Name):
		default:
			r.skip()
		}
	}
	return wrapDecode(CompletePromiseCommandType, r.err)
}
