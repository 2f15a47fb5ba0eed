package raftstore

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"gorestate.dev/shared/metadata"
)

func versionedEqual(a, b map[string]metadata.Versioned) bool {
	return maps.EqualFunc(a, b, func(x, y metadata.Versioned) bool {
		return x.Version == y.Version && bytes.Equal(x.Value, y.Value)
	})
}

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		key      string
		value    []byte
		expected uint64
	}{
		{"k", []byte("v"), 0},
		{"", nil, math.MaxUint64},
		{"schema", bytes.Repeat([]byte{0xff}, 300), 1 << 40},
	}
	for _, tt := range tests {
		cmd, err := decodeCommand(encodePut(tt.key, tt.value, tt.expected))
		if err != nil {
			t.Fatal(err)
		}
		if cmd.typ != cmdPut || cmd.key != tt.key || cmd.expected != tt.expected || !bytes.Equal(cmd.value, tt.value) {
			t.Errorf("put %q: decoded %+v", tt.key, cmd)
		}
	}
	objs := map[string]metadata.Versioned{"a": {Version: 3, Value: []byte("x")}, "b": {Version: 1}, "": {Version: 9, Value: []byte{0}}}
	cmd, err := decodeCommand(encodeImport(objs))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.typ != cmdImport || !versionedEqual(cmd.objects, objs) {
		t.Errorf("import: decoded %+v", cmd)
	}
	snap, err := decodeSnapshot(encodeSnapshot(objs))
	if err != nil || !versionedEqual(snap, objs) {
		t.Errorf("snapshot: decoded %v, %v", snap, err)
	}
	if !bytes.Equal(encodeSnapshot(objs), encodeSnapshot(maps.Clone(objs))) {
		t.Error("equal maps encode differently")
	}
}

