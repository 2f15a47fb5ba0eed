package localloglet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// crashCopy copies the store files in src to a new directory, as a crash would leave them:
// without anything Close would do.
func crashCopy(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	s := openStore(t, src, Options{SegmentSize: 4 << 10})
	for round := range 30 {
		for id := range uint64(3) {
			if round%int(id+1) == 0 {
				appendN(t, s.Loglet(id), id, 1)
			}
		}
	}
	tails := map[uint64]bifrost.Offset{}
	for id := range uint64(3) {
		tails[id] = s.Loglet(id).Tail()
	}
	dir := crashCopy(t, src) // the store is still open: no clean shutdown
	if len(segmentFiles(t, dir)) < 2 {
		t.Fatalf("want several segments, got %v", segmentFiles(t, dir))
	}

	r := openStore(t, dir, Options{SegmentSize: 4 << 10})
	for id, tail := range tails {
		l := r.Loglet(id)
		if got := l.Tail(); got != tail {
			t.Fatalf("loglet %d: tail %d after crash, want %d", id, got, tail)
		}
		checkLoglet(t, l, id, 1)
		appendN(t, l, id, 2)
		checkLoglet(t, l, id, 1)
	}
}

// lastWrite appends one record to loglet 2 of a store holding a few records of three
// loglets and returns the store's directory with the segment's size before and after the
// last append: [start, end) is that append's write.
func lastWrite(t *testing.T) (dir string, start, end int64) {
	t.Helper()
	dir = t.TempDir()
	s := openStore(t, dir, Options{})
	for id := range uint64(3) {
		appendN(t, s.Loglet(id), id, 3)
	}
	seg := filepath.Join(dir, segmentName(1))
	start = fileSize(t, seg)
	appendN(t, s.Loglet(2), 2, 1)
	end = fileSize(t, seg)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, start, end
}

// checkRecovered opens dir and checks that the segment was cut to size, that loglets 0 and
// 1 hold LSNs 1..3 and loglet 2 holds 1..tail2-1, and that appends continue at the right
// LSN.
func checkRecovered(t *testing.T, dir string, tail2 bifrost.Offset, size int64) {
	t.Helper()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if got := fileSize(t, filepath.Join(dir, segmentName(1))); got != size {
		t.Fatalf("segment is %d bytes after recovery, want %d", got, size)
	}
	for id, want := range []bifrost.Offset{4, 4, tail2} {
		l := s.Loglet(uint64(id))
		if got := l.Tail(); got != want {
			t.Fatalf("loglet %d tail %d, want %d", id, got, want)
		}
		checkLoglet(t, l, uint64(id), 1)
	}
	appendN(t, s.Loglet(2), 2, 1)
	checkLoglet(t, s.Loglet(2), 2, 1)
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	t.Parallel()
	dir, start, end := lastWrite(t)
	seg := filepath.Join(dir, segmentName(1))
	whole, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for cut := start; cut <= end; cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, segmentName(1)), whole[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			if cut < end {
				checkRecovered(t, d, 4, start) // the torn write is gone
			} else {
				checkRecovered(t, d, 5, end)
			}
		})
	}
}

func TestRecoveryDamage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// damage changes the segment; start and end delimit the last write.
		damage func(b []byte, start, end int64) []byte
		// tail2 is loglet 2's tail after recovery, or 0 if Open must fail naming the
		// offset wantOffset.
		tail2      bifrost.Offset
		wantOffset func(start, end int64) int64
	}{
		{
			name:   "flip in last record payload",
			damage: func(b []byte, start, end int64) []byte { b[start+headerSize+2] ^= 0x40; return b },
			tail2:  4,
		},
		{
			name:   "flip in last commit record",
			damage: func(b []byte, start, end int64) []byte { b[end-3] ^= 1; return b },
			tail2:  4,
		},
		{
			name:   "flip in last record magic",
			damage: func(b []byte, start, end int64) []byte { b[start] ^= 0xff; return b },
			tail2:  4,
		},
		{
			name:   "zeros appended",
			damage: func(b []byte, start, end int64) []byte { return append(b, make([]byte, 4096)...) },
			tail2:  5,
		},
		{
			name:   "uncommitted record appended",
			damage: func(b []byte, start, end int64) []byte { return appendRecord(b, 2, 5, payloadFor(2, 5)) },
			tail2:  5,
		},
		{
			name:       "flip in segment's leading commit record",
			damage:     func(b []byte, start, end int64) []byte { b[20] ^= 1; return b },
			wantOffset: func(start, end int64) int64 { return 0 },
		},
		{
			name:       "flip in first record",
			damage:     func(b []byte, start, end int64) []byte { b[2*headerSize+1] ^= 1; return b },
			wantOffset: func(start, end int64) int64 { return headerSize },
		},
		{
			name:       "length of first record grown",
			damage:     func(b []byte, start, end int64) []byte { b[headerSize+8] += 10; return b },
			wantOffset: func(start, end int64) int64 { return headerSize },
		},
		{
			name: "flip in the record before the last",
			damage: func(b []byte, start, end int64) []byte {
				b[start-headerSize-3] ^= 1 // last byte but 2 of its payload
				return b
			},
			wantOffset: func(start, end int64) int64 {
				return start - headerSize - int64(recordSize(len(payloadFor(2, 3))))
			},
		},
		{
			name:       "flip in the commit record before the last",
			damage:     func(b []byte, start, end int64) []byte { b[start-5] ^= 1; return b },
			wantOffset: func(start, end int64) int64 { return start - headerSize },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, start, end := lastWrite(t)
			seg := filepath.Join(dir, segmentName(1))
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seg, tc.damage(b, start, end), 0o644); err != nil {
				t.Fatal(err)
			}
			switch tc.tail2 {
			case 4:
				checkRecovered(t, dir, 4, start) // the last write is dropped
				return
			case 5:
				checkRecovered(t, dir, 5, end) // only what follows it is dropped
				return
			}
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a segment damaged before its last write")
			}
			want := fmt.Sprintf("%s at offset %d", seg, tc.wantOffset(start, end))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open error %q, want ErrCorrupt naming %q", err, want)
			}
		})
	}
}

