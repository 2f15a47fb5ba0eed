package protocol

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers shared by every command.
const (
	fieldResultCompletionID protowire.Number = 11
	fieldName               protowire.Number = 12
)

// InputCommand is always journal entry 0, written by the runtime: the request body and
// headers.
type InputCommand struct {
	Headers []Header
	Value   *Value
	Name    string
}

// MessageType returns InputCommandType.
func (*InputCommand) MessageType() MessageType { return InputCommandType }

// Marshal encodes the message payload.
func (m *InputCommand) Marshal() []byte {
	b := appendHeaders(nil, 1, m.Headers)
	b = appendString(b, fieldName, m.Name)
	return appendOptValue(b, 14, m.Value)
}

// Unmarshal decodes a payload, replacing m.
func (m *InputCommand) Unmarshal(b []byte) error {
	*m = InputCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.Headers = r.header(m.Headers)
		case r.is(14, protowire.BytesType):
			r.mergeValue(&m.Value)
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(InputCommandType, r.err)
}

// OutputCommand carries the handler's result: a value or a terminal failure.
type OutputCommand struct {
	Value   *Value
	Failure *Failure
	Name    string
}

// MessageType returns OutputCommandType.
func (*OutputCommand) MessageType() MessageType { return OutputCommandType }

// Marshal encodes the message payload. If both result members are set, the value wins.
func (m *OutputCommand) Marshal() []byte {
	b := appendString(nil, fieldName, m.Name)
	return appendValueOrFailure(b, 14, m.Value, 15, m.Failure)
}

// Unmarshal decodes a payload, replacing m.
func (m *OutputCommand) Unmarshal(b []byte) error {
	*m = OutputCommand{}
	r := newFieldReader(b)
	for r.next() {
		if r.valueOrFailure(14, &m.Value, 15, &m.Failure) {
			continue
		}
		if r.is(fieldName, protowire.BytesType) {
			m.Name = r.string()
		} else {
			r.skip()
		}
	}
	return wrapDecode(OutputCommandType, r.err)
}

// SleepCommand asks for a timer; answered by SleepCompletion at WakeUpTime.
type SleepCommand struct {
	WakeUpTime         uint64 // absolute, ms since the Unix epoch
	ResultCompletionID uint32
	Name               string
}

// MessageType returns SleepCommandType.
func (*SleepCommand) MessageType() MessageType { return SleepCommandType }

// Marshal encodes the message payload.
func (m *SleepCommand) Marshal() []byte {
	b := appendUint64(nil, 1, m.WakeUpTime)
	return appendCompletionAndName(b, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *SleepCommand) Unmarshal(b []byte) error {
	*m = SleepCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.VarintType):
			m.WakeUpTime = r.uint64()
		case r.completionOrName(&m.ResultCompletionID, &m.Name):
		default:
			r.skip()
		}
	}
	return wrapDecode(SleepCommandType, r.err)
}

// RunCommand records a ctx.Run; its result arrives as a ProposeRunCompletion and is
// journaled as a RunCompletion.
type RunCommand struct {
	ResultCompletionID uint32
	Name               string
}

// MessageType returns RunCommandType.
func (*RunCommand) MessageType() MessageType { return RunCommandType }

// Marshal encodes the message payload.
func (m *RunCommand) Marshal() []byte {
	return appendCompletionAndName(nil, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *RunCommand) Unmarshal(b []byte) error {
	*m = RunCommand{}
	return wrapDecode(RunCommandType, mergeCompletionOnly(b, &m.ResultCompletionID, &m.Name))
}

// Shared encode/decode fragments.

func appendCompletionAndName(b []byte, completionID uint32, name string) []byte {
	b = appendUint32(b, fieldResultCompletionID, completionID)
	return appendString(b, fieldName, name)
}

// completionOrName consumes result_completion_id or name if the current field is one of them.
func (r *fieldReader) completionOrName(completionID *uint32, name *string) bool {
	switch {
	case r.is(fieldResultCompletionID, protowire.VarintType):
		*completionID = r.uint32()
	case r.is(fieldName, protowire.BytesType):
		*name = r.string()
	default:
		return false
	}
	return true
}

func mergeCompletionOnly(b []byte, completionID *uint32, name *string) error {
	r := newFieldReader(b)
	for r.next() {
		if !r.completionOrName(completionID, name) {
			r.skip()
		}
	}
	return r.err
}

func mergeNameOnly(b []byte, name *string) error {
	r := newFieldReader(b)
	for r.next() {
		if r.is(fieldName, protowire.BytesType) {
			*name = r.string()
		} else {
			r.skip()
		}
	}
	return r.err
}

func appendKeyedCompletion(key string, completionID uint32, name string) []byte {
	b := appendString(nil, 1, key)
	return appendCompletionAndName(b, completionID, name)
}

func mergeKeyedCompletion(b []byte, key *string, completionID *uint32, name *string) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			*key = r.string()
		case r.completionOrName(completionID, name):
		default:
			r.skip()
		}
	}
	return r.err
}

func mergeTargeted(b []byte, t *InvocationTarget, completionID *uint32, name *string) error {
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.invocationTarget(t):
		case r.completionOrName(completionID, name):
		default:
			r.skip()
		}
	}
	return r.err
}

// appendValueOrFailure writes a {value, failure} oneof; the value wins if both are set.
func appendValueOrFailure(b []byte, valueNum protowire.Number, v *Value, failureNum protowire.Number, f *Failure) []byte {
	if v != nil {
		return appendOptValue(b, valueNum, v)
	}
	return appendOptFailure(b, failureNum, f)
}

// valueOrFailure consumes a {value, failure} oneof member if the current field is one.
func (r *fieldReader) valueOrFailure(valueNum protowire.Number, v **Value, failureNum protowire.Number, f **Failure) bool {
	switch {
	case r.is(valueNum, protowire.BytesType):
		*f = nil
		r.mergeValue(v)
	case r.is(failureNum, protowire.BytesType):
		*v = nil
		r.mergeFailure(f)
	default:
		return false
	}
	return true
}

// appendVoidValueFailure writes the {void=4, value=5, failure=6} oneof shared by SendSignal
// and notifications.
func appendVoidValueFailure(b []byte, void bool, v *Value, f *Failure) []byte {
	switch {
	case void:
		return appendEmptyMessage(b, 4)
	case v != nil:
		return appendOptValue(b, 5, v)
	}
	return appendOptFailure(b, 6, f)
}

func (r *fieldReader) voidValueFailure(void *bool, v **Value, f **Failure) bool {
	switch {
	case r.is(4, protowire.BytesType):
		*void, *v, *f = true, nil, nil
		r.message(mergeVoid)
	case r.is(5, protowire.BytesType):
		*void, *f = false, nil
		r.mergeValue(v)
	case r.is(6, protowire.BytesType):
		*void, *v = false, nil
		r.mergeFailure(f)
	default:
		return false
	}
	return true
}

// InputTraceContext returns the W3C trace context headers (traceparent, tracestate) of an
// InputCommand payload, decoding only its headers.
func InputTraceContext(payload []byte) (traceparent, tracestate string) {
	r := newFieldReader(payload)
	for r.next() {
		if !r.is(1, protowire.BytesType) {
			r.skip()
			continue
		}
		var h Header
		r.message(h.merge)
		switch h.Key {
		case "traceparent":
			traceparent = h.Value
		case "tracestate":
			tracestate = h.Value
		}
	}
	return traceparent, tracestate
}