func TestDecodeRejectsCorruptBytes(t *testing.T) {
	put := encodePut("key", []byte("value"), 7)
	imp := encodeImport(map[string]metadata.Versioned{"a": {Version: 1, Value: []byte("x")}})
	for name, b := range map[string][]byte{
		"empty":             nil,
		"unknown type":      {99, 1, 2},
		"put key too long":  put[:3],
		"import truncated":  imp[:len(imp)-1],
		"import trailing":   append(bytes.Clone(imp), 0),
		"import huge count": {cmdImport, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"import duplicate":  {cmdImport, 2, 1, 'a', 1, 0, 1, 'a', 2, 0},
	} {
		if _, err := decodeCommand(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodeCommand = %v, want errCorrupt", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"wrong format": {2, 0},
		"trailing":     {snapshotFormat, 0, 0},
	} {
		if _, err := decodeSnapshot(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decodeSnapshot = %v, want errCorrupt", name, err)
		}
	}
}

// The FSM decides compare-and-set, import never moves a key back, a corrupt entry changes
// nothing, and a snapshot restores exactly what it captured.
func TestFSMApplySnapshotRestore(t *testing.T) {
	f := newFSM()
	apply := func(data []byte) applyResult {
		t.Helper()
		return f.Apply(&raft.Log{Index: 1, Data: data}).(applyResult)
	}
	if r := apply(encodePut("k", []byte("a"), 0)); r.err != nil || r.version != 1 {
		t.Fatalf("first put: %+v", r)
	}
	if r := apply(encodePut("k", []byte("b"), 0)); !errors.Is(r.err, metadata.ErrVersionMismatch) {
		t.Fatalf("stale put: %+v", r)
	}
	if r := apply([]byte{42}); r.err == nil {
		t.Fatal("corrupt entry applied")
	}
	apply(encodeImport(map[string]metadata.Versioned{"k": {Version: 1, Value: []byte("old")}, "m": {Version: 5, Value: []byte("m5")}}))
	if v, _ := f.get("k"); v.Version != 1 || string(v.Value) != "a" {
		t.Fatalf("import moved k to %d %q", v.Version, v.Value)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	apply(encodePut("m", []byte("m6"), 5)) // after the snapshot: must vanish on restore
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	want := map[string]metadata.Versioned{"k": {Version: 1, Value: []byte("a")}, "m": {Version: 5, Value: []byte("m5")}}
	if !versionedEqual(g.objs, want) {
		t.Fatalf("restored %v, want %v", g.objs, want)
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

func TestLogStore(t *testing.T) {
	s, err := openLogStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if first, _ := s.FirstIndex(); first != 0 {
		t.Fatalf("empty FirstIndex = %d", first)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: i / 4, Type: raft.LogCommand, Data: []byte{byte(i)}, AppendedAt: time.Unix(1700000000, int64(i))})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 11, Type: raft.LogNoop}); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 1 || last != 11 {
		t.Fatalf("indexes %d..%d, want 1..11", first, last)
	}
	var got raft.Log
	if err := s.GetLog(5, &got); err != nil {
		t.Fatal(err)
	}
	if got.Index != 5 || got.Term != 1 || got.Data[0] != 5 || !got.AppendedAt.Equal(logs[4].AppendedAt) {
		t.Fatalf("GetLog(5) = %+v", got)
	}
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(9, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	first, _ = s.FirstIndex()
	last, _ = s.LastIndex()
	if first != 5 || last != 8 {
		t.Fatalf("after deletes: indexes %d..%d, want 5..8", first, last)
	}
	if err := s.GetLog(3, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog of a deleted entry: %v", err)
	}

	if _, err := s.Get([]byte("absent")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get of an absent key: %v, want raft's \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("absent")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64 of an absent key: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n1")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// Stable keys must not show up as log entries.
	if last, _ := s.LastIndex(); last != 8 {
		t.Fatalf("LastIndex with stable keys present = %d", last)
	}
}

// Fuzz targets for every decoder of bytes read from disk or the network. They must never
// panic, and whatever decodes must encode back to something that decodes the same.

func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodePut("k", []byte("v"), 3))
	f.Add(encodeImport(map[string]metadata.Versioned{"a": {Version: 1, Value: []byte("x")}, "b": {Version: 2}}))
	f.Add([]byte{cmdImport, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := decodeCommand(b)
		if err != nil {
			return
		}
		var again []byte
		switch cmd.typ {
		case cmdPut:
			again = encodePut(cmd.key, cmd.value, cmd.expected)
		case cmdImport:
			again = encodeImport(cmd.objects)
		default:
			t.Fatalf("decoded unknown type %d", cmd.typ)
		}
		cmd2, err := decodeCommand(again)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if cmd2.key != cmd.key || cmd2.expected != cmd.expected || !bytes.Equal(cmd2.value, cmd.value) || !versionedEqual(cmd2.objects, cmd.objects) {
			t.Fatalf("round trip changed %+v into %+v", cmd, cmd2)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(map[string]metadata.Versioned{"schema": {Version: 4, Value: []byte("{}")}}))
	f.Add(encodeSnapshot(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again, err := decodeSnapshot(encodeSnapshot(objs))
		if err != nil || !versionedEqual(objs, again) {
			t.Fatalf("round trip: %v, %v vs %v", err, objs, again)
		}
		// Restore must accept what decodes.
		if err := newFSM().Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			t.Fatalf("Restore rejected decodable bytes: %v", err)
		}
	})
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog(&raft.Log{Index: 7, Term: 2, Type: raft.LogCommand, Data: []byte("d"), Extensions: []byte("e"), AppendedAt: time.Unix(1, 2)}))
	f.Add(encodeLog(&raft.Log{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			return
		}
		var l2 raft.Log
		if err := decodeLog(encodeLog(&l), &l2); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if l.Index != l2.Index || l.Term != l2.Term || l.Type != l2.Type || !bytes.Equal(l.Data, l2.Data) ||
			!bytes.Equal(l.Extensions, l2.Extensions) || !l.AppendedAt.Equal(l2.AppendedAt) {
			t.Fatalf("round trip changed %+v into %+v", l, l2)
		}
	})
}
