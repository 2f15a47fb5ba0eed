package logstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/bifrost"
)

// crash stops s the way a killed process would: no final checkpoint, the WAL file left
// as it is.
func crash(t *testing.T, s *Store) {
	t.Helper()
	if !s.stop() {
		t.Fatal("crash of a closed store")
	}
	_ = s.wal.close()
	_ = s.closeDBs()
}

// newDroppingStore opens a store whose batches reach the WAL but never goleveldb, as if a
// crash took every goleveldb write since the last checkpoint: only the WAL replay can
// bring them back. It must not roll WAL files (checkpoints would then be wrong).
func newDroppingStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{WALFileSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.dropApplies = true
	return s
}

func readAllRecords(t *testing.T, s *Store, loglet uint64, from, to bifrost.Offset) []string {
	t.Helper()
	var out []string
	for next := from; next < to; {
		recs, n, err := s.ReadRecords(loglet, next, to-1, 1<<30, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			out = append(out, string(r.Payload))
		}
		next = n
	}
	return out
}

func wantRecords(t *testing.T, s *Store, loglet uint64, n int) {
	t.Helper()
	got := readAllRecords(t, s, loglet, 1, bifrost.Offset(n+1))
	if len(got) != n {
		t.Fatalf("loglet %d: read %d records, want %d", loglet, len(got), n)
	}
	for i, p := range got {
		if want := string(payloads(1+i, 1)[0]); p != want {
			t.Fatalf("loglet %d offset %d: %q, want %q", loglet, i+1, p, want)
		}
	}
}

// writeSingles writes records first..first+n-1 of loglet, one per batch.
func writeSingles(t *testing.T, s *Store, loglet uint64, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		write(t, s, Write{Loglet: loglet, First: bifrost.Offset(i), Payloads: payloads(i, 1)})
	}
}

// onlyWALFile returns the path of the one WAL file of the store in dir.
func onlyWALFile(t *testing.T, dir string) string {
	t.Helper()
	wdir := filepath.Join(dir, "wal")
	files, err := walFiles(wdir)
	if err != nil || len(files) != 1 {
		t.Fatalf("WAL files %v %v, want one", files, err)
	}
	return filepath.Join(wdir, walName(files[0]))
}

// Records acknowledged but held by goleveldb only in what a crash lost come back from
// the WAL.
func TestWALReplaysWhatGoleveldbLost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newDroppingStore(t, dir)
	for i := range 50 {
		write(t, s, Write{Loglet: 1, First: bifrost.Offset(1 + 2*i), Payloads: payloads(1+2*i, 2)})
	}
	if got := readAllRecords(t, s, 1, 1, 101); len(got) != 0 {
		t.Fatalf("the dropping store applied %d records", len(got))
	}
	crash(t, s)

	s = open(t, dir, Options{})
	wantRecords(t, s, 1, 100)
	st, err := s.LoadLoglet(1)
	if err != nil || st.LocalTail != 101 {
		t.Fatalf("local tail %+v %v, want 101", st, err)
	}
	// Replayed and checkpointed: a second open replays nothing and still has them.
	crash(t, s)
	s = open(t, dir, Options{})
	wantRecords(t, s, 1, 100)
}

// WAL files are reused once checkpointed: the directory stays small however much is
// written, and a crash at any point loses nothing acknowledged.
func TestWALRecyclesFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{WALFileSize: 8 << 10}
	s := open(t, dir, opts)
	const n = 600
	writeSingles(t, s, 7, 1, n)
	files, err := walFiles(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 2 {
		t.Fatalf("%d WAL files after %d writes of %d-byte files, want at most 2", len(files), n, opts.WALFileSize)
	}
	crash(t, s)
	s = open(t, dir, opts)
	wantRecords(t, s, 7, n)
	writeSingles(t, s, 7, n+1, 300)
	crash(t, s)
	s = open(t, dir, opts)
	wantRecords(t, s, 7, n+300)
}

// A batch larger than a WAL file gets a file of its own.
func TestWALLargeBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{WALFileSize: 4 << 10}
	s := open(t, dir, opts)
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 2)})
	big := payloads(3, 500) // ~6 KiB in one batch
	write(t, s, Write{Loglet: 1, First: 3, Payloads: big})
	write(t, s, Write{Loglet: 1, First: 503, Payloads: payloads(503, 2)})
	crash(t, s)
	s = open(t, dir, opts)
	wantRecords(t, s, 1, 504)
}

