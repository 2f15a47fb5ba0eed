package protocol

import "google.golang.org/protobuf/encoding/protowire"

// InvocationTarget is the target oneof of Attach and GetInvocationOutput: exactly one member
// should be set.
type InvocationTarget struct {
	InvocationID      *string
	IdempotentRequest *IdempotentRequestTarget
	Workflow          *WorkflowTarget
}

// appendTo writes the first set member in declaration order.
func (t *InvocationTarget) appendTo(b []byte) []byte {
	switch {
	case t.InvocationID != nil:
		return appendOptString(b, 1, t.InvocationID)
	case t.IdempotentRequest != nil:
		return appendMessage(b, 3, t.IdempotentRequest.appendTo)
	case t.Workflow != nil:
		return appendMessage(b, 4, t.Workflow.appendTo)
	}
	return b
}

// invocationTarget consumes the current field if it is a target member; a new member
// replaces the previous one, a repeated message member merges into it.
func (r *fieldReader) invocationTarget(t *InvocationTarget) bool {
	switch {
	case r.is(1, protowire.BytesType):
		*t = InvocationTarget{InvocationID: r.ptrString()}
	case r.is(3, protowire.BytesType):
		if t.IdempotentRequest == nil {
			*t = InvocationTarget{IdempotentRequest: &IdempotentRequestTarget{}}
		}
		r.message(t.IdempotentRequest.merge)
	case r.is(4, protowire.BytesType):
		if t.Workflow == nil {
			*t = InvocationTarget{Workflow: &WorkflowTarget{}}
		}
		r.message(t.Workflow.merge)
	default:
		return false
	}
	return true
}

// AttachInvocationCommand waits for another invocation's result; answered by
// AttachInvocationCompletion.
type AttachInvocationCommand struct {
	Target             InvocationTarget
	ResultCompletionID uint32
	Name               string
}

// MessageType returns AttachInvocationCommandType.
func (*AttachInvocationCommand) MessageType() MessageType { return AttachInvocationCommandType }

// Marshal encodes the message payload.
func (m *AttachInvocationCommand) Marshal() []byte {
	b := m.Target.appendTo(nil)
	return appendCompletionAndName(b, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *AttachInvocationCommand) Unmarshal(b []byte) error {
	*m = AttachInvocationCommand{}
	return wrapDecode(AttachInvocationCommandType, mergeTargeted(b, &m.Target, &m.ResultCompletionID, &m.Name))
}

// GetInvocationOutputCommand reads another invocation's result without waiting; answered by
// GetInvocationOutputCompletion (void if not completed).
type GetInvocationOutputCommand struct {
	Target             InvocationTarget
	ResultCompletionID uint32
	Name               string
}

// MessageType returns GetInvocationOutputCommandType.
func (*GetInvocationOutputCommand) MessageType() MessageType {
	return GetInvocationOutputCommandType
}

// Marshal encodes the message payload.
func (m *GetInvocationOutputCommand) Marshal() []byte {
	b := m.Target.appendTo(nil)
	return appendCompletionAndName(b, m.ResultCompletionID, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *GetInvocationOutputCommand) Unmarshal(b []byte) error {
	*m = GetInvocationOutputCommand{}
	return wrapDecode(GetInvocationOutputCommandType, mergeTargeted(b, &m.Target, &m.ResultCompletionID, &m.Name))
}

// CompleteAwakeableCommand resolves or rejects an awakeable ("sign_1…" or legacy "prom_1…").
type CompleteAwakeableCommand struct {
	AwakeableID string
	Value       *Value
	Failure     *Failure
	Name        string
}

// MessageType returns CompleteAwakeableCommandType.
func (*CompleteAwakeableCommand) MessageType() MessageType { return CompleteAwakeableCommandType }

// Marshal encodes the message payload. If both result members are set, the value wins.
func (m *CompleteAwakeableCommand) Marshal() []byte {
	b := appendString(nil, 1, m.AwakeableID)
	b = appendValueOrFailure(b, 2, m.Value, 3, m.Failure)
	return appendString(b, fieldName, m.Name)
}

// Unmarshal decodes a payload, replacing m.
func (m *CompleteAwakeableCommand) Unmarshal(b []byte) error {
	*m = CompleteAwakeableCommand{}
	r := newFieldReader(b)
	for r.next() {
		switch {
		case r.is(1, protowire.BytesType):
			m.AwakeableID = r.string()
		case r.valueOrFailure(2, &m.Value, 3, &m.Failure):
		case r.is(fieldName, protowire.BytesType):
			m.Name = r.string()
		default:
			r.skip()
		}
	}
	return wrapDecode(CompleteAwakeableCommandType, r.err)
}
