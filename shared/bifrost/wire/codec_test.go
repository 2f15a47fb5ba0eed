package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"gorestate.dev/shared/metadata"
)

var hdr = Header{LogletID: 7<<32 | 3, KnownGlobalTail: 42}

var rhdr = ResponseHeader{Status: StatusSealed, LocalTail: 43, KnownGlobalTail: 42, Sealed: true}

// sampleMessages has one message of every type with every field set, and a few edge values.
func sampleMessages() []any {
	return []any{
		&Store{Header: hdr, TimeoutAt: 1_700_000_000_123, Flags: FlagIgnoreSeal, FirstOffset: 42,
			Sequencer: metadata.NodeID{Name: "n1", Generation: 5}, Payloads: [][]byte{[]byte("a"), []byte("bc")}},
		&Store{Header: Header{LogletID: math.MaxUint64}, TimeoutAt: -1, FirstOffset: math.MaxUint64},
		&Stored{ResponseHeader: rhdr},
		&Seal{Header: hdr, Sequencer: metadata.NodeID{Name: "node-2", Generation: 9}},
		&Sealed{ResponseHeader: rhdr},
		&GetLogletInfo{Header: hdr},
		&LogletInfo{ResponseHeader: rhdr, TrimPoint: 12},
		&GetRecords{Header: hdr, From: 1, To: 100, LimitBytes: math.MaxUint32},
		&Records{ResponseHeader: rhdr, NextOffset: 44, Records: []LogRecord{
			{Offset: 1, Kind: RecordTrimGap, GapTo: 12},
			{Offset: 13, Kind: RecordData, Payload: []byte("payload")},
		}},
		&Trim{Header: hdr, TrimPoint: 10},
		&Trimmed{ResponseHeader: rhdr},
		&WaitForTail{Header: hdr, Query: WaitLocalOrGlobalTail, Offset: 50},
		&TailUpdated{ResponseHeader: rhdr},
		&GetDigest{Header: hdr, From: 1, To: 99},
		&Digest{ResponseHeader: rhdr, Entries: []DigestEntry{{From: 1, To: 9, Status: DigestTrimmed}, {From: 10, To: 20, Status: DigestExists}}},
		&Append{LogID: 7, SegmentIndex: 3, LogletID: 7<<32 | 3, Payloads: [][]byte{[]byte("x")}},
		&Appended{Status: StatusOK, KnownGlobalTail: 10, Sealed: false, FirstOffset: 9},
		&GetSequencerState{LogletID: 1},
		&SequencerState{Status: StatusNotSequencer, KnownGlobalTail: 3, Sealed: true},
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, msg := range sampleMessages() {
		name := MessageName(msg)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			b, err := Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("unmarshal %x: %v", b, err)
			}
			if !reflect.DeepEqual(got, msg) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, msg)
			}
		})
	}
	for code, mt := range messageTypes {
		if mt.new != nil && !seen[mt.name] {
			t.Errorf("message type %d (%s) has no sample", code, mt.name)
		}
	}
}

// TestTypeCodesAreStable pins the type codes: they are on the wire.
func TestTypeCodesAreStable(t *testing.T) {
	t.Parallel()
	want := []string{"", "Store", "Stored", "Seal", "Sealed", "GetLogletInfo", "LogletInfo", "GetRecords", "Records",
		"Trim", "Trimmed", "WaitForTail", "TailUpdated", "GetDigest", "Digest", "Append", "Appended",
		"GetSequencerState", "SequencerState"}
	for code, name := range want {
		if messageTypes[code].name != name {
			t.Errorf("type code %d is %q, want %q", code, messageTypes[code].name, name)
		}
	}
	b, _ := Marshal(&Stored{})
	if b[0] != 2 {
		t.Errorf("Stored encodes with type byte %d, want 2", b[0])
	}
}

func TestMarshalRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  any
		want string
	}{
		{"not a message", "hello", "not a message pointer"},
		{"value, not pointer", Store{}, "not a message pointer"},
		{"nil pointer", (*Store)(nil), "nil *wire.Store"},
		{"long node name", &Seal{Sequencer: metadata.NodeID{Name: strings.Repeat("x", MaxNameBytes+1)}}, "Seal.sequencer.name: 1025 bytes exceed"},
		{"too many payloads", &Store{Payloads: make([][]byte, MaxItems+1)}, "Store.payloads: 65537 items exceed"},
		{"payloads too large", &Append{Payloads: [][]byte{make([]byte, MaxPayloadBytes/2+1), make([]byte, MaxPayloadBytes/2)}}, "payloads add up to more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Marshal(tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func uv(b []byte, xs ...uint64) []byte {
	for _, x := range xs {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func TestUnmarshalRejects(t *testing.T) {
	t.Parallel()
	good, _ := Marshal(&GetLogletInfo{Header: hdr})
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "message.type: truncated varint"},
		{"type 0", uv(nil, 0), "unknown message type 0"},
		{"unknown type", uv(nil, 200), "unknown message type 200"},
		{"truncated field", uv(nil, 5, 1), "GetLogletInfo.known_global_tail: truncated varint"},
		{"trailing bytes", append(append([]byte(nil), good...), 0), "GetLogletInfo: 1 trailing bytes"},
		{"non-minimal varint", []byte{5, 0x81, 0x00, 0}, "GetLogletInfo.loglet_id: non-minimal varint"},
		{"varint overflow", append([]byte{5}, bytes.Repeat([]byte{0xff}, 11)...), "overflows 64 bits"},
		{"bool out of range", uv(nil, 2, 0, 1, 1, 2), "Stored.sealed: bool is 2"},
		{"uint8 out of range", uv(nil, 2, 300), "Stored.status: value 300 exceeds 255"},
		{"uint32 out of range", uv(nil, 7, 1, 1, 1, 2, 1<<32), "GetRecords.limit_bytes: value 4294967296 exceeds 4294967295"},
		{"count over bytes left", uv(nil, 15, 1, 1, 1, 1000), "Append.payloads: 1000 items need at least 1000 bytes, 0 left"},
		{"count over limit", uv(nil, 15, 1, 1, 1, MaxItems+1), "Append.payloads: 65537 items exceed the limit"},
		{"payload over bytes left", uv(nil, 15, 1, 1, 1, 1, 5, 'a'), "Append.payloads[0]: length 5 exceeds the 1 bytes left"},
		{"name over limit", append(uv(nil, 3, 1, 1, MaxNameBytes+1), make([]byte, MaxNameBytes+2)...), "Seal.sequencer.name: length 1025 exceeds the limit of 1024"},
		{"record field", uv(nil, 8, 0, 0, 0, 0, 0, 1, 300, 0, 0), "Records.records[0].payload: truncated varint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Unmarshal(tt.b)
			if err == nil {
				t.Fatalf("Unmarshal(%x) = %+v, want an error containing %q", tt.b, m, tt.want)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unmarshal(%x) = %v, want ErrMalformed containing %q", tt.b, err, tt.want)
			}
		})
	}
}

func TestUnmarshalPayloadBudget(t *testing.T) {
	t.Parallel()
	// Two payloads each under the limit but together over it.
	half := MaxPayloadBytes/2 + 1
	b := uv(nil, 15, 1, 1, 1, 2, uint64(half))
	b = append(b, make([]byte, half)...)
	b = uv(b, uint64(half))
	b = append(b, make([]byte, half)...)
	_, err := Unmarshal(b)
	if err == nil || !strings.Contains(err.Error(), "Append.payloads[1]: payloads add up to more than") {
		t.Fatalf("Unmarshal = %v", err)
	}
}

func TestUnmarshalEmptyIsNil(t *testing.T) {
	t.Parallel()
	b, err := Marshal(&Store{Payloads: [][]byte{{}, []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	s := m.(*Store)
	if len(s.Payloads) != 2 || s.Payloads[0] != nil || string(s.Payloads[1]) != "x" {
		t.Fatalf("payloads %q", s.Payloads)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, msg := range sampleMessages() {
		b, err := Marshal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{15, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		again, err := Marshal(m)
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", m, err)
		}
		// Decoding is strict, so the encoding is canonical.
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
		m2, err := Unmarshal(again)
		if err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(m)) != m:\n%+v\n%+v", m, m2)
		}
	})
}
