package localloglet

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// logletView is what recovery rebuilt of a loglet: what Open must get the same from
// summaries as from scanning.
type logletView struct {
	Trim, Durable bifrost.Offset
	Idx           []pos
	Sealed        bool
}

func viewOf(s *Store) map[uint64]logletView {
	out := map[uint64]logletView{}
	for id, l := range s.loglets {
		l.mu.RLock()
		out[id] = logletView{Trim: l.trim, Durable: l.durable, Idx: slices.Clone(l.idx), Sealed: l.sealed}
		l.mu.RUnlock()
	}
	return out
}

func segmentMaxLSNs(s *Store) map[uint32]map[uint64]bifrost.Offset {
	out := map[uint32]map[uint64]bifrost.Offset{}
	for id, sg := range s.segs {
		out[id] = sg.maxLSN
	}
	return out
}

func summaryFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+summaryExt))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// fillWithTrims writes three loglets over many small segments, trimming two of them as it
// goes (so that summaries are written of segments whose records are partly trimmed), and
// seals one.
func fillWithTrims(t *testing.T, dir string) {
	t.Helper()
	s := openStore(t, dir, Options{SegmentSize: 1 << 10, CacheSize: -1})
	ctx := testContext(t)
	for round := range 6 {
		appendN(t, s.Loglet(1), 1, 9)
		appendN(t, s.Loglet(2), 2, 5)
		appendN(t, s.Loglet(3), 3, 3)
		if err := s.Loglet(1).Trim(ctx, bifrost.Offset(round*7)); err != nil {
			t.Fatal(err)
		}
		if round == 3 {
			if err := s.Loglet(2).Trim(ctx, 12); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.Loglet(3).Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().SummaryErrors; got != 0 {
		t.Fatalf("%d summaries failed", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSummariesRecoverLikeAScan: opening through the summaries rebuilds exactly what a
// scan of every segment rebuilds, and reads return every untrimmed record.
func TestSummariesRecoverLikeAScan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fillWithTrims(t, dir)
	segs, sums := segmentFiles(t, dir), summaryFiles(t, dir)
	if len(segs) < 5 || len(sums) != len(segs)-1 {
		t.Fatalf("%d segments and %d summaries: want a summary of every segment but the last", len(segs), len(sums))
	}

	scanned := crashCopy(t, dir)
	for _, f := range summaryFiles(t, scanned) {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	a := openStore(t, dir, Options{})
	b := openStore(t, scanned, Options{})
	if got, want := viewOf(a), viewOf(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("through summaries:\n%+v\nscanning:\n%+v", got, want)
	}
	if got, want := segmentMaxLSNs(a), segmentMaxLSNs(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("segment contents through summaries %v, scanning %v", got, want)
	}
	if a.writeSeq != b.writeSeq {
		t.Fatalf("write sequence %d through summaries, %d scanning", a.writeSeq, b.writeSeq)
	}
	for id := uint64(1); id <= 3; id++ {
		checkLoglet(t, a.Loglet(id), id, a.Loglet(id).trim+1)
	}
	// The scan wrote the missing summaries again.
	if got := len(summaryFiles(t, scanned)); got != len(sums) {
		t.Fatalf("%d summaries after a scan, want %d", got, len(sums))
	}
	// Appends go on after a summarized open, and the store reopens the same.
	appendN(t, a.Loglet(1), 1, 20)
	want := viewOf(a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := viewOf(openStore(t, dir, Options{})); !reflect.DeepEqual(got, want) {
		t.Fatalf("after appending and reopening:\n%+v\nwant\n%+v", got, want)
	}
}

// TestBadSummaryIsIgnored: a summary that is damaged, cut short, of another segment, or
// that contradicts the other segments is not used: the segment is scanned (and a good
// summary written), and the store opens as if it had none.
func TestBadSummaryIsIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fillWithTrims(t, dir)
	clean := crashCopy(t, dir)
	want := viewOf(openStore(t, clean, Options{}))

	sums := summaryFiles(t, dir)
	first, ok := parseSegmentName(strings.TrimSuffix(filepath.Base(sums[0]), summaryExt) + segmentExt)
	if !ok {
		t.Fatalf("summary file %s", sums[0])
	}
	second, err := os.ReadFile(sums[1])
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"cut short", func(b []byte) []byte { return b[:len(b)-7] }},
		{"empty", func([]byte) []byte { return nil }},
		{"another segment's", func([]byte) []byte { return slices.Clone(second) }},
		{"contradicts the log", func(b []byte) []byte {
			// A well-formed summary claiming loglet 1's records start far beyond its
			// trim point: a gap the other segments cannot fill.
			size := int64(binaryLen(t, dir, first))
			sum, err := decodeSummary(b, first, size)
			if err != nil {
				t.Fatal(err)
			}
			sum.loglets[0].last += 1000
			return encodeSummaryForTest(first, size, sum)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := crashCopy(t, dir)
			path := filepath.Join(d, summaryName(first))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, d, Options{})
			if got := viewOf(s); !reflect.DeepEqual(got, want) {
				t.Fatalf("with a bad summary:\n%+v\nwant\n%+v", got, want)
			}
			rewritten, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeSummary(rewritten, first, int64(binaryLen(t, d, first))); err != nil {
				t.Fatalf("the summary was not rewritten: %v", err)
			}
		})
	}
}

// TestOrphanSummariesRemoved: summaries of deleted segments (a trim raced the writer) and
// temp files of interrupted writes are removed by Open.
func TestOrphanSummariesRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fillWithTrims(t, dir)
	for _, name := range []string{summaryName(9999), summaryName(1) + ".tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	openStore(t, dir, Options{})
	for _, f := range summaryFiles(t, dir) {
		// The name only: the temporary directory's may contain 9999 too.
		if filepath.Base(f) == summaryName(9999) {
			t.Fatalf("%s was not removed", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, summaryName(1)+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp summary: %v, want it removed", err)
	}
}

// TestTrimDeletesSummaries: a segment deleted by a trim takes its summary with it.
func TestTrimDeletesSummaries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{SegmentSize: 1 << 10})
	appendN(t, s.Loglet(1), 1, 60)
	before := len(summaryFiles(t, dir))
	if err := s.Loglet(1).Trim(testContext(t), 59); err != nil {
		t.Fatal(err)
	}
	segs, sums := segmentFiles(t, dir), summaryFiles(t, dir)
	if before < 3 || len(segs) != 1 || len(sums) != 0 {
		t.Fatalf("%d summaries before the trim; after it %d segments and %d summaries, want 1 and 0", before, len(segs), len(sums))
	}
}

// FuzzSummary: summaries are read from disk at every start. Whatever their bytes, decode
// returns a summary or an error, never panics, and what it accepts encodes back to the
// same bytes and names only records inside the segment.
func FuzzSummary(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{SegmentSize: 1 << 10, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	appendN(f, s.Loglet(1), 1, 30)
	appendN(f, s.Loglet(2), 2, 10)
	s.Close()
	seed, err := os.ReadFile(filepath.Join(dir, summaryName(1)))
	if err != nil {
		f.Fatal(err)
	}
	size := int64(binaryLen(f, dir, 1))
	f.Add(seed, size)
	f.Add(seed[:len(seed)-3], size)
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		sum, err := decodeSummary(b, 1, size)
		if err != nil {
			return
		}
		if got := encodeSummaryForTest(1, size, sum); !slices.Equal(got, b) {
			t.Fatalf("decoded summary encodes to %x, read %x", got, b)
		}
		for _, e := range sum.loglets {
			for _, p := range e.pos {
				if int64(p.off)+int64(recordSize(int(p.n))) > size {
					t.Fatalf("record at %d (%d bytes) past the segment's end %d", p.off, p.n, size)
				}
			}
		}
	})
}

func binaryLen(t testing.TB, dir string, seg uint32) int {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, segmentName(seg)))
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Size())
}

// encodeSummaryForTest encodes sum as writeSummary would.
func encodeSummaryForTest(id uint32, size int64, sum *segmentSummary) []byte {
	b := appendSummaryHeader(nil, id, size, sum.lastSeq, len(sum.loglets))
	for _, e := range sum.loglets {
		b = appendSummaryEntry(b, e.id, e.last, e.pos)
	}
	return appendSummaryCRC(b)
}
