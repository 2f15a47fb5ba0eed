package protocol

import "google.golang.org/protobuf/encoding/protowire"

// Value is a payload wrapper (message Value{content=1}). As a sub-message its presence is
// meaningful: a present empty Value is the empty payload, an absent one is "no value".
type Value struct {
	Content []byte
}

// NewValue wraps content; the result is always present, even for empty content.
func NewValue(content []byte) *Value { return &Value{Content: content} }

func (m *Value) appendTo(b []byte) []byte { return appendBytes(b, 1, m.Content) }

func (m *Value) merge(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		if r.is(1, protowire.BytesType) {
			m.Content = r.bytes()
		} else {
			r.skip()
		}
	}
	return r.err
}

// Failure is a user-visible error: an HTTP-like code and message, plus metadata since V6.
type Failure struct {
	Code     uint32
	Message  string
	Metadata []FailureMetadata
}

// FailureMetadata is one key/value pair attached to a Failure.
type FailureMetadata struct {
	Key   string
	Value string
}

// Marshal encodes the failure as a standalone protobuf message.
func (m *Failure) Marshal() []byte { return m.appendTo(nil) }

// Unmarshal decodes a standalone Failure message.
func (m *Failure) Unmarshal(b []byte) error {
	*m = Failure{}
	return m.merge(b)
}

func (m *Failure) appendTo(b []byte) []byte {
	b = appendUint32(b, 1, m.Code)
	b = appendString(b, 2, m.Message)
	for i := range m.Metadata {
		b = appendMessage(b, 3, m.Metadata[i].appendTo)
	}
	return b
}

func (m *Failure) merge(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.VarintType):
			m.Code = r.uint32()
		case r.is(2, protowire.BytesType):
			m.Message = r.string()
		case r.is(3, protowire.BytesType):
			var md FailureMetadata
			r.message(md.merge)
			m.Metadata = append(m.Metadata, md)
		default:
			r.skip()
		}
	}
	return r.err
}

func (m *FailureMetadata) appendTo(b []byte) []byte {
	b = appendString(b, 1, m.Key)
	return appendString(b, 2, m.Value)
}

func (m *FailureMetadata) merge(b []byte) error {
	return mergeKeyValue(b, &m.Key, &m.Value)
}

// Header is an HTTP-like header carried by Input and Call commands.
type Header struct {
	Key   string
	Value string
}

func (m *Header) appendTo(b []byte) []byte {
	b = appendString(b, 1, m.Key)
	return appendString(b, 2, m.Value)
}

func (m *Header) merge(b []byte) error {
	return mergeKeyValue(b, &m.Key, &m.Value)
}

func mergeKeyValue(b []byte, key, value *string) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			*key = r.string()
		case r.is(2, protowire.BytesType):
			*value = r.string()
		default:
			r.skip()
		}
	}
	return r.err
}

func appendHeaders(b []byte, num protowire.Number, hs []Header) []byte {
	for i := range hs {
		b = appendMessage(b, num, hs[i].appendTo)
	}
	return b
}

func (r *fieldReader) header(dst []Header) []Header {
	var h Header
	r.message(h.merge)
	return append(dst, h)
}

// StateKeys lists state keys (message StateKeys{keys=1}).
type StateKeys struct {
	Keys [][]byte
}

func (m *StateKeys) appendTo(b []byte) []byte {
	for _, k := range m.Keys {
		// Repeated elements are always written, even when empty.
		b = appendBytesField(b, 1, k)
	}
	return b
}

func (m *StateKeys) merge(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		if r.is(1, protowire.BytesType) {
			m.Keys = append(m.Keys, r.bytes())
		} else {
			r.skip()
		}
	}
	return r.err
}

// WorkflowTarget addresses a workflow's run invocation by name and key.
type WorkflowTarget struct {
	WorkflowName string
	WorkflowKey  string
	Scope        *string // V7
}

func (m *WorkflowTarget) appendTo(b []byte) []byte {
	b = appendString(b, 1, m.WorkflowName)
	b = appendString(b, 2, m.WorkflowKey)
	return appendOptString(b, 3, m.Scope)
}

func (m *WorkflowTarget) merge(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.WorkflowName = r.string()
		case r.is(2, protowire.BytesType):
			m.WorkflowKey = r.string()
		case r.is(3, protowire.BytesType):
			m.Scope = r.ptrString()
		default:
			r.skip()
		}
	}
	return r.err
}

// IdempotentRequestTarget addresses an invocation by its idempotency key.
type IdempotentRequestTarget struct {
	ServiceName    string
	ServiceKey     *string
	HandlerName    string
	IdempotencyKey string
	Scope          *string // V7
}

func (m *IdempotentRequestTarget) appendTo(b []byte) []byte {
	b = appendString(b, 1, m.ServiceName)
	b = appendOptString(b, 2, m.ServiceKey)
	b = appendString(b, 3, m.HandlerName)
	b = appendString(b, 4, m.IdempotencyKey)
	return appendOptString(b, 5, m.Scope)
}

func (m *IdempotentRequestTarget) merge(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.ServiceName = r.string()
		case r.is(2, protowire.BytesType):
			m.ServiceKey = r.ptrString()
		case r.is(3, protowire.BytesType):
			m.HandlerName = r.string()
		case r.is(4, protowire.BytesType):
			m.IdempotencyKey = r.string()
		case r.is(5, protowire.BytesType):
			m.Scope = r.ptrString()
		default:
			r.skip()
		}
	}
	return r.err
}

// Oneof decoding helpers: a oneof member replaces whichever member was set before, while a
// repeated occurrence of the same message member merges into it, as protobuf specifies.

func (r *fieldReader) mergeValue(dst **Value) {
	if *dst == nil {
		*dst = &Value{}
	}
	r.message((*dst).merge)
}

func (r *fieldReader) mergeFailure(dst **Failure) {
	if *dst == nil {
		*dst = &Failure{}
	}
	r.message((*dst).merge)
}

func (r *fieldReader) mergeStateKeys(dst **StateKeys) {
	if *dst == nil {
		*dst = &StateKeys{}
	}
	r.message((*dst).merge)
}

// appendOptValue writes a present Value, even an empty one.
func appendOptValue(b []byte, num protowire.Number, v *Value) []byte {
	if v == nil {
		return b
	}
	return appendMessage(b, num, v.appendTo)
}

func appendOptFailure(b []byte, num protowire.Number, f *Failure) []byte {
	if f == nil {
		return b
	}
	return appendMessage(b, num, f.appendTo)
}

// mergeVoid validates a Void sub-message, whose fields are all unknown to us.
func mergeVoid(b []byte) error {
	r := newFieldReader(b)
	for r.next() {
		r.skip()
	}
	return r.err
}
