package logrecord

import (
	"encoding/binary"
	"fmt"

	"gorestate.dev/shared/bincodec"
)

// The binary encoding of a record: every state change goes through the log, so encoding
// and decoding records is on every invocation's path, and JSON (with payloads in base64)
// made records a third larger and cost a few percent of the server's CPU. Layout:
//
//	version u8 (binaryV1) | kind u8 | epoch uvarint | time varint
//	| dedup: 0, or 1 then producer and seq (uvarints) | the body of the kind
//
// with the fields of each body in declaration order (see appendBody); strings and byte
// slices are a uvarint length and the bytes, optional parts a presence byte. Only the body
// that the kind names is encoded. Records that earlier versions wrote as JSON (a '{' first)
// are still decoded; see KindBinaryFormat for how earlier versions are kept from skipping
// binary records.
//
// Version 2 (binaryV2) differs only in the entries of an invoker effect, which carry a trace
// context after their call retention; it is written only for effects that have one.
// Version 3 (binaryV3) adds each entry's CallUUID after the trace context; it is written
// only for effects that have one.
const (
	binaryV1 = 1
	binaryV2 = 2
	binaryV3 = 3
)

// effectVersion is the oldest encoding that carries everything of an effect.
func effectVersion(x *InvokerEffect) byte {
	v := byte(binaryV1)
	for _, e := range x.Entries {
		if len(e.CallUUID) > 0 {
			return binaryV3
		}
		if e.TraceParent != "" || e.TraceState != "" {
			v = binaryV2
		}
	}
	return v
}

func encodeBinary(r *Record) ([]byte, error) {
	b := make([]byte, 0, 64)
	version := byte(binaryV1)
	if r.Kind == KindInvokerEffect && r.InvokerEffect != nil {
		version = effectVersion(r.InvokerEffect)
	}
	b = append(b, version, byte(r.Kind))
	b = binary.AppendUvarint(b, r.Epoch)
	b = binary.AppendVarint(b, r.Time)
	if d := r.Dedup; d == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(d.Producer))
		b = binary.AppendUvarint(b, d.Seq)
	}
	return appendBody(b, r, version)
}

func appendBody(b []byte, r *Record, version byte) ([]byte, error) {
	missing := false
	switch r.Kind {
	case KindAnnounceLeader:
		if x := r.AnnounceLeader; x != nil {
			b = binary.AppendUvarint(b, uint64(x.NodeID))
			b = bincodec.AppendString(b, x.Node)
		} else {
			missing = true
		}
	case KindInvoke:
		if x := r.Invoke; x != nil {
			b = appendInvoke(b, x)
		} else {
			missing = true
		}
	case KindInvokerEffect:
		if x := r.InvokerEffect; x != nil {
			b = appendEffect(b, x, version)
		} else {
			missing = true
		}
	case KindTimerFired:
		if x := r.TimerFired; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = append(b, byte(x.Kind))
			b = binary.AppendUvarint(b, uint64(x.CompletionID))
			b = binary.AppendVarint(b, x.WakeAt)
			b = binary.AppendVarint(b, x.InvocationCreatedAt)
		} else {
			missing = true
		}
	case KindInvocationResult:
		if x := r.InvocationResult; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = binary.AppendUvarint(b, uint64(x.CompletionID))
			b = bincodec.AppendBytes(b, x.Value)
			b = bincodec.AppendBool(b, x.Failed)
			b = binary.AppendUvarint(b, uint64(x.FailureCode))
			b = bincodec.AppendString(b, x.FailureMsg)
			b = binary.AppendUvarint(b, uint64(x.NotificationType))
			b = bincodec.AppendBool(b, x.Void)
		} else {
			missing = true
		}
	case KindTruncateOutbox:
		if x := r.TruncateOutbox; x != nil {
			b = binary.AppendUvarint(b, x.Seq)
		} else {
			missing = true
		}
	case KindSignal:
		if x := r.Signal; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = binary.AppendUvarint(b, uint64(x.SignalID))
			b = bincodec.AppendString(b, x.SignalName)
			b = bincodec.AppendBytes(b, x.Value)
			b = bincodec.AppendBool(b, x.Failed)
			b = binary.AppendUvarint(b, uint64(x.FailureCode))
			b = bincodec.AppendString(b, x.FailureMsg)
		} else {
			missing = true
		}
	case KindManage:
		if x := r.Manage; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = bincodec.AppendString(b, string(x.Op))
			b = binary.AppendUvarint(b, x.RequestID)
		} else {
			missing = true
		}
	case KindAttach:
		if x := r.Attach; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = AppendCaller(b, x.Caller)
			b = bincodec.AppendBool(b, x.Wait)
		} else {
			missing = true
		}
	case KindPatchState:
		if x := r.PatchState; x != nil {
			b = AppendPatchState(b, x)
		} else {
			missing = true
		}
	case KindRestartAsNew:
		if x := r.RestartAsNew; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = bincodec.AppendBytes(b, x.NewInvocationID)
			b = binary.AppendUvarint(b, uint64(x.From))
			b = bincodec.AppendString(b, x.DeploymentID)
			b = binary.AppendUvarint(b, x.RequestID)
		} else {
			missing = true
		}
	case KindJournalEvent:
		if x := r.JournalEvent; x != nil {
			b = bincodec.AppendBytes(b, x.InvocationID)
			b = append(b, byte(x.Type))
			b = binary.AppendUvarint(b, uint64(x.Attempt))
			b = AppendEventFailure(b, x.Failure)
		} else {
			missing = true
		}
	case KindExpire, KindBinaryFormat, KindTraceFormat, KindCalleeFormat, KindManageFormat, KindEventsFormat:
	default:
		return nil, fmt.Errorf("encode record: %w %d", ErrUnknownKind, r.Kind)
	}
	if missing {
		return nil, fmt.Errorf("encode record: kind %d without its body", r.Kind)
	}
	return b, nil
}

