package ids

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInvocationIDKnownVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		str  string
		raw  string // 24 bytes, hex
	}{
		{
			// A live id quoted in sdk-go v1.2.0's ingress docs; its uuid decodes to a ULID
			// timestamp of 2025-10-09, which confirms the byte-swap quirk.
			name: "live restate id",
			str:  "inv_1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX",
			raw:  "c379f2355568e1d9" + "0199c908cc5d5865334517fef18d8108",
		},
		{
			// Computed independently (Python big integers) from the format description.
			name: "counting bytes",
			str:  "inv_10GJfy0GGPIZ0spiZ5jnFiXLEB5q4Itm5q",
			raw:  "0102030405060708" + "000102030405060708090a0b0c0d0e0f",
		},
		{
			name: "partition key one, zero uuid",
			str:  "inv_105k1wlNFHb20000000000000000000000",
			raw:  "0000000000000001" + "00000000000000000000000000000000",
		},
		{
			name: "zero",
			str:  "inv_1" + strings.Repeat("0", 33),
			raw:  strings.Repeat("00", 24),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := mustHex(t, tc.raw)
			id, err := InvocationIDFromBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := id.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			parsed, err := ParseInvocationID(tc.str)
			if err != nil {
				t.Fatalf("ParseInvocationID: %v", err)
			}
			if parsed != id {
				t.Errorf("parsed %x, want %x", parsed.Bytes(), raw)
			}
			if !bytes.Equal(parsed.Bytes(), raw) {
				t.Errorf("Bytes() = %x, want %x", parsed.Bytes(), raw)
			}
		})
	}
}

func TestLiveIDTimestamp(t *testing.T) {
	t.Parallel()
	id, err := ParseInvocationID("inv_1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX")
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	for _, b := range id.UUID[:6] {
		ms = ms<<8 | int64(b)
	}
	got := time.UnixMilli(ms).UTC()
	if got.Year() != 2025 || got.Month() != time.October {
		t.Errorf("ULID timestamp %v, want October 2025", got)
	}
}

func TestNewInvocationIDRoundTrip(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMilli()
	seen := map[InvocationID]bool{}
	for i := range 200 {
		pk := PartitionKey(uint64(i) * 0x9E3779B97F4A7C15)
		id := NewInvocationID(pk)
		if id.PartitionKey != pk {
			t.Fatalf("partition key %d, want %d", id.PartitionKey, pk)
		}
		if seen[id] {
			t.Fatalf("duplicate id %v", id)
		}
		seen[id] = true
		s := id.String()
		if len(s) != 38 || !strings.HasPrefix(s, "inv_1") {
			t.Fatalf("bad string form %q", s)
		}
		back, err := ParseInvocationID(s)
		if err != nil || back != id {
			t.Fatalf("ParseInvocationID(%q) = %v, %v; want %v", s, back, err, id)
		}
		fromBytes, err := InvocationIDFromBytes(id.Bytes())
		if err != nil || fromBytes != id {
			t.Fatalf("InvocationIDFromBytes = %v, %v; want %v", fromBytes, err, id)
		}
		var ms int64
		for _, b := range id.UUID[:6] {
			ms = ms<<8 | int64(b)
		}
		if ms < before || ms > time.Now().UnixMilli() {
			t.Fatalf("ULID timestamp %d outside [%d, now]", ms, before)
		}
	}
}

func TestParseInvocationIDErrors(t *testing.T) {
	t.Parallel()
	valid := "inv_1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX"
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrBadLength},
		{"no separator", "inv1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX", ErrBadFormat},
		{"unknown resource", "foo_1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX", ErrUnrecognizedType},
		{"other resource", "dp_16DGG3jQi6060887quRa5Ut", ErrTypeMismatch},
		// Restate checks the version (and length) before the resource type (observed on
		// restate-server 1.7.12: /restate/attach/sign_2abc, /restate/attach/dp_).
		{"other resource with a bad version", "sign_2abc", ErrVersion},
		{"other resource, prefix only", "dp_", ErrBadLength},
		{"bad version", "inv_2iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX", ErrVersion},
		{"version is a digit of a garbage id", "inv_abc", ErrVersion},
		{"prefix only", "inv_", ErrBadLength},
		{"too short", valid[:37], ErrBadLength},
		{"too long", valid + "0", ErrBadLength},
		{"bad alphabet", valid[:20] + "-" + valid[21:], ErrCodec},
		{"partition key overflows u64", "inv_1" + "zzzzzzzzzzz" + valid[16:], ErrCodec},
		{"uuid overflows u128", "inv_1" + valid[5:16] + strings.Repeat("Z", 22), ErrCodec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseInvocationID(tc.in)
			if !errors.Is(err, tc.want) {
				t.Errorf("ParseInvocationID(%q) error = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	if ErrVersion.Error() != "unrecognized codec version" {
		t.Errorf("ErrVersion text %q changed; admin clients match on it", ErrVersion)
	}
}

func TestInvocationIDFromBytesLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 23, 25} {
		if _, err := InvocationIDFromBytes(make([]byte, n)); !errors.Is(err, ErrBadLength) {
			t.Errorf("%d bytes: error %v, want ErrBadLength", n, err)
		}
	}
}

func TestInvocationIDText(t *testing.T) {
	t.Parallel()
	id := NewInvocationID(42)
	text, err := id.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back InvocationID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("UnmarshalText = %v, %v; want %v", back, err, id)
	}
	if err := back.UnmarshalText([]byte("inv_x")); !errors.Is(err, ErrVersion) {
		t.Errorf("UnmarshalText(bad) error = %v, want ErrVersion", err)
	}
	if !(InvocationID{}).IsZero() || id.IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestDeterministicInvocationIDs(t *testing.T) {
	t.Parallel()
	// sha256("wf,Greeter,alice")[:16], computed with coreutils sha256sum.
	const wantWF = "d8c55a2dfbe92b7dd8078057205bc191"
	wf := WorkflowInvocationID(7, "Greeter", "alice")
	if got := hex.EncodeToString(wf.UUID[:]); got != wantWF {
		t.Errorf("workflow uuid %s, want %s", got, wantWF)
	}
	if wf.PartitionKey != 7 {
		t.Errorf("partition key %d, want 7", wf.PartitionKey)
	}
	if got := DeterministicInvocationID(7, "wf", "Greeter", "alice"); got != wf {
		t.Errorf("WorkflowInvocationID differs from DeterministicInvocationID with parts wf,service,key")
	}
	if WorkflowInvocationID(7, "Greeter", "alice") != wf {
		t.Error("not deterministic")
	}
	if WorkflowInvocationID(7, "Greeter", "bob") == wf || WorkflowInvocationID(7, "Greete", "ralice") == wf {
		t.Error("different inputs collide")
	}
	svc := IdempotentInvocationID(1, "Svc", "", "h", "k1")
	// sha256("ik,Svc,h,k1")[:16], computed with coreutils sha256sum.
	if got := hex.EncodeToString(svc.UUID[:]); got != "5542c752ce2b0f89b3b98326d25e8f32" {
		t.Errorf("idempotent uuid %s", got)
	}
	if svc != DeterministicInvocationID(1, "ik", "Svc", "h", "k1") {
		t.Error("keyless idempotent id must leave the key out")
	}
	obj := IdempotentInvocationID(1, "Obj", "key", "h", "k1")
	if obj != DeterministicInvocationID(1, "ik", "Obj", "key", "h", "k1") {
		t.Error("keyed idempotent id must include the key")
	}
}
