package protocol

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// allTypes lists every catalogued type, so fuzzing reaches every Unmarshal.
func allTypes() []MessageType {
	types := make([]MessageType, 0, len(typeNames))
	for t := range typeNames {
		types = append(types, t)
	}
	return types
}

func FuzzDecoder(f *testing.F) {
	_, stream := sampleStream()
	f.Add(stream)
	f.Add(stream[:13])
	f.Add([]byte{0, 0, 0x80, 0, 0, 0, 0, 1, 7})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{4, 1, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 12
		d := NewDecoder(bytes.NewReader(data), limit)
		rest := data
		for {
			m, err := d.Next()
			if err != nil {
				if err != io.EOF && len(rest) == 0 {
					t.Fatalf("error %v at a clean end", err)
				}
				if err == io.EOF && len(rest) != 0 {
					t.Fatalf("io.EOF with %d bytes left", len(rest))
				}
				// The in-memory decoder must agree that the remaining bytes are not a frame.
				if err != io.EOF && !errors.Is(err, ErrMessageTooLarge) {
					if _, _, derr := DecodeFrame(rest); derr == nil {
						t.Fatalf("stream decoder failed (%v) where DecodeFrame succeeded", err)
					}
				}
				return
			}
			if len(m.Payload) > limit {
				t.Fatalf("payload of %d bytes over limit", len(m.Payload))
			}
			fm, n, err := DecodeFrame(rest)
			if err != nil {
				t.Fatalf("DecodeFrame failed where the stream decoder succeeded: %v", err)
			}
			if fm.Type != m.Type || fm.Flags != m.Flags || !bytes.Equal(fm.Payload, m.Payload) {
				t.Fatalf("decoders disagree: %+v vs %+v", fm, m)
			}
			if re := AppendFrame(nil, m); !bytes.Equal(re, rest[:n]) {
				t.Fatalf("re-encoded frame % x differs from input % x", re, rest[:n])
			}
			rest = rest[n:]
		}
	})
}

func FuzzUnmarshalMessages(f *testing.F) {
	for _, tc := range allBodies() {
		f.Add(tc.body.Marshal())
	}
	f.Add([]byte{0x9b, 0x06, 0x08, 1, 0x9c, 0x06})
	types := allTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range types {
			first, err := NewBody(typ)
			if err != nil {
				t.Fatal(err)
			}
			if first.Unmarshal(data) != nil {
				continue
			}
			// A decoded message must re-encode canonically: decoding its encoding gives the
			// same value, and encoding that gives the same bytes.
			encoded := first.Marshal()
			second, _ := NewBody(typ)
			if err := second.Unmarshal(encoded); err != nil {
				t.Fatalf("%s: re-decoding own encoding % x: %v", typ, encoded, err)
			}
			if !reflect.DeepEqual(first, second) {
				t.Fatalf("%s: unstable decode:\n first  %#v\n second %#v", typ, first, second)
			}
			if again := second.Marshal(); !bytes.Equal(again, encoded) {
				t.Fatalf("%s: unstable encoding:\n % x\n % x", typ, encoded, again)
			}
			if typ.IsCommand() {
				// Must not panic; commands that decode also have well-formed id fields.
				if _, err := CommandCompletionIDs(Message{Type: typ, Payload: data}); err != nil {
					t.Fatalf("%s: CommandCompletionIDs on a decodable payload: %v", typ, err)
				}
			}
		}
	})
}
