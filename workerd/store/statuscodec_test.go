package store

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"gorestate.dev/shared/logrecord"
)

func randomStatus(rng *rand.Rand) *Status {
	str := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	u32s := func() []uint32 {
		var out []uint32
		for range rng.IntN(3) {
			out = append(out, rng.Uint32())
		}
		return out
	}
	s := &Status{
		Phase:          phaseCodes[1+rng.IntN(len(phaseCodes)-1)],
		Target:         logrecord.Target{Service: str(), Handler: str(), Key: str(), ServiceType: str(), HandlerType: str()},
		IdempotencyKey: str(), InvokedBy: str(),
		CreatedAt: rng.Int64() - rng.Int64(), ModifiedAt: rng.Int64N(1 << 45), ExecutionTime: rng.Int64N(1 << 45),
		InboxSeq: rng.Uint64(), Attempt: rng.Uint32(), JournalLen: rng.Uint32(), CommandCount: rng.Uint32(),
		WaitingCompletions: u32s(), WaitingSignals: u32s(),
		CompletionRetentionMs: rng.Int64N(1 << 40), JournalRetentionMs: rng.Int64N(1 << 40), CompletedAt: rng.Int64N(1 << 45),
		DeploymentID: str(), ProtocolVersion: rng.Uint32(), LastFailure: str(),
		InboxedAt: rng.Int64N(1 << 45), ScheduledAt: rng.Int64N(1 << 45), RunningAt: rng.Int64N(1 << 45),
	}
	for range rng.IntN(3) {
		s.WaitingNames = append(s.WaitingNames, str())
		s.Callers = append(s.Callers, logrecord.Caller{InvocationID: []byte(str() + "x"), CompletionID: rng.Uint32(), NotificationType: uint16(rng.Uint32())})
	}
	if rng.IntN(2) == 0 {
		s.Result = &Result{Failed: rng.IntN(2) == 0, Code: rng.Uint32(), Message: str()}
		if v := str(); v != "" {
			s.Result.Value = []byte(v)
		}
	}
	return s
}

// Every status survives the binary encoding, and the encoding is much smaller than JSON.
func TestStatusEncodingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		s := randomStatus(rng)
		b, err := encodeStatus(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeStatus(b)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip:\n got %+v (%v)\nwant %+v", got, err, s)
		}
	}
	typical := &Status{Phase: PhaseCompleted, Target: logrecord.Target{Service: "Counter", Handler: "add", Key: "key-17", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"},
		IdempotencyKey: "idem-17", CreatedAt: 1_764_000_000_000, ModifiedAt: 1_764_000_000_003, CompletedAt: 1_764_000_000_003,
		JournalLen: 3, CommandCount: 2, CompletionRetentionMs: 86_400_000, JournalRetentionMs: 86_400_000,
		DeploymentID: "dp_11111111111111111111111", ProtocolVersion: 5, Result: &Result{Value: []byte("18")}}
	b, _ := encodeStatus(typical)
	j, _ := json.Marshal(typical)
	if len(b)*2 > len(j) {
		t.Errorf("binary %d bytes, JSON %d", len(b), len(j))
	}
	t.Logf("a typical completed status: %d bytes binary, %d JSON", len(b), len(j))
}

// Statuses written as JSON by earlier versions still read.
func TestStatusReadsJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		s := randomStatus(rng)
		for i := range s.Callers {
			s.Callers[i].InvocationID = []byte("id") // JSON strings must be valid UTF-8
		}
		s.Target = logrecord.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}
		s.IdempotencyKey, s.InvokedBy, s.DeploymentID, s.LastFailure, s.WaitingNames = "k", "i", "d", "f", nil
		if s.Result != nil {
			s.Result.Message = "m"
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeStatus(j)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("JSON status:\n got %+v (%v)\nwant %+v", got, err, s)
		}
	}
}

// Bytes from disk never panic the decoder; what decodes encodes and decodes the same again.
func FuzzStatus(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		b, _ := encodeStatus(randomStatus(rng))
		f.Add(b)
	}
	// A status written before the transition times were kept: it ends after the last failure.
	old := randomStatus(rng)
	old.InboxedAt, old.ScheduledAt, old.RunningAt = 0, 0, 0
	if b, err := encodeStatus(old); err == nil {
		f.Add(b[:len(b)-3])
	}
	f.Add([]byte(`{"p":"invoked"}`))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeStatus(b)
		h, headOK := decodeStatusHead(b)
		if err != nil || len(b) == 0 || b[0] != statusBinaryV1 {
			return
		}
		// A status that decodes has a head, and it says what the status says.
		if !headOK || h.Phase != s.Phase || string(h.Service) != s.Target.Service || string(h.Handler) != s.Target.Handler {
			t.Fatalf("head %+v (ok %v) of status %+v", h, headOK, s)
		}
		again, err := encodeStatus(s)
		if err != nil {
			t.Fatalf("decoded status does not encode: %v", err)
		}
		s2, err := decodeStatus(again)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-decode differs: %+v, %v", s2, err)
		}
	})
}

// A status written before the transition times were kept ends after the last failure; it
// reads with zero times.
func TestStatusWithoutTransitionTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		s := randomStatus(rng)
		s.InboxedAt, s.ScheduledAt, s.RunningAt = 0, 0, 0
		b, err := encodeStatus(s)
		if err != nil {
			t.Fatal(err)
		}
		old := b[:len(b)-3] // three zero varints
		got, err := decodeStatus(old)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("decode of a status without times: %v\n got %+v\nwant %+v", err, got, s)
		}
	}
}