// TestRecoveryTornMultiRecordWrite damages the start of a last write of several records
// while its later records and commit record stay intact, as a crash can leave a write
// whose pages reached the disk out of order: the whole write is dropped, not reported.
func TestRecoveryTornMultiRecordWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	l := s.Loglet(1)
	appendN(t, l, 1, 2)
	seg := filepath.Join(dir, segmentName(1))
	start := fileSize(t, seg)
	if _, err := l.Append(testContext(t), [][]byte{payloadFor(1, 3), payloadFor(1, 4), payloadFor(1, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[start : start+headerSize+5])
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	if got := s.Loglet(1).Tail(); got != 3 {
		t.Fatalf("tail %d, want 3: a torn write is dropped whole", got)
	}
	checkLoglet(t, s.Loglet(1), 1, 1)
	if got := fileSize(t, seg); got != start {
		t.Fatalf("segment size %d after recovery, want %d", got, start)
	}
}

func TestRecoveryDamagedSealedSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{SegmentSize: 1 << 10})
	appendN(t, s.Loglet(1), 1, 40)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	sum, err := loadSummary(dir, 2, fileSize(t, segs[1]))
	if err != nil {
		t.Fatalf("summary of the second segment: %v", err)
	}
	record := int(sum.loglets[0].pos[0].off) // the segment's first data record
	cases := []struct {
		name   string
		damage func(b []byte) []byte
		// sameSize: the damage keeps the file's size, so its summary still matches and
		// Open trusts it; the read of the damaged record reports the damage instead.
		sameSize bool
	}{
		{"flip at its end", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, true},
		{"flip in a record", func(b []byte) []byte { b[record+4] ^= 1; return b }, true},
		{"cut short", func(b []byte) []byte { return b[:len(b)-10] }, false},
		{"uncommitted record appended", func(b []byte) []byte { return appendRecord(b, 1, 99, nil) }, false},
	}
	for _, tc := range cases {
		for _, withSummary := range []bool{true, false} {
			if tc.name == "flip at its end" && withSummary {
				continue // a commit record: never read through a summary, and holds no data
			}
			t.Run(fmt.Sprintf("%s/summary=%v", tc.name, withSummary), func(t *testing.T) {
				d := crashCopy(t, dir)
				sealed := filepath.Join(d, filepath.Base(segs[1]))
				if !withSummary {
					if err := os.Remove(strings.TrimSuffix(sealed, segmentExt) + summaryExt); err != nil {
						t.Fatal(err)
					}
				}
				b, err := os.ReadFile(sealed)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(sealed, tc.damage(b), 0o644); err != nil {
					t.Fatal(err)
				}
				s, err := Open(d, Options{})
				if withSummary && tc.sameSize {
					// Read everything: the damaged record is in the second segment.
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					defer s.Close()
					for next := bifrost.Offset(1); err == nil && next < 40; {
						var ents []bifrost.Record
						ents, err = s.Loglet(1).Read(testContext(t), next, 100)
						next += bifrost.Offset(len(ents))
					}
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), sealed+" at offset") {
						t.Fatalf("reading past the damage: %v, want ErrCorrupt naming %s", err, sealed)
					}
					return
				}
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded with a damaged sealed segment")
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), sealed+" at offset") {
					t.Fatalf("Open error %q, want ErrCorrupt naming %s", err, sealed)
				}
			})
		}
	}
}

func TestRecoveryRejectsLSNGap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		lsns []bifrost.Offset
		want string
	}{
		{"gap", []bifrost.Offset{1, 2, 4}, "lsn 4 where 3 was expected"},
		{"not from 1", []bifrost.Offset{2}, "lsn 2 where 1 was expected"},
		{"repeat", []bifrost.Offset{1, 1}, "lsn 1 after lsn 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var b []byte
			for _, lsn := range tc.lsns {
				b = appendRecord(b, 5, lsn, []byte("x"))
			}
			b = appendCommit(b, 1)
			if err := os.WriteFile(filepath.Join(dir, segmentName(1)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open error %q, want ErrCorrupt with %q", err, tc.want)
			}
		})
	}
}

func TestSegmentRollOver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := Options{SegmentSize: 2 << 10, CacheSize: -1}
	s := openStore(t, dir, opts)
	big := bytes.Repeat([]byte("b"), 5<<10) // larger than a segment: gets one to itself
	ctx := testContext(t)
	appendN(t, s.Loglet(1), 1, 30)
	if _, err := s.Loglet(2).Append(ctx, [][]byte{big}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s.Loglet(1), 1, 30)
	segs := segmentFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments of %d bytes for 60 small records and a big one", len(segs), opts.SegmentSize)
	}
	for _, seg := range segs[:len(segs)-1] {
		if size := fileSize(t, seg); size > opts.SegmentSize && size < int64(len(big)) {
			t.Errorf("%s is %d bytes, over the segment size without a big record", seg, size)
		}
	}
	check := func(s *Store) {
		t.Helper()
		checkLoglet(t, s.Loglet(1), 1, 1) // reads cross segment boundaries
		ents, err := s.Loglet(2).Read(ctx, 1, 10)
		if err != nil || len(ents) != 1 || !bytes.Equal(ents[0].Payload, big) {
			t.Fatalf("big record: %d entries, %v", len(ents), err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openStore(t, dir, opts))
}