// The WAL ends at the first damaged record (a write a crash tore): what came before is
// replayed, and the store opens.
func TestWALEndsAtDamage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newDroppingStore(t, dir)
	writeSingles(t, s, 1, 1, 10)
	crash(t, s)
	path := onlyWALFile(t, dir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Find the 8th record and flip a byte of its payload.
	off := 0
	for range 7 {
		_, _, size, err := decodeWALRecord(data[off:])
		if err != nil {
			t.Fatal(err)
		}
		off += size
	}
	data[off+walHeader+3] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	wantRecords(t, s, 1, 7)
	if got := readAllRecords(t, s, 1, 8, 11); len(got) != 0 {
		t.Fatalf("records after the damage replayed: %q", got)
	}
}

// Stale records of a recycled file, valid as they are, never count: their sequence
// numbers do not follow.
func TestWALIgnoresStaleRecords(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := openWAL(dir, 4<<10, 0, datasync)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // three files' worth: the first file is used twice
		if _, err := w.append(bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
			t.Fatal(err)
		}
		if !w.fits(100) {
			if err := w.recycle(); err != nil { // as if checkpointed
				t.Fatal(err)
			}
		}
	}
	_ = w.close()
	last := uint64(100)
	var got []uint64
	end, err := replayWAL(dir, 95, func(seq uint64, payload []byte) error {
		if payload[0] != byte(seq-1) {
			t.Fatalf("record %d has the payload of record %d", seq, payload[0]+1)
		}
		got = append(got, seq)
		return nil
	})
	if err != nil || end != last || len(got) != 5 || got[0] != 96 {
		t.Fatalf("replay after 95: %v, end %d, %v; want 96..100", got, end, err)
	}
}

func TestFormatVersionUpgrade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A version 1 store: every batch synced in goleveldb, no WAL.
	_ = db.Put(keyFormat, []byte{0, 0, 0, 1}, nil)
	_ = db.Put(dataKey(3, 1), []byte("record-1"), nil)
	db.Close()
	s := open(t, dir, Options{})
	wantRecords(t, s, 3, 1)
	wantFormat(t, s)
	write(t, s, Write{Loglet: 3, First: 2, Payloads: payloads(2, 1)})
	crash(t, s)
	s = open(t, dir, Options{})
	wantRecords(t, s, 3, 2)
}

// A failed WAL sync fails the store: nothing is acknowledged on top of it.
func TestWALSyncFailure(t *testing.T) {
	t.Parallel()
	fail := false
	opts := Options{sync: func(f *os.File) error {
		if fail {
			return os.ErrInvalid
		}
		return datasync(f)
	}}
	s := open(t, t.TempDir(), opts)
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 1)})
	fail = true
	done := make(chan error, 1)
	if err := s.Enqueue(Write{Loglet: 1, First: 2, Payloads: payloads(2, 1)}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "sync WAL") {
		t.Fatalf("write with a failing sync: %v", err)
	}
	if s.Err() == nil {
		t.Fatal("the store is not in fail-safe mode")
	}
}

func FuzzWALRecord(f *testing.F) {
	f.Add(appendWALRecord(nil, 1, []byte("payload")))
	f.Add(appendWALRecord(appendWALRecord(nil, 7, nil), 8, []byte{1, 2, 3}))
	f.Add([]byte{})
	f.Add(make([]byte, walHeader))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, payload, size, err := decodeWALRecord(b)
		if err != nil {
			return
		}
		if size > len(b) || size != walHeader+len(payload) {
			t.Fatalf("size %d of %d bytes, payload %d", size, len(b), len(payload))
		}
		if again := appendWALRecord(nil, seq, payload); !bytes.Equal(again, b[:size]) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b[:size])
		}
	})
}

// A crash after a roll renamed a spare to the name of the next record, before that record
// was written, leaves a spare with that name; a first batch larger than a WAL file then
// gets a file of the same name. Neither may break the next roll, nor lose a record.
func TestWALSpareNamedLikeTheNextFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{WALFileSize: 4 << 10}
	s := open(t, dir, opts)
	writeSingles(t, s, 1, 1, 5)
	if err := s.Close(); err != nil { // checkpoint: record 5
		t.Fatal(err)
	}
	if err := os.Rename(onlyWALFile(t, dir), filepath.Join(dir, "wal", walName(6))); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, opts)
	write(t, s, Write{Loglet: 1, First: 6, Payloads: payloads(6, 500)}) // larger than a file
	write(t, s, Write{Loglet: 1, First: 506, Payloads: payloads(506, 1)})
	crash(t, s)
	s = open(t, dir, opts)
	wantRecords(t, s, 1, 506)
}

