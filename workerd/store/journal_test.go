package store

import (
	"bytes"
	"reflect"
	"testing"
)

// Journal entries round-trip through the stored form with and without the extension
// (append time, call metadata); entries stored before the extension read as they were.
func TestJournalEntryEncoding(t *testing.T) {
	t.Parallel()
	payload := []byte{0x0a, 0x03, 'a', 'b', 'c'}
	tests := []struct {
		name string
		e    JournalEntry
	}{
		{"plain", JournalEntry{Type: 0x0400, Payload: payload}},
		{"flags kept", JournalEntry{Type: 0x8011, Flags: 0x8000, Payload: payload}},
		{"appended at", JournalEntry{Type: 0x0411, Payload: payload, AppendedAt: 1_796_666_321_768}},
		{"empty payload", JournalEntry{Type: 0x800C, Payload: []byte{}, AppendedAt: 1}},
		{"call", JournalEntry{Type: 0x040D, Payload: payload, AppendedAt: 1_796_666_321_781,
			Call: &CallMeta{ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE", CompletionRetentionMs: 86_400_000, JournalRetentionMs: 3_600_000}}},
		{"call without time", JournalEntry{Type: 0x040E, Payload: payload, Call: &CallMeta{ServiceType: "SERVICE"}}},
	}
	for _, tt := range tests {
		got, err := decodeEntry(encodeEntry(tt.e))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !reflect.DeepEqual(got, tt.e) {
			t.Errorf("%s: decoded %+v, want %+v", tt.name, got, tt.e)
		}
	}
}

func TestJournalEntryLegacyAndFlags(t *testing.T) {
	t.Parallel()
	// The form of entries stored before the extension: type, flags, payload.
	legacy := []byte{0x04, 0x0d, 0x00, 0x00, 0x0a, 0x01, 'x'}
	got, err := decodeEntry(legacy)
	if err != nil || got.Type != 0x040d || got.Flags != 0 || !bytes.Equal(got.Payload, legacy[4:]) || got.AppendedAt != 0 || got.Call != nil {
		t.Fatalf("legacy entry: %+v %v", got, err)
	}
	// An entry without extension is still stored in the legacy form.
	if b := encodeEntry(JournalEntry{Type: 0x040d, Payload: legacy[4:]}); !bytes.Equal(b, legacy) {
		t.Fatalf("plain entry stored as %x, want %x", b, legacy)
	}
	// The extension flag is the store's: an SDK's use of the bit is not kept.
	got, err = decodeEntry(encodeEntry(JournalEntry{Type: 0x0411, Flags: 0x8000 | entryExtFlag, Payload: legacy[4:]}))
	if err != nil || got.Flags != 0x8000 {
		t.Fatalf("flags %#x %v, want 0x8000", got.Flags, err)
	}
	// A damaged extension is an error, not a payload.
	if _, err := decodeEntry([]byte{0x04, 0x11, 0x40, 0x00, 0x09, 0x01}); err == nil {
		t.Fatal("extension longer than the value decoded")
	}
	// Bytes a later version appends to the extension are skipped.
	ext := []byte{0x04, 0x11, 0x40, 0x00, 0x03, 0x02, 0x00, 0xff, 'p'}
	got, err = decodeEntry(ext)
	if err != nil || got.AppendedAt != 1 || !bytes.Equal(got.Payload, []byte("p")) {
		t.Fatalf("extension with trailing bytes: %+v %v", got, err)
	}
}

// Bytes from disk never panic the entry decoder; what decodes encodes and decodes the same
// again.
func FuzzJournalEntry(f *testing.F) {
	payload := []byte{0x0a, 0x03, 'a', 'b', 'c'}
	for _, e := range []JournalEntry{
		{Type: 0x0400, Payload: payload},
		{Type: 0x8011, Flags: 0x8000, Payload: payload},
		{Type: 0x0411, Payload: payload, AppendedAt: 1_796_666_321_768},
		{Type: 0x800C, Payload: []byte{}, AppendedAt: 1},
		{Type: 0x040D, Payload: payload, AppendedAt: 1_796_666_321_781,
			Call: &CallMeta{ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE", CompletionRetentionMs: 86_400_000, JournalRetentionMs: 3_600_000}},
	} {
		f.Add(encodeEntry(e))
	}
	f.Add([]byte{0x04, 0x11, 0x40, 0x00, 0x09, 0x01})
	f.Add([]byte{0x04, 0x11, 0x40, 0x00, 0x03, 0x02, 0x00, 0xff, 'p'})
	f.Add([]byte{0x04, 0x11, 0x40, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x04, 0x11, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if e.Flags&entryExtFlag != 0 {
			t.Fatalf("decoded flags %#x keep the extension bit", e.Flags)
		}
		again, err := decodeEntry(encodeEntry(e))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(e.Payload) == 0 && len(again.Payload) == 0 {
			again.Payload = e.Payload // nil and empty are the same payload
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("re-decode differs:\n got %+v\nwant %+v", again, e)
		}
	})
}

// Every entry an attempt produces is encoded on every replica, and the journal is decoded at
// every attempt: a call's metadata costs no allocation beyond the entry's bytes (encoding)
// and its CallMeta (decoding).
func TestJournalEntryAllocations(t *testing.T) {
	call := JournalEntry{Type: 0x040D, Payload: make([]byte, 100), AppendedAt: 1_796_666_321_781,
		Call: &CallMeta{ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE", CompletionRetentionMs: 86_400_000, JournalRetentionMs: 86_400_000}}
	plain := JournalEntry{Type: 0x0411, Payload: make([]byte, 100), AppendedAt: 1_796_666_321_781}
	for _, e := range []JournalEntry{plain, call} {
		if n := testing.AllocsPerRun(100, func() { encodeEntry(e) }); n != 1 {
			t.Errorf("encoding an entry of type %#x (call metadata %v): %v allocations, want 1", e.Type, e.Call != nil, n)
		}
	}
	b := encodeEntry(call)
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeEntry(b) }); n != 1 {
		t.Errorf("decoding a call entry: %v allocations, want 1 (its CallMeta)", n)
	}
	if got, err := decodeEntry(b); err != nil || !reflect.DeepEqual(got, call) {
		t.Fatalf("decoded %+v %v", got, err)
	}
	odd := call
	odd.Call = &CallMeta{ServiceType: "SOMETHING_NEW", HandlerType: "ODD"}
	if got, err := decodeEntry(encodeEntry(odd)); err != nil || !reflect.DeepEqual(got, odd) {
		t.Fatalf("decoded %+v %v", got, err)
	}
}
