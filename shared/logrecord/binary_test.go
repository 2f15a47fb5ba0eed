package logrecord

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomRecord(rng *rand.Rand) *Record {
	id := func() []byte {
		b := make([]byte, 24)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	str := func() string { // valid UTF-8, so that the JSON encoding carries it too
		b := make([]rune, rng.IntN(8))
		for i := range b {
			b[i] = rune('a' + rng.IntN(26))
		}
		return string(b)
	}
	blob := func() []byte {
		if rng.IntN(3) == 0 {
			return nil
		}
		b := make([]byte, 1+rng.IntN(20))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	u32s := func() []uint32 {
		var out []uint32
		for range rng.IntN(3) {
			out = append(out, rng.Uint32())
		}
		return out
	}
	target := func() Target {
		return Target{Service: str(), Handler: str(), Key: str(), ServiceType: str(), HandlerType: str()}
	}
	caller := func() Caller {
		return Caller{InvocationID: id(), CompletionID: rng.Uint32(), NotificationType: uint16(rng.Uint32())}
	}
	r := &Record{Kind: Kind(1 + rng.IntN(10)), Epoch: rng.Uint64(), Time: rng.Int64() - rng.Int64()}
	switch rng.IntN(12) {
	case 0:
		r.Kind = KindPatchState
	case 1:
		r.Kind = KindRestartAsNew
	case 2:
		r.Kind = KindJournalEvent
	}
	if rng.IntN(2) == 0 {
		r.Dedup = &Dedup{Producer: rng.Uint32(), Seq: rng.Uint64()}
	}
	switch r.Kind {
	case KindAnnounceLeader:
		r.AnnounceLeader = &AnnounceLeader{NodeID: rng.Uint32(), Node: str()}
	case KindInvoke:
		x := &Invoke{InvocationID: id(), Target: target(), Input: blob(), IdempotencyKey: str(), RequestID: rng.Uint64(),
			Send: rng.IntN(2) == 0, ExecutionTime: rng.Int64N(1 << 45), CompletionRetentionMs: rng.Int64N(1 << 40),
			JournalRetentionMs: rng.Int64N(1 << 40), InvokedBy: str()}
		for range rng.IntN(3) {
			x.Headers = append(x.Headers, Header{Key: str(), Value: str()})
		}
		if rng.IntN(2) == 0 {
			c := caller()
			x.Caller = &c
		}
		r.Invoke = x
	case KindInvokerEffect:
		x := &InvokerEffect{InvocationID: id(), Kind: EffectKind(rng.IntN(5)), WaitingCompletions: u32s(), WaitingSignals: u32s(),
			FailureCode: rng.Uint32(), FailureMessage: str(), Attempt: rng.Uint32(), DeploymentID: str(), ProtocolVersion: rng.Uint32()}
		for range rng.IntN(3) {
			x.WaitingNames = append(x.WaitingNames, str())
			e := Entry{Type: uint16(rng.Uint32()), Flags: uint16(rng.Uint32()), Payload: blob()}
			if rng.IntN(2) == 0 {
				t := target()
				e.CallTarget = &t
				e.CallRetention = &Retention{CompletionMs: rng.Int64N(1 << 40), JournalMs: rng.Int64N(1 << 40)}
				if rng.IntN(2) == 0 {
					e.TraceParent, e.TraceState = str(), str()
				}
				if rng.IntN(2) == 0 {
					e.CallUUID = id()[:16]
				}
			}
			x.Entries = append(x.Entries, e)
		}
		r.InvokerEffect = x
	case KindTimerFired:
		r.TimerFired = &TimerFired{InvocationID: id(), Kind: TimerKind(1 + rng.IntN(3)), CompletionID: rng.Uint32(), WakeAt: rng.Int64N(1 << 45), InvocationCreatedAt: rng.Int64N(1 << 45)}
	case KindInvocationResult:
		r.InvocationResult = &InvocationResult{InvocationID: id(), CompletionID: rng.Uint32(), Value: blob(), Failed: rng.IntN(2) == 0,
			FailureCode: rng.Uint32(), FailureMsg: str(), NotificationType: uint16(rng.Uint32()), Void: rng.IntN(2) == 0}
	case KindTruncateOutbox:
		r.TruncateOutbox = &TruncateOutbox{Seq: rng.Uint64()}
	case KindSignal:
		r.Signal = &Signal{InvocationID: id(), SignalID: rng.Uint32(), SignalName: str(), Value: blob(), Failed: rng.IntN(2) == 0, FailureCode: rng.Uint32(), FailureMsg: str()}
	case KindManage:
		r.Manage = &Manage{InvocationID: id(), Op: ManageOp(str()), RequestID: rng.Uint64()}
	case KindAttach:
		r.Attach = &Attach{InvocationID: id(), Caller: caller(), Wait: rng.IntN(2) == 0}
	case KindPatchState:
		x := &PatchState{Service: "S" + str(), Key: str()}
		if rng.IntN(2) == 0 {
			v := str()
			x.Version = &v
		}
		for range rng.IntN(3) {
			x.State = append(x.State, StateEntry{Key: blob(), Value: blob()})
		}
		r.PatchState = x
	case KindRestartAsNew:
		r.RestartAsNew = &RestartAsNew{InvocationID: id(), NewInvocationID: id(), From: rng.Uint32(), DeploymentID: str(), RequestID: rng.Uint64()}
	case KindJournalEvent:
		x := &JournalEvent{InvocationID: id(), Type: EventPaused, Attempt: rng.Uint32()}
		if rng.IntN(2) == 0 {
			x.Type = EventTransientError
		}
		if x.Type == EventTransientError || rng.IntN(2) == 0 {
			f := &EventFailure{Code: rng.Uint32(), Message: str(), Stacktrace: str(), DocCode: str()}
			if rng.IntN(2) == 0 {
				i, n, ty := rng.Uint32(), str(), rng.Uint32()
				f.RelatedIndex, f.RelatedName, f.RelatedType = &i, &n, &ty
			}
			x.Failure = f
		}
		r.JournalEvent = x
	}
	return r
}

// Every kind of record survives the binary encoding; records written as JSON by earlier
// versions decode to the same record; binary records are smaller.
func TestRecordEncodings(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var binBytes, jsonBytes int
	for range 5000 {
		r := randomRecord(rng)
		b, err := Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		j, err := EncodeJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		binBytes, jsonBytes = binBytes+len(b), jsonBytes+len(j)
		for name, enc := range map[string][]byte{"binary": b, "JSON": j} {
			got, err := Decode(enc)
			if err != nil || !reflect.DeepEqual(got, r) {
				t.Fatalf("%s round trip of kind %d:\n got %+v (%v)\nwant %+v", name, r.Kind, got, err, r)
			}
		}
	}
	if binBytes*2 > jsonBytes {
		t.Errorf("binary records take %d bytes, JSON %d", binBytes, jsonBytes)
	}
	t.Logf("5000 random records: %d bytes binary, %d JSON", binBytes, jsonBytes)
}

func TestEncodeRefusesWhatItCannotWrite(t *testing.T) {
	if _, err := Encode(&Record{Kind: 99}); err == nil {
		t.Error("unknown kind encoded")
	}
	if _, err := Encode(&Record{Kind: KindInvoke}); err == nil {
		t.Error("record without its body encoded")
	}
}

// The binary form of a restart-as-new record, byte for byte: replicas read it back from the
// log for as long as the log keeps it, so it must not change. It is written in the first
// binary encoding, whose decoders of earlier versions refuse its kind as unknown (and stop
// there) instead of skipping it.
func TestRestartAsNewEncoding(t *testing.T) {
	id := func(b byte) []byte {
		out := make([]byte, 24)
		out[23] = b
		return out
	}
	r := &Record{Kind: KindRestartAsNew, Epoch: 3, Time: 1000, RestartAsNew: &RestartAsNew{
		InvocationID: id(1), NewInvocationID: id(2), From: 5, DeploymentID: "dp_1", RequestID: 9,
	}}
	b, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{binaryV1, 16, 3, 0xd0, 0x0f, 0, 24}
	want = append(append(want, id(1)...), 24)
	want = append(append(want, id(2)...), 5, 4, 'd', 'p', '_', '1', 9)
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("Encode = %v\nwant     %v", b, want)
	}
	got, err := Decode(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
	for _, bad := range []*RestartAsNew{{InvocationID: id(1)}, {NewInvocationID: id(2)}} {
		b, err := Encode(&Record{Kind: KindRestartAsNew, RestartAsNew: bad})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b); err == nil {
			t.Errorf("a restart without both ids decoded: %+v", bad)
		}
	}
}

// Log bytes never panic the decoder; a binary record that decodes encodes to a record that
// decodes the same.
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 12 {
		b, _ := Encode(randomRecord(rng))
		f.Add(b)
	}
	f.Add([]byte(`{"k":10,"t":5}`))
	f.Add([]byte{1, 99, 1, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil || (b[0] != binaryV1 && b[0] != binaryV2 && b[0] != binaryV3) {
			return
		}
		again, err := Encode(r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		r2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-decode differs: %+v, %v", r2, err)
		}
	})
}