// A WAL file named after a record the log never reaches means records are missing: the
// store refuses to open rather than drop what follows.
func TestWALRefusesMissingRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newDroppingStore(t, dir)
	writeSingles(t, s, 1, 1, 3)
	crash(t, s)
	if err := os.Rename(onlyWALFile(t, dir), filepath.Join(dir, "wal", walName(9))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "records are missing") {
		t.Fatalf("Open with records missing = %v", err)
	}
}

// A version 2 store (checkpoint under "!walcheckpoint") whose newest records are in the WAL
// only opens with every record: the upgrade moves the checkpoint, and the replay starts
// after it.
func TestFormatVersion2Upgrade(t *testing.T) {
	t.Parallel()
	dir := copyFixture(t, "v3store")
	// Rewrite the version 3 store as version 2 laid it out.
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := db.Get(keyWALCheckpoint, nil)
	if err != nil || binary.BigEndian.Uint64(cp) == 0 {
		t.Fatalf("checkpoint before the rewrite: %v %v", cp, err)
	}
	var b leveldb.Batch
	b.Put(keyWALCheckpointV2, cp)
	b.Delete(keyWALCheckpoint)
	b.Put(keyFormat, []byte{0, 0, 0, 2})
	if err := db.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, dir, Options{})
	wantRecords(t, s, 1, 30)
	if _, err := s.meta.Get(keyWALCheckpointV2, nil); !errors.Is(err, leveldb.ErrNotFound) {
		t.Fatalf("the version 2 checkpoint is still there: %v", err)
	}
	wantFormat(t, s)
	crash(t, s)
	s = open(t, dir, Options{})
	wantRecords(t, s, 1, 30)
}

// copyFixture copies testdata/name into a new directory and returns it.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// wantFormat checks that s has the current format in both databases and nothing but
// records and the format in the record database.
func wantFormat(t *testing.T, s *Store) {
	t.Helper()
	for _, db := range []*leveldb.DB{s.db, s.meta} {
		if v, found, err := readFormat(db); err != nil || !found || v != FormatVersion {
			t.Fatalf("format after the upgrade: %d %v %v", v, found, err)
		}
	}
	var left []string
	if err := s.eachMetadataKey(func(k, _ []byte) { left = append(left, string(k)) }); err != nil || len(left) > 0 {
		t.Fatalf("metadata left in the record database: %q %v", left, err)
	}
}

// A store written by format 3 (testdata/v3store, made by TestMakeV3Fixture with the
// format 3 code: one database, records of loglet 1 at 21..30 and its global tail 25 in the
// WAL only) opens with all its records and metadata, also after a crash right after the
// upgrade and after one halfway through it.
func TestFormatVersion3Upgrade(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *Store) {
		t.Helper()
		wantRecords(t, s, 1, 30)
		wantFormat(t, s)
		for _, want := range []struct {
			loglet    uint64
			st        LogletState
			sequencer string
		}{
			{1, LogletState{LocalTail: 31, GlobalTail: 25}, "n1:3"},
			{2, LogletState{LocalTail: 4, GlobalTail: 4, Sealed: true}, "n2:1"},
			{3, LogletState{LocalTail: 11, GlobalTail: 11, TrimPoint: 4}, ""},
		} {
			st, err := s.LoadLoglet(want.loglet)
			if err != nil {
				t.Fatal(err)
			}
			seq := ""
			if st.Sequencer != nil {
				seq = fmt.Sprintf("%s:%d", st.Sequencer.Name, st.Sequencer.Generation)
			}
			st.Sequencer = nil
			if st != want.st || seq != want.sequencer {
				t.Errorf("loglet %d: %+v sequencer %q, want %+v %q", want.loglet, st, seq, want.st, want.sequencer)
			}
		}
		if recs, _, err := s.ReadRecords(3, 1, 100, 1<<20, 100); err != nil || len(recs) != 6 || recs[0].Offset != 5 {
			t.Errorf("loglet 3 after its trim to 4: %v %v", recs, err)
		}
		if node, ok, err := s.Marker(); err != nil || !ok || node != "n1" {
			t.Errorf("marker %q %v %v", node, ok, err)
		}
		if lost, err := s.ReadLost(); err != nil || !slices.Equal(lost.Loglets, []uint64{9}) || lost.Segments[4] != 2 {
			t.Errorf("lost %+v %v", lost, err)
		}
	}
	t.Run("open", func(t *testing.T) {
		dir := copyFixture(t, "v3store")
		s := open(t, dir, Options{})
		check(t, s)
		write(t, s, Write{Loglet: 1, First: 31, Payloads: payloads(31, 1)})
		crash(t, s)
		s = open(t, dir, Options{})
		wantRecords(t, s, 1, 31)
		wantFormat(t, s)
	})
	t.Run("crash halfway", func(t *testing.T) {
		// The metadata was copied but not yet dropped from the record database.
		dir := copyFixture(t, "v3store")
		s := open(t, dir, Options{})
		crash(t, s)
		db, err := leveldb.OpenFile(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b leveldb.Batch
		b.Put(keyFormat, []byte{0, 0, 0, 3})
		b.Put(metaKey(metaSeal, 1), nil) // a stale copy would seal loglet 1
		if err := db.Write(&b, nil); err != nil {
			t.Fatal(err)
		}
		db.Close()
		s = open(t, dir, Options{})
		check(t, s)
	})
	t.Run("metadata missing", func(t *testing.T) {
		dir := copyFixture(t, "v3store")
		s := open(t, dir, Options{})
		crash(t, s)
		if err := os.RemoveAll(filepath.Join(dir, "meta")); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "metadata database (meta/) is missing") {
			t.Fatalf("Open = %v", err)
		}
	})
}