func appendInvoke(b []byte, x *Invoke) []byte {
	b = bincodec.AppendBytes(b, x.InvocationID)
	b = AppendTarget(b, x.Target)
	b = bincodec.AppendBytes(b, x.Input)
	b = binary.AppendUvarint(b, uint64(len(x.Headers)))
	for _, h := range x.Headers {
		b = bincodec.AppendString(b, h.Key)
		b = bincodec.AppendString(b, h.Value)
	}
	b = bincodec.AppendString(b, x.IdempotencyKey)
	b = binary.AppendUvarint(b, x.RequestID)
	b = bincodec.AppendBool(b, x.Send)
	if x.Caller == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = AppendCaller(b, *x.Caller)
	}
	b = binary.AppendVarint(b, x.ExecutionTime)
	b = binary.AppendVarint(b, x.CompletionRetentionMs)
	b = binary.AppendVarint(b, x.JournalRetentionMs)
	return bincodec.AppendString(b, x.InvokedBy)
}

func appendEffect(b []byte, x *InvokerEffect, version byte) []byte {
	b = bincodec.AppendBytes(b, x.InvocationID)
	b = binary.AppendUvarint(b, uint64(len(x.Entries)))
	for _, e := range x.Entries {
		b = binary.AppendUvarint(b, uint64(e.Type))
		b = binary.AppendUvarint(b, uint64(e.Flags))
		b = bincodec.AppendBytes(b, e.Payload)
		if e.CallTarget == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = AppendTarget(b, *e.CallTarget)
		}
		if e.CallRetention == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = binary.AppendVarint(b, e.CallRetention.CompletionMs)
			b = binary.AppendVarint(b, e.CallRetention.JournalMs)
		}
		if version >= binaryV2 {
			b = bincodec.AppendString(b, e.TraceParent)
			b = bincodec.AppendString(b, e.TraceState)
		}
		if version >= binaryV3 {
			b = bincodec.AppendBytes(b, e.CallUUID)
		}
	}
	b = append(b, byte(x.Kind))
	b = bincodec.AppendU32s(b, x.WaitingCompletions)
	b = bincodec.AppendU32s(b, x.WaitingSignals)
	b = bincodec.AppendStrings(b, x.WaitingNames)
	b = binary.AppendUvarint(b, uint64(x.FailureCode))
	b = bincodec.AppendString(b, x.FailureMessage)
	b = binary.AppendUvarint(b, uint64(x.Attempt))
	b = bincodec.AppendString(b, x.DeploymentID)
	return binary.AppendUvarint(b, uint64(x.ProtocolVersion))
}

// AppendTarget appends t's five strings.
func AppendTarget(b []byte, t Target) []byte {
	for _, s := range []string{t.Service, t.Handler, t.Key, t.ServiceType, t.HandlerType} {
		b = bincodec.AppendString(b, s)
	}
	return b
}

