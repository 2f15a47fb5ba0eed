package protocol

import (
	"errors"
	"reflect"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// This test restates the protocol schema (PROTOCOL.md §1.4) as a protobuf descriptor and lets
// protobuf-go's reference implementation parse and re-encode every sample message, so the
// hand-written codec is checked against a real protobuf library, not only against itself.

type fieldOpt func(*descriptorpb.FieldDescriptorProto)

const schemaPackage = "dev.restate.service.protocol"

func fld(num int32, name string, typ descriptorpb.FieldDescriptorProto_Type, opts ...fieldOpt) *descriptorpb.FieldDescriptorProto {
	f := &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(name),
		Number: proto.Int32(num),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:   typ.Enum(),
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

func rep(f *descriptorpb.FieldDescriptorProto) {
	f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
}

func of(typeName string) fieldOpt {
	return func(f *descriptorpb.FieldDescriptorProto) {
		f.TypeName = proto.String("." + schemaPackage + "." + typeName)
	}
}

func inOneof(idx int32) fieldOpt {
	return func(f *descriptorpb.FieldDescriptorProto) { f.OneofIndex = proto.Int32(idx) }
}

// opt marks a proto3 `optional` field, which protobuf models as a synthetic oneof.
func opt(idx int32) fieldOpt {
	return func(f *descriptorpb.FieldDescriptorProto) {
		f.OneofIndex = proto.Int32(idx)
		f.Proto3Optional = proto.Bool(true)
	}
}

func msg(name string, oneofs []string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
	d := &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	for _, o := range oneofs {
		d.OneofDecl = append(d.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(o)})
	}
	return d
}

const (
	tU32   = descriptorpb.FieldDescriptorProto_TYPE_UINT32
	tU64   = descriptorpb.FieldDescriptorProto_TYPE_UINT64
	tBool  = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tStr   = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tMsg   = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	tEnum  = descriptorpb.FieldDescriptorProto_TYPE_ENUM
)

func protocolSchema(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	enum := func(name string, values ...string) *descriptorpb.EnumDescriptorProto {
		e := &descriptorpb.EnumDescriptorProto{Name: proto.String(name)}
		for i, v := range values {
			e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(v), Number: proto.Int32(int32(i))})
		}
		return e
	}
	name := fld(12, "name", tStr)
	cid := fld(11, "result_completion_id", tU32)
	target := []*descriptorpb.FieldDescriptorProto{
		fld(1, "invocation_id", tStr, inOneof(0)),
		fld(3, "idempotent_request_target", tMsg, of("IdempotentRequestTarget"), inOneof(0)),
		fld(4, "workflow_target", tMsg, of("WorkflowTarget"), inOneof(0)),
	}
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("gorestate_protocol_test.proto"),
		Package: proto.String(schemaPackage),
		Syntax:  proto.String("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{
			enum("CombinatorType", "COMBINATOR_TYPE_UNKNOWN", "FIRST_COMPLETED", "ALL_COMPLETED",
				"FIRST_SUCCEEDED_OR_ALL_FAILED", "ALL_SUCCEEDED_OR_FIRST_FAILED"),
			enum("ErrorBehavior", "RETRY", "PAUSE", "FAIL"),
		},
		MessageType: []*descriptorpb.DescriptorProto{
			msg("Value", nil, fld(1, "content", tBytes)),
			msg("Void", nil),
			msg("StateKeys", nil, fld(1, "keys", tBytes, rep)),
			msg("FailureMetadata", nil, fld(1, "key", tStr), fld(2, "value", tStr)),
			msg("Failure", nil, fld(1, "code", tU32), fld(2, "message", tStr), fld(3, "metadata", tMsg, of("FailureMetadata"), rep)),
			msg("Header", nil, fld(1, "key", tStr), fld(2, "value", tStr)),
			msg("WorkflowTarget", []string{"_scope"}, fld(1, "workflow_name", tStr), fld(2, "workflow_key", tStr), fld(3, "scope", tStr, opt(0))),
			msg("IdempotentRequestTarget", []string{"_service_key", "_scope"},
				fld(1, "service_name", tStr), fld(2, "service_key", tStr, opt(0)), fld(3, "handler_name", tStr),
				fld(4, "idempotency_key", tStr), fld(5, "scope", tStr, opt(1))),
			msg("StateEntry", nil, fld(1, "key", tBytes), fld(2, "value", tBytes)),
			msg("StartMessage", []string{"_scope", "_limit_key", "_idempotency_key"},
				fld(1, "id", tBytes), fld(2, "debug_id", tStr), fld(3, "known_entries", tU32),
				fld(4, "state_map", tMsg, of("StateEntry"), rep), fld(5, "partial_state", tBool), fld(6, "key", tStr),
				fld(7, "retry_count_since_last_stored_entry", tU32), fld(8, "duration_since_last_stored_entry", tU64),
				fld(9, "random_seed", tU64), fld(10, "scope", tStr, opt(0)), fld(11, "limit_key", tStr, opt(1)),
				fld(12, "idempotency_key", tStr, opt(2))),
			msg("Future", nil, fld(1, "waiting_completions", tU32, rep), fld(2, "waiting_signals", tU32, rep),
				fld(3, "waiting_named_signals", tStr, rep), fld(4, "nested_futures", tMsg, of("Future"), rep),
				fld(5, "combinator_type", tEnum, of("CombinatorType"))),
			// V5/V6 fields 1-3 and the V7 field 4 together, to check both layouts.
			msg("SuspensionMessage", nil, fld(1, "waiting_completions", tU32, rep), fld(2, "waiting_signals", tU32, rep),
				fld(3, "waiting_named_signals", tStr, rep), fld(4, "awaiting_on", tMsg, of("Future"))),
			msg("ErrorMessage", []string{"_related_command_index", "_related_command_name", "_related_command_type", "_next_retry_delay"},
				fld(1, "code", tU32), fld(2, "message", tStr), fld(3, "stacktrace", tStr),
				fld(4, "related_command_index", tU32, opt(0)), fld(5, "related_command_name", tStr, opt(1)),
				fld(6, "related_command_type", tU32, opt(2)), fld(8, "next_retry_delay", tU64, opt(3)),
				fld(9, "behavior", tEnum, of("ErrorBehavior"))),
			msg("EndMessage", nil),
			msg("CommandAckMessage", nil, fld(1, "command_index", tU32)),
			msg("ProposeRunCompletionMessage", []string{"result"}, fld(1, "result_completion_id", tU32),
				fld(14, "value", tBytes, inOneof(0)), fld(15, "failure", tMsg, of("Failure"), inOneof(0))),
			msg("AwaitingOnMessage", nil, fld(1, "awaiting_on", tMsg, of("Future")), fld(2, "executing_side_effects", tBool)),
			msg("ProposeRunCompletionAckMessage", nil, fld(1, "completion_id", tU32)),
			msg("NotificationTemplate", []string{"id", "result"},
				fld(1, "completion_id", tU32, inOneof(0)), fld(2, "signal_id", tU32, inOneof(0)), fld(3, "signal_name", tStr, inOneof(0)),
				fld(4, "void", tMsg, of("Void"), inOneof(1)), fld(5, "value", tMsg, of("Value"), inOneof(1)),
				fld(6, "failure", tMsg, of("Failure"), inOneof(1)), fld(16, "invocation_id", tStr, inOneof(1)),
				fld(17, "state_keys", tMsg, of("StateKeys"), inOneof(1))),
			msg("InputCommandMessage", nil, fld(1, "headers", tMsg, of("Header"), rep), name, fld(14, "value", tMsg, of("Value"))),
			msg("OutputCommandMessage", []string{"result"}, name,
				fld(14, "value", tMsg, of("Value"), inOneof(0)), fld(15, "failure", tMsg, of("Failure"), inOneof(0))),
			msg("GetLazyStateCommandMessage", nil, fld(1, "key", tBytes), cid, name),
			msg("SetStateCommandMessage", nil, fld(1, "key", tBytes), fld(3, "value", tMsg, of("Value")), name),
			msg("ClearStateCommandMessage", nil, fld(1, "key", tBytes), name),
			msg("ClearAllStateCommandMessage", nil, name),
			msg("GetLazyStateKeysCommandMessage", nil, cid, name),
			msg("GetEagerStateCommandMessage", []string{"result"}, fld(1, "key", tBytes), name,
				fld(13, "void", tMsg, of("Void"), inOneof(0)), fld(14, "value", tMsg, of("Value"), inOneof(0))),
			msg("GetEagerStateKeysCommandMessage", nil, name, fld(14, "value", tMsg, of("StateKeys"))),
			msg("GetPromiseCommandMessage", nil, fld(1, "key", tStr), cid, name),
			msg("PeekPromiseCommandMessage", nil, fld(1, "key", tStr), cid, name),
			msg("CompletePromiseCommandMessage", []string{"completion"}, fld(1, "key", tStr),
				fld(2, "completion_value", tMsg, of("Value"), inOneof(0)), fld(3, "completion_failure", tMsg, of("Failure"), inOneof(0)), cid, name),
			msg("SleepCommandMessage", nil, fld(1, "wake_up_time", tU64), cid, name),
			msg("CallCommandMessage", []string{"_idempotency_key", "_scope", "_limit_key"},
				fld(1, "service_name", tStr), fld(2, "handler_name", tStr), fld(3, "parameter", tBytes),
				fld(4, "headers", tMsg, of("Header"), rep), fld(5, "key", tStr), fld(6, "idempotency_key", tStr, opt(0)),
				fld(7, "scope", tStr, opt(1)), fld(8, "limit_key", tStr, opt(2)),
				fld(10, "invocation_id_notification_idx", tU32), cid, name),
			msg("OneWayCallCommandMessage", []string{"_idempotency_key", "_scope", "_limit_key"},
				fld(1, "service_name", tStr), fld(2, "handler_name", tStr), fld(3, "parameter", tBytes),
				fld(4, "invoke_time", tU64), fld(5, "headers", tMsg, of("Header"), rep), fld(6, "key", tStr),
				fld(7, "idempotency_key", tStr, opt(0)), fld(8, "scope", tStr, opt(1)), fld(9, "limit_key", tStr, opt(2)),
				fld(10, "invocation_id_notification_idx", tU32), name),
			msg("SendSignalCommandMessage", []string{"signal_id", "result"}, fld(1, "target_invocation_id", tStr),
				fld(2, "idx", tU32, inOneof(0)), fld(3, "name", tStr, inOneof(0)),
				fld(4, "void", tMsg, of("Void"), inOneof(1)), fld(5, "value", tMsg, of("Value"), inOneof(1)),
				fld(6, "failure", tMsg, of("Failure"), inOneof(1)), fld(12, "entry_name", tStr)),
			msg("RunCommandMessage", nil, cid, name),
			msg("AttachInvocationCommandMessage", []string{"target"}, append(append([]*descriptorpb.FieldDescriptorProto{}, target...), cid, name)...),
			msg("GetInvocationOutputCommandMessage", []string{"target"}, append(append([]*descriptorpb.FieldDescriptorProto{}, target...), cid, name)...),
			msg("CompleteAwakeableCommandMessage", []string{"result"}, fld(1, "awakeable_id", tStr),
				fld(2, "value", tMsg, of("Value"), inOneof(0)), fld(3, "failure", tMsg, of("Failure"), inOneof(0)), name),
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return fd
}