// Records of every size, direct or buffered, replay whole from the WAL alone: in
// particular a direct write, which writes again the start of its first block, leaves the
// record before it intact, also when records end exactly on a block boundary or span
// several blocks.
func TestWALRecordSizes(t *testing.T) {
	t.Parallel()
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newDroppingStore(t, dir)
			s.wal.noDirect = !direct
			// A one-record batch with a payload of p bytes is a WAL record of 36 + p bytes
			// below 128 and 37 + p from there (WAL header 16, then kind, key length, the
			// 17-byte key, the value's length, the value): the third ends exactly on the
			// first block boundary, the fifth spans four blocks.
			var want [][]byte
			sizes := []int{1, 100, 3886, 4096, 3*walBlock + 17, 5, 0, 9000, 1}
			for i, n := range sizes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				want = append(want, p)
				write(t, s, Write{Loglet: 1, First: bifrost.Offset(i + 1), Payloads: [][]byte{p}})
				if i == 2 && s.wal.off != walBlock {
					t.Fatalf("the third record ends at %d, want %d", s.wal.off, walBlock)
				}
			}
			if got := s.wal.direct; got != direct && (direct || got) {
				if direct {
					t.Skipf("the filesystem of %s has no direct I/O", dir)
				}
				t.Fatalf("direct = %v, want %v", got, direct)
			}
			crash(t, s)
			s = open(t, dir, Options{})
			recs, _, err := s.ReadRecords(1, 1, 100, 1<<30, 100)
			if err != nil || len(recs) != len(want) {
				t.Fatalf("read %d records, %v; want %d", len(recs), err, len(want))
			}
			for i, r := range recs {
				if !bytes.Equal(r.Payload, want[i]) {
					t.Fatalf("record %d: %d bytes, want %d", i+1, len(r.Payload), len(want[i]))
				}
			}
		})
	}
}

// A filesystem that opens files for direct I/O but refuses the writes (EINVAL) gets
// buffered writes from then on, and nothing is lost.
func TestWALDirectWriteRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newDroppingStore(t, dir)
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 1)})
	if !s.wal.direct {
		t.Skipf("the filesystem of %s has no direct I/O", dir)
	}
	// A buffer that is not block-aligned in memory: the kernel refuses the direct write.
	s.wal.buf = alignedBuf(128 << 10)[1:1]
	write(t, s, Write{Loglet: 1, First: 2, Payloads: payloads(2, 1)})
	if s.wal.direct || !s.wal.noDirect {
		t.Fatalf("direct %v noDirect %v after a refused direct write", s.wal.direct, s.wal.noDirect)
	}
	write(t, s, Write{Loglet: 1, First: 3, Payloads: payloads(3, 1)})
	crash(t, s)
	s = open(t, dir, Options{})
	wantRecords(t, s, 1, 3)
}

// A new store whose creation stopped after the metadata database got its format version,
// before the record database did, opens; a store whose record database is empty but whose
// metadata says it held something (a marker) is refused as damaged.
func TestInterruptedCreation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		marker  bool
		wantErr string
	}{{"format only", false, ""}, {"with a marker", true, "log store damaged"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			meta, err := leveldb.OpenFile(filepath.Join(dir, "meta"), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = meta.Put(keyFormat, u32(FormatVersion), nil)
			if tc.marker {
				_ = meta.Put(keyMarker, []byte("n1"), nil)
			}
			meta.Close()
			s, err := Open(dir, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			wantFormat(t, s)
			write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 1)})
			wantRecords(t, s, 1, 1)
		})
	}
}