// ReadTarget reads what AppendTarget wrote.
func ReadTarget(r *bincodec.Reader) Target {
	return Target{Service: r.String(), Handler: r.String(), Key: r.String(), ServiceType: r.String(), HandlerType: r.String()}
}

// AppendCaller appends c.
func AppendCaller(b []byte, c Caller) []byte {
	b = bincodec.AppendBytes(b, c.InvocationID)
	b = binary.AppendUvarint(b, uint64(c.CompletionID))
	return binary.AppendUvarint(b, uint64(c.NotificationType))
}

// AppendPatchState appends the binary form of a state patch (also how an object's inbox
// keeps one while it waits for the lock).
func AppendPatchState(b []byte, x *PatchState) []byte {
	b = bincodec.AppendString(b, x.Service)
	b = bincodec.AppendString(b, x.Key)
	b = bincodec.AppendBool(b, x.Version != nil)
	if x.Version != nil {
		b = bincodec.AppendString(b, *x.Version)
	}
	b = binary.AppendUvarint(b, uint64(len(x.State)))
	for _, e := range x.State {
		b = bincodec.AppendBytes(b, e.Key)
		b = bincodec.AppendBytes(b, e.Value)
	}
	return b
}

// ReadPatchState reads what AppendPatchState wrote.
func ReadPatchState(r *bincodec.Reader) *PatchState {
	x := &PatchState{Service: r.String(), Key: r.String()}
	if r.Bool() {
		v := r.String()
		x.Version = &v
	}
	if n := r.Count(); n > 0 {
		x.State = make([]StateEntry, n)
		for i := range x.State {
			x.State[i] = StateEntry{Key: r.Bytes(), Value: r.Bytes()}
		}
	}
	return x
}

// AppendEventFailure appends the binary form of an optional event failure (also how the
// partition store keeps it): a presence byte, then the fields in declaration order, each
// optional one after a presence byte of its own.
func AppendEventFailure(b []byte, f *EventFailure) []byte {
	b = bincodec.AppendBool(b, f != nil)
	if f == nil {
		return b
	}
	b = binary.AppendUvarint(b, uint64(f.Code))
	b = bincodec.AppendString(b, f.Message)
	b = bincodec.AppendString(b, f.Stacktrace)
	b = bincodec.AppendString(b, f.DocCode)
	b = bincodec.AppendBool(b, f.RelatedIndex != nil)
	if f.RelatedIndex != nil {
		b = binary.AppendUvarint(b, uint64(*f.RelatedIndex))
	}
	b = bincodec.AppendBool(b, f.RelatedName != nil)
	if f.RelatedName != nil {
		b = bincodec.AppendString(b, *f.RelatedName)
	}
	b = bincodec.AppendBool(b, f.RelatedType != nil)
	if f.RelatedType != nil {
		b = binary.AppendUvarint(b, uint64(*f.RelatedType))
	}
	return b
}

// ReadEventFailure reads what AppendEventFailure wrote.
func ReadEventFailure(r *bincodec.Reader) *EventFailure {
	if !r.Bool() {
		return nil
	}
	f := &EventFailure{Code: r.U32(), Message: r.String(), Stacktrace: r.String(), DocCode: r.String()}
	if r.Bool() {
		v := r.U32()
		f.RelatedIndex = &v
	}
	if r.Bool() {
		v := r.String()
		f.RelatedName = &v
	}
	if r.Bool() {
		v := r.U32()
		f.RelatedType = &v
	}
	return f
}

// ReadCaller reads what AppendCaller wrote.
func ReadCaller(r *bincodec.Reader) Caller {
	return Caller{InvocationID: r.Bytes(), CompletionID: r.U32(), NotificationType: r.U16()}
}

