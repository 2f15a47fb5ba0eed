package localloglet

import (
	"bytes"
	"errors"
	"testing"

	"gorestate.dev/shared/bifrost"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		loglet  uint64
		lsn     bifrost.Offset
		payload []byte
	}{
		{"empty payload", 0, 1, nil},
		{"small", 7, 42, []byte("hello")},
		{"max ids", ^uint64(0), ^bifrost.Offset(0), []byte{0}},
		{"large", 3, 1 << 40, bytes.Repeat([]byte("x"), 1<<20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := appendRecord([]byte("prefix"), tc.loglet, tc.lsn, tc.payload)[len("prefix"):]
			if len(b) != recordSize(len(tc.payload)) {
				t.Fatalf("encoded %d bytes, want %d", len(b), recordSize(len(tc.payload)))
			}
			rec, n, err := decodeRecord(append(b, "trailing"...))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) || rec.commit || rec.loglet != tc.loglet || rec.lsn != tc.lsn || !bytes.Equal(rec.payload, tc.payload) {
				t.Fatalf("decoded %d bytes as %+v", n, rec)
			}
			if cap(rec.payload) != len(rec.payload) {
				t.Fatal("payload capacity reaches into the next record")
			}
		})
	}

	rec, n, err := decodeRecord(appendCommit(nil, 99))
	if err != nil || n != headerSize || !rec.commit || rec.lsn != 99 {
		t.Fatalf("commit record decoded as %+v, %d, %v", rec, n, err)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	t.Parallel()
	good := appendRecord(nil, 1, 2, []byte("payload"))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShortRecord},
		{"short header", good[:headerSize-1], errShortRecord},
		{"short payload", good[:len(good)-1], errShortRecord},
		{"bad magic", mutate(func(b []byte) []byte { b[0]++; return b }), errBadMagic},
		{"bad crc", mutate(func(b []byte) []byte { b[4]++; return b }), errBadCRC},
		{"flipped payload", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), errBadCRC},
		{"flipped lsn", mutate(func(b []byte) []byte { b[20] ^= 1; return b }), errBadCRC},
		{"length too large", mutate(func(b []byte) []byte { b[11] = 0x7f; return b }), errBadLength},
		{"commit with payload", mutate(func(b []byte) []byte { b[11] |= 0x80; return b }), errBadLength},
		{"zero lsn", appendRecord(nil, 1, 0, nil), errZeroLSN},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeRecord(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("decode: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCommittedAfter(t *testing.T) {
	t.Parallel()
	rec := func(lsn bifrost.Offset) []byte { return appendRecord(nil, 1, lsn, []byte("data")) }
	commit := func(seq uint64) []byte { return appendCommit(nil, seq) }
	damaged := []byte("\x00garbage") // the damaged record b starts with
	cat := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{damaged}, parts...), nil) }
	cases := []struct {
		name    string
		b       []byte
		prevSeq uint64
		ok      bool
		want    bool
	}{
		{"nothing after", cat(), 4, true, false},
		{"zeros after", cat(make([]byte, 100)), 4, true, false},
		{"rest of the torn write", cat(rec(2), rec(3)), 4, true, false},
		{"torn write with its commit", cat(rec(2), commit(5)), 4, true, false},
		{"a later write's commit", cat(rec(2), commit(6)), 4, true, true},
		{"a record after the commit", cat(commit(5), rec(3)), 4, true, true},
		{"commit after unknown prev", cat(rec(2), commit(9)), 0, false, false},
		{"record after commit after unknown prev", cat(commit(9), rec(3)), 0, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := committedAfter(tc.b, tc.prevSeq, tc.ok); got != tc.want {
				t.Fatalf("committedAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTrimsRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []map[uint64]bifrost.Offset{
		{},
		{1: 5},
		{0: 1, 7: 100, ^uint64(0): ^bifrost.Offset(0)},
	}
	for _, trims := range cases {
		got, err := trimFile.decode(trimFile.encode(trims))
		if err != nil || len(got) != len(trims) {
			t.Fatalf("decode(encode(%v)) = %v, %v", trims, got, err)
		}
		for id, lsn := range trims {
			if got[id] != lsn {
				t.Fatalf("decode(encode(%v)) = %v", trims, got)
			}
		}
	}
	b := trimFile.encode(map[uint64]bifrost.Offset{1: 5})
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x10
		if _, err := trimFile.decode(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}
