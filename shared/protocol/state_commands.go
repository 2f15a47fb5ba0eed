package protocol

import "google.golang.org/protobuf/encoding/protowire"

// GetLazyStateCommand reads one state key; answered by GetLazyStateCompletion.
type GetLazyStateCommand struct {
	Key                []byte
	ResultCompletionID uint32
	Name               string
}

// MessageType returns GetLazyStateCommandType.
func (*GetLazyStateCommand) MessageType() MessageType { return GetLazyStateCommandType }

// Marshal encodes the message payload.
func (m *GetLazyStateCommand) Marshal() []byte {
	b := appendBytes(nil, 1, m.Key)
	return appendCompletionAndName(b, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *GetLazyStateCommand) Unmarshal(b []byte) error {
	*m = GetLazyStateCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Key = r.bytes()
		case r.completionOrName(&m.ResultCompletionID, &m.Name):
		default:
			r.skip()
		}
	}
	return wrapDecode(GetLazyStateCommandType, r.err)
}

// SetStateCommand writes one state key.
type SetStateCommand struct {
	Key   []byte
	Value *Value
	Name  string
}

// MessageType returns SetStateCommandType.
func (*SetStateCommand) MessageType() MessageType { return SetStateCommandType }

// Marshal encodes the message payload.
func (m *SetStateCommand) Marshal() []byte {
	b := appendBytes(nil, 1, m.Key)
	b = appendOptValue(b, 3, m.Value)
	return appendString(b, fieldName, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *SetStateCommand) Unmarshal(b []byte) error {
	*m = SetStateCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Key = r.bytes()
		case r.is(3, protowire.BytesType):
			r.mergeValue(&m.Value)
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(SetStateCommandType, r.err)
}

// ClearStateCommand deletes one state key.
type ClearStateCommand struct {
	Key  []byte
	Name string
}

// MessageType returns ClearStateCommandType.
func (*ClearStateCommand) MessageType() MessageType { return ClearStateCommandType }

// Marshal encodes the message payload.
func (m *ClearStateCommand) Marshal() []byte {
	b := appendBytes(nil, 1, m.Key)
	return appendString(b, fieldName, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *ClearStateCommand) Unmarshal(b []byte) error {
	*m = ClearStateCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Key = r.bytes()
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(ClearStateCommandType, r.err)
}

// ClearAllStateCommand deletes every state key of the object.
type ClearAllStateCommand struct {
	Name string
}

// MessageType returns ClearAllStateCommandType.
func (*ClearAllStateCommand) MessageType() MessageType { return ClearAllStateCommandType }

// Marshal encodes the message payload.
func (m *ClearAllStateCommand) Marshal() []byte { return appendString(nil, fieldName, m.Name) }

// Unmarshal decodes a payload, replacing m.
func (m *ClearAllStateCommand) Unmarshal(b []byte) error {
	*m = ClearAllStateCommand{}
	return wrapDecode(ClearAllStateCommandType, mergeNameOnly(b, &m.Name))
}

// GetLazyStateKeysCommand lists state keys; answered by GetLazyStateKeysCompletion.
type GetLazyStateKeysCommand struct {
	ResultCompletionID uint32
	Name               string
}

// MessageType returns GetLazyStateKeysCommandType.
func (*GetLazyStateKeysCommand) MessageType() MessageType { return GetLazyStateKeysCommandType }

// Marshal encodes the message payload.
func (m *GetLazyStateKeysCommand) Marshal() []byte {
	return appendCompletionAndName(nil, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *GetLazyStateKeysCommand) Unmarshal(b []byte) error {
	*m = GetLazyStateKeysCommand{}
	return wrapDecode(GetLazyStateKeysCommandType, mergeCompletionOnly(b, &m.ResultCompletionID, &m.Name))
}

// GetEagerStateCommand records a state read the SDK answered from StartMessage.state_map:
// Void (key absent) or Value.
type GetEagerStateCommand struct {
	Key   []byte
	Void  bool
	Value *Value
	Name  string
}

// MessageType returns GetEagerStateCommandType.
func (*GetEagerStateCommand) MessageType() MessageType { return GetEagerStateCommandType }

// Marshal encodes the message payload. If both result members are set, the value wins.
func (m *GetEagerStateCommand) Marshal() []byte {
	b := appendBytes(nil, 1, m.Key)
	b = appendString(b, fieldName, m.Name)
	switch {
	case m.Value != nil:
		b = appendMessage(b, 14, m.Value.appendTo)
	case m.Void:
		b = appendEmptyMessage(b, 13)
	}
	return b
}

// Unmarshal decodes a payload, replacing m.
func (m *GetEagerStateCommand) Unmarshal(b []byte) error {
	*m = GetEagerStateCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Key = r.bytes()
		case r.is(13, protowire.BytesType):
			m.Void, m.Value = true, nil
			r.message(mergeVoid)
		case r.is(14, protowire.BytesType):
			m.Void = false
			r.mergeValue(&m.Value)
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(GetEagerStateCommandType, r.err)
}

// GetEagerStateKeysCommand records a key listing the SDK answered from the eager state.
type GetEagerStateKeysCommand struct {
	Value *StateKeys
	Name  string
}

// MessageType returns GetEagerStateKeysCommandType.
func (*GetEagerStateKeysCommand) MessageType() MessageType { return GetEagerStateKeysCommandType }

// Marshal encodes the message payload.
func (m *GetEagerStateKeysCommand) Marshal() []byte {
	b := appendString(nil, fieldName, m.Name)
	if m.Value != nil {
		b = appendMessage(b, 14, m.Value.appendTo)
	}
	return b
}

// Unmarshal decodes a payload, replacing m.
func (m *GetEagerStateKeysCommand) Unmarshal(b []byte) error {
	*m = GetEagerStateKeysCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(14, protowire.BytesType):
			r.mergeStateKeys(&m.Value)
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(GetEagerStateKeysCommandType, r.err)
}