func decodeBinary(b []byte) (*Record, error) {
	version := b[0]
	r := &bincodec.Reader{B: b[1:]}
	rec := &Record{Kind: Kind(r.Byte()), Epoch: r.Uvarint(), Time: r.Varint()}
	switch r.Byte() {
	case 0:
	case 1:
		rec.Dedup = &Dedup{Producer: r.U32(), Seq: r.Uvarint()}
	default:
		r.Fail()
	}
	if r.Err != nil {
		return nil, fmt.Errorf("decode record: %w", r.Err)
	}
	if version != binaryV1 && rec.Kind != KindInvokerEffect {
		return nil, fmt.Errorf("decode record: kind %d in binary encoding %d, which only effects use", rec.Kind, version)
	}
	switch rec.Kind {
	case KindAnnounceLeader:
		rec.AnnounceLeader = &AnnounceLeader{NodeID: r.U32(), Node: r.String()}
	case KindInvoke:
		rec.Invoke = readInvoke(r)
	case KindInvokerEffect:
		rec.InvokerEffect = readEffect(r, version)
	case KindTimerFired:
		rec.TimerFired = &TimerFired{InvocationID: r.Bytes(), Kind: TimerKind(r.Byte()), CompletionID: r.U32(), WakeAt: r.Varint(), InvocationCreatedAt: r.Varint()}
	case KindInvocationResult:
		rec.InvocationResult = &InvocationResult{InvocationID: r.Bytes(), CompletionID: r.U32(), Value: r.Bytes(), Failed: r.Bool(),
			FailureCode: r.U32(), FailureMsg: r.String(), NotificationType: r.U16(), Void: r.Bool()}
	case KindTruncateOutbox:
		rec.TruncateOutbox = &TruncateOutbox{Seq: r.Uvarint()}
	case KindSignal:
		rec.Signal = &Signal{InvocationID: r.Bytes(), SignalID: r.U32(), SignalName: r.String(), Value: r.Bytes(), Failed: r.Bool(),
			FailureCode: r.U32(), FailureMsg: r.String()}
	case KindManage:
		rec.Manage = &Manage{InvocationID: r.Bytes(), Op: ManageOp(r.String()), RequestID: r.Uvarint()}
	case KindAttach:
		rec.Attach = &Attach{InvocationID: r.Bytes(), Caller: ReadCaller(r), Wait: r.Bool()}
	case KindPatchState:
		rec.PatchState = ReadPatchState(r)
	case KindRestartAsNew:
		rec.RestartAsNew = &RestartAsNew{InvocationID: r.Bytes(), NewInvocationID: r.Bytes(), From: r.U32(), DeploymentID: r.String(), RequestID: r.Uvarint()}
	case KindJournalEvent:
		rec.JournalEvent = &JournalEvent{InvocationID: r.Bytes(), Type: EventType(r.Byte()), Attempt: r.U32()}
		rec.JournalEvent.Failure = ReadEventFailure(r)
	case KindExpire, KindBinaryFormat, KindTraceFormat, KindCalleeFormat, KindManageFormat, KindEventsFormat:
	default:
		return nil, fmt.Errorf("%w %d", ErrUnknownKind, rec.Kind)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode record kind %d: %w", rec.Kind, err)
	}
	return rec, nil
}

func readInvoke(r *bincodec.Reader) *Invoke {
	x := &Invoke{InvocationID: r.Bytes(), Target: ReadTarget(r), Input: r.Bytes()}
	if n := r.Count(); n > 0 {
		x.Headers = make([]Header, n)
		for i := range x.Headers {
			x.Headers[i] = Header{Key: r.String(), Value: r.String()}
		}
	}
	x.IdempotencyKey, x.RequestID, x.Send = r.String(), r.Uvarint(), r.Bool()
	if r.Bool() { // presence
		c := ReadCaller(r)
		x.Caller = &c
	}
	x.ExecutionTime, x.CompletionRetentionMs, x.JournalRetentionMs = r.Varint(), r.Varint(), r.Varint()
	x.InvokedBy = r.String()
	return x
}

func readEffect(r *bincodec.Reader, version byte) *InvokerEffect {
	x := &InvokerEffect{InvocationID: r.Bytes()}
	if n := r.Count(); n > 0 {
		x.Entries = make([]Entry, n)
		for i := range x.Entries {
			e := Entry{Type: r.U16(), Flags: r.U16(), Payload: r.Bytes()}
			if r.Bool() { // presence
				t := ReadTarget(r)
				e.CallTarget = &t
			}
			if r.Bool() { // presence
				e.CallRetention = &Retention{CompletionMs: r.Varint(), JournalMs: r.Varint()}
			}
			if version >= binaryV2 {
				e.TraceParent, e.TraceState = r.String(), r.String()
			}
			if version >= binaryV3 {
				e.CallUUID = r.Bytes()
			}
			x.Entries[i] = e
		}
	}
	x.Kind = EffectKind(r.Byte())
	x.WaitingCompletions, x.WaitingSignals, x.WaitingNames = r.U32s(), r.U32s(), r.Strings()
	x.FailureCode, x.FailureMessage, x.Attempt = r.U32(), r.String(), r.U32()
	x.DeploymentID, x.ProtocolVersion = r.String(), r.U32()
	return x
}