// The format marker is JSON of a kind that versions before the newest encoding refuse as
// unknown (those before the binary encoding knew kinds up to KindExpire, those of the first
// binary encoding up to KindBinaryFormat), so they stop there rather than skip the records
// after it; this version reads it, and the earlier marker, as a no-op.
func TestFormatMarker(t *testing.T) {
	var old struct {
		Kind Kind `json:"k"`
	}
	// Versions of the third encoding knew kinds up to KindCalleeFormat (those of the second
	// up to KindTraceFormat: the state patch came with the third).
	if err := json.Unmarshal(FormatMarker(), &old); err != nil || old.Kind <= KindCalleeFormat {
		t.Fatalf("an earlier version would read kind %d (%v): not refused as unknown", old.Kind, err)
	}
	r, err := Decode(FormatMarker())
	if err != nil || r.Kind != KindEventsFormat || r.Epoch != 0 || r.Dedup != nil {
		t.Fatalf("Decode(marker) = %+v, %v", r, err)
	}
	if r, err := Decode([]byte(`{"k":11,"t":0}`)); err != nil || r.Kind != KindBinaryFormat {
		t.Fatalf("Decode(first marker) = %+v, %v", r, err)
	}
	if r, err := Decode([]byte(`{"k":12,"t":0}`)); err != nil || r.Kind != KindTraceFormat {
		t.Fatalf("Decode(second marker) = %+v, %v", r, err)
	}
	if r, err := Decode([]byte(`{"k":14,"t":0}`)); err != nil || r.Kind != KindCalleeFormat {
		t.Fatalf("Decode(third marker) = %+v, %v", r, err)
	}
	// Versions before journal events knew kinds up to KindRestartAsNew.
	if old.Kind <= KindRestartAsNew {
		t.Fatalf("marker kind %d is known to the versions before journal events", old.Kind)
	}
	if r, err := Decode([]byte(`{"k":15,"t":0}`)); err != nil || r.Kind != KindManageFormat {
		t.Fatalf("Decode(fourth marker) = %+v, %v", r, err)
	}
}