var referenceMessageNames = map[MessageType]string{
	StartMessageType: "StartMessage", SuspensionMessageType: "SuspensionMessage", ErrorMessageType: "ErrorMessage",
	EndMessageType: "EndMessage", CommandAckMessageType: "CommandAckMessage",
	ProposeRunCompletionMessageType: "ProposeRunCompletionMessage", AwaitingOnMessageType: "AwaitingOnMessage",
	ProposeRunCompletionAckMessageType: "ProposeRunCompletionAckMessage",
	InputCommandType:                   "InputCommandMessage", OutputCommandType: "OutputCommandMessage",
	GetLazyStateCommandType: "GetLazyStateCommandMessage", SetStateCommandType: "SetStateCommandMessage",
	ClearStateCommandType: "ClearStateCommandMessage", ClearAllStateCommandType: "ClearAllStateCommandMessage",
	GetLazyStateKeysCommandType: "GetLazyStateKeysCommandMessage", GetEagerStateCommandType: "GetEagerStateCommandMessage",
	GetEagerStateKeysCommandType: "GetEagerStateKeysCommandMessage", GetPromiseCommandType: "GetPromiseCommandMessage",
	PeekPromiseCommandType: "PeekPromiseCommandMessage", CompletePromiseCommandType: "CompletePromiseCommandMessage",
	SleepCommandType: "SleepCommandMessage", CallCommandType: "CallCommandMessage",
	OneWayCallCommandType: "OneWayCallCommandMessage", SendSignalCommandType: "SendSignalCommandMessage",
	RunCommandType: "RunCommandMessage", AttachInvocationCommandType: "AttachInvocationCommandMessage",
	GetInvocationOutputCommandType: "GetInvocationOutputCommandMessage",
	CompleteAwakeableCommandType:   "CompleteAwakeableCommandMessage",
}

