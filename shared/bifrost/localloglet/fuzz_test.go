package localloglet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// seedSegment is a valid segment file: a leading commit record, then writes of records of
// two loglets each ending with a commit record.
func seedSegment() []byte {
	b := appendCommit(nil, 0)
	for seq := uint64(1); seq <= 3; seq++ {
		b = appendRecord(b, 1, bifrost.Offset(seq), []byte("one"))
		b = appendRecord(b, 2, bifrost.Offset(seq), bytes.Repeat([]byte("two"), int(seq)))
		b = appendCommit(b, seq)
	}
	return b
}

func FuzzRecordDecode(f *testing.F) {
	f.Add(appendRecord(nil, 1, 1, []byte("x")))
	f.Add(appendCommit(nil, 3))
	f.Add(seedSegment())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err == nil {
			if n > len(b) || n != recordSize(len(rec.payload)) {
				t.Fatalf("decoded %d of %d bytes with a %d-byte payload", n, len(b), len(rec.payload))
			}
			var again []byte
			if rec.commit {
				again = appendCommit(nil, uint64(rec.lsn))
			} else {
				again = appendRecord(nil, rec.loglet, rec.lsn, rec.payload)
			}
			if !bytes.Equal(again, b[:n]) {
				t.Fatalf("re-encoding gives %x, decoded %x", again, b[:n])
			}
		}
		committedAfter(b, 1, true)
		committedAfter(b, 0, false)
	})
}

// FuzzRecovery opens a store whose only segment holds arbitrary bytes. Open must either
// fail with ErrCorrupt or recover a CRC-valid prefix of the file: the file is truncated to
// whole committed writes, and reading every loglet returns exactly their records.
func FuzzRecovery(f *testing.F) {
	seg := seedSegment()
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(append(bytes.Clone(seg), make([]byte, 50)...))
	flipped := bytes.Clone(seg)
	flipped[headerSize+headerSize+1] ^= 1
	f.Add(flipped)
	f.Add([]byte{})
	f.Fuzz(fuzzRecovery)
}

// fuzzRecovery is FuzzRecovery's body.
func fuzzRecovery(t *testing.T, data []byte) {
	dir := t.TempDir()
	path := filepath.Join(dir, segmentName(1))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open failed without ErrCorrupt: %v", err)
		}
		return
	}
	defer s.Close()

	// What survived must decode as whole committed writes.
	kept, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, kept) {
		t.Fatal("recovery changed the kept bytes")
	}
	want := make(map[uint64][]bifrost.Record)
	var pending []record
	for off := 0; off < len(kept); {
		rec, n, err := decodeRecord(kept[off:])
		if err != nil {
			t.Fatalf("kept file has damage at %d: %v", off, err)
		}
		off += n
		if !rec.commit {
			pending = append(pending, rec)
			continue
		}
		for _, r := range pending {
			want[r.loglet] = append(want[r.loglet], bifrost.Record{Offset: r.lsn, Payload: r.payload})
		}
		pending = pending[:0]
	}
	if len(pending) > 0 {
		t.Fatal("kept file ends with uncommitted records")
	}

	ctx := testContext(t)
	for id, ents := range want {
		l := s.Loglet(id)
		if tail := l.Tail(); tail != ents[len(ents)-1].Offset+1 {
			t.Fatalf("loglet %d: tail %d after last record %d", id, tail, ents[len(ents)-1].Offset)
		}
		got, err := l.Read(ctx, ents[0].Offset, len(ents))
		if err != nil {
			t.Fatalf("loglet %d: %v", id, err)
		}
		if len(got) != len(ents) {
			t.Fatalf("loglet %d: read %d records, file has %d", id, len(got), len(ents))
		}
		for i := range got {
			if got[i].Offset != ents[i].Offset || !bytes.Equal(got[i].Payload, ents[i].Payload) {
				t.Fatalf("loglet %d: read %v, file has %v", id, got[i], ents[i])
			}
		}
	}
}

// FuzzMetaFile: the trim-point and sealed-tail files are read from disk at every start;
// whatever their bytes, decode returns a map or an error, never panics, and what it
// accepts encodes back to the same bytes.
func FuzzMetaFile(f *testing.F) {
	f.Add(sealFile.encode(map[uint64]bifrost.Offset{}))
	f.Add(sealFile.encode(map[uint64]bifrost.Offset{1: 7, 1 << 32: 12}))
	f.Add(trimFile.encode(map[uint64]bifrost.Offset{3: 99}))
	f.Add([]byte("GRLSEAL1\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, file := range []offsetsFile{sealFile, trimFile} {
			m, err := file.decode(b)
			if err != nil {
				continue
			}
			if again := file.encode(m); !bytes.Equal(again, b) {
				t.Fatalf("%s: decoded %v from %x, which encodes to %x", file.name, m, b, again)
			}
		}
	})
}