// Effects whose entries carry a trace context use the second binary encoding; others keep
// the first, byte for byte.
func TestTraceContextEncoding(t *testing.T) {
	plain := &Record{Kind: KindInvokerEffect, Epoch: 3, Time: 7, InvokerEffect: &InvokerEffect{
		InvocationID: make([]byte, 24), Entries: []Entry{{Type: 0x0400, Payload: []byte("call"), CallTarget: &Target{Service: "S", Handler: "h"}}}}}
	b, err := Encode(plain)
	if err != nil || b[0] != binaryV1 {
		t.Fatalf("effect without trace context: version %d, %v", b[0], err)
	}
	traced := *plain
	eff := *plain.InvokerEffect
	eff.Entries = []Entry{eff.Entries[0]}
	eff.Entries[0].TraceParent, eff.Entries[0].TraceState = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v"
	traced.InvokerEffect = &eff
	b, err = Encode(&traced)
	if err != nil || b[0] != binaryV2 {
		t.Fatalf("effect with trace context: version %d, %v", b[0], err)
	}
	got, err := Decode(b)
	if err != nil || !reflect.DeepEqual(got, &traced) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// A callee uuid takes the third encoding, with or without a trace context.
	for _, trace := range []bool{false, true} {
		called := *plain
		eff := *plain.InvokerEffect
		eff.Entries = []Entry{eff.Entries[0]}
		eff.Entries[0].CallUUID = []byte("0123456789abcdef")
		if trace {
			eff.Entries[0].TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		}
		called.InvokerEffect = &eff
		b, err = Encode(&called)
		if err != nil || b[0] != binaryV3 {
			t.Fatalf("effect with a callee uuid: version %d, %v", b[0], err)
		}
		if got, err := Decode(b); err != nil || !reflect.DeepEqual(got, &called) {
			t.Fatalf("round trip: %+v, %v", got, err)
		}
	}
}