// assertNoUnknown fails if the reference parser left any field of m unrecognised, which would
// mean our encoder used a field number or wire type the schema does not declare.
func assertNoUnknown(t *testing.T, m protoreflect.Message) {
	t.Helper()
	if u := m.GetUnknown(); len(u) > 0 {
		t.Fatalf("%s has unknown fields % x", m.Descriptor().FullName(), u)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			for i := 0; i < v.List().Len(); i++ {
				assertNoUnknown(t, v.List().Get(i).Message())
			}
		} else {
			assertNoUnknown(t, v.Message())
		}
		return true
	})
}

func TestCodecAgainstReferenceImplementation(t *testing.T) {
	t.Parallel()
	fd := protocolSchema(t)
	for _, tc := range allBodies() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name, ok := referenceMessageNames[tc.typ]
			if tc.typ.IsNotification() {
				name, ok = "NotificationTemplate", true
			}
			if !ok {
				t.Fatalf("no reference message for %s", tc.typ)
			}
			md := fd.Messages().ByName(protoreflect.Name(name))
			ours := tc.body.Marshal()

			ref := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(ours, ref); err != nil {
				t.Fatalf("reference parser rejects our encoding % x: %v", ours, err)
			}
			assertNoUnknown(t, ref)

			// protobuf-go orders oneof members after the other fields, so its bytes may differ
			// from ours in order only; compare by decoding them.
			theirs, err := proto.Marshal(ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(theirs) != len(ours) {
				t.Errorf("reference re-encoding has %d bytes, ours %d:\n ours   % x\n theirs % x", len(theirs), len(ours), ours, theirs)
			}
			back, _ := NewBody(tc.typ)
			if err := back.Unmarshal(theirs); err != nil {
				t.Fatalf("decoding the reference encoding: %v", err)
			}
			if !reflect.DeepEqual(back, tc.body) {
				t.Errorf("decoded reference encoding = %#v, want %#v", back, tc.body)
			}
		})
	}
}

func clearUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			for i := 0; i < v.List().Len(); i++ {
				clearUnknown(v.List().Get(i).Message())
			}
		} else {
			clearUnknown(v.Message())
		}
		return true
	})
}

// FuzzAgainstReference feeds the same bytes to our decoder and protobuf-go's: they must agree
// on validity, and on content (ignoring unknown fields, which we drop).
func FuzzAgainstReference(f *testing.F) {
	for _, tc := range allBodies() {
		f.Add(tc.body.Marshal())
	}
	f.Add([]byte{0x0a, 2, 0xff, 0xfe})
	f.Add([]byte{0x9b, 0x06, 0x08, 1, 0x9c, 0x06})
	f.Fuzz(func(t *testing.T, data []byte) {
		fd := protocolSchemaOnce(t)
		for _, typ := range allTypes() {
			name := referenceMessageNames[typ]
			if typ.IsNotification() {
				name = "NotificationTemplate"
			}
			ref := dynamicpb.NewMessage(fd.Messages().ByName(protoreflect.Name(name)))
			refErr := proto.Unmarshal(data, ref)
			ours, _ := NewBody(typ)
			ourErr := ours.Unmarshal(data)
			if errors.Is(ourErr, errTooDeep) {
				continue
			}
			if (ourErr == nil) != (refErr == nil) {
				t.Fatalf("%s: validity differs on % x: ours %v, reference %v", typ, data, ourErr, refErr)
			}
			if ourErr != nil {
				continue
			}
			clearUnknown(ref)
			fromOurs := dynamicpb.NewMessage(ref.Descriptor())
			if err := proto.Unmarshal(ours.Marshal(), fromOurs); err != nil {
				t.Fatalf("%s: reference rejects our re-encoding: %v", typ, err)
			}
			if !proto.Equal(ref, fromOurs) {
				t.Fatalf("%s: content differs on % x:\n reference %v\n ours      %v", typ, data, ref, fromOurs)
			}
		}
	})
}

var (
	schemaOnce sync.Once
	schemaFD   protoreflect.FileDescriptor
)

func protocolSchemaOnce(t *testing.T) protoreflect.FileDescriptor {
	schemaOnce.Do(func() { schemaFD = protocolSchema(t) })
	return schemaFD
}
