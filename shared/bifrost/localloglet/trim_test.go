package localloglet

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gorestate.dev/shared/bifrost"
)

func TestTrim(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A 200-byte segment holds its leading commit record and two single-record writes of
	// these payloads (a 44 to 50 byte record plus a 28-byte commit record each).
	opts := Options{SegmentSize: 200, CacheSize: -1}
	s := openStore(t, dir, opts)
	ctx := testContext(t)
	a, b := s.Loglet(1), s.Loglet(2)
	appendN(t, a, 1, 1) // segment 1: a1 b1
	appendN(t, b, 2, 5) // segment 1: b1; 2: b2 b3; 3: b4 b5
	appendN(t, a, 1, 1) // segment 4: a2 b6
	appendN(t, b, 2, 1)
	if n := len(segmentFiles(t, dir)); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}

	if err := b.Trim(ctx, 5); err != nil {
		t.Fatal(err)
	}
	// Segments 2 and 3 hold only trimmed records; 1 still holds a1.
	for id, want := range map[uint32]bool{1: true, 2: false, 3: false, 4: true} {
		_, err := os.Stat(filepath.Join(dir, segmentName(id)))
		if exists := err == nil; exists != want {
			t.Errorf("segment %d exists: %v, want %v", id, exists, want)
		}
	}
	check := func(s *Store) {
		t.Helper()
		b := s.Loglet(2)
		for _, from := range []bifrost.Offset{0, 1, 5} {
			if _, err := b.Read(ctx, from, 1); !errors.Is(err, bifrost.ErrTrimmed) {
				t.Errorf("read b from %d: %v, want ErrTrimmed", from, err)
			}
		}
		if got := b.trimPoint(); got != 5 {
			t.Errorf("trim point %d, want 5", got)
		}
		checkLoglet(t, b, 2, 6)
		a := s.Loglet(1)
		checkLoglet(t, a, 1, a.trimPoint()+1)
	}
	check(s)
	// A restart with segment 1 kept while 2 and 3 are gone: b's LSNs have a gap below its
	// trim point.
	check(openStore(t, crashCopy(t, dir), opts))

	// Trimming never goes back, nor beyond the tail.
	if err := b.Trim(ctx, 3); err != nil || b.trimPoint() != 5 {
		t.Fatalf("trim back: %v, trim point %d", err, b.trimPoint())
	}
	if err := a.Trim(ctx, 100); err != nil || a.trimPoint() != 2 {
		t.Fatalf("trim beyond tail: %v, trim point %d, want 2", err, a.trimPoint())
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(1))); err == nil {
		t.Error("segment 1 kept after both its loglets trimmed past it")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart: trim points, tails and the records above them are all back, and a
	// fully trimmed loglet continues after its trim point.
	s = openStore(t, dir, opts)
	check(s)
	a = s.Loglet(1)
	if a.Tail() != 3 || a.trimPoint() != 2 {
		t.Fatalf("fully trimmed loglet: tail %d, trim point %d; want 3, 2", a.Tail(), a.trimPoint())
	}
	if _, err := a.Read(ctx, 2, 1); !errors.Is(err, bifrost.ErrTrimmed) {
		t.Errorf("read trimmed a: %v", err)
	}
	appendN(t, a, 1, 2)
	checkLoglet(t, a, 1, 3)
}

func TestTrimWithReaders(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{SegmentSize: 1 << 10, CacheSize: 512})
	l := s.Loglet(1)
	ctx := testContext(t)
	appendN(t, l, 1, 200)

	done := make(chan error)
	for range 4 {
		go func() {
			// Read from just above the trim point until the tail; trims race with reads,
			// so ErrTrimmed means start again above the new trim point.
			for next := bifrost.Offset(1); next < 201; {
				ents, err := l.Read(ctx, next, 5)
				if errors.Is(err, bifrost.ErrTrimmed) {
					next = l.trimPoint() + 1
					continue
				}
				if err != nil {
					done <- err
					return
				}
				for _, e := range ents {
					if string(e.Payload) != string(payloadFor(1, e.Offset)) {
						done <- errors.New("wrong payload")
						return
					}
				}
				next = ents[len(ents)-1].Offset + 1
			}
			done <- nil
		}()
	}
	for upTo := bifrost.Offset(10); upTo <= 190; upTo += 10 {
		if err := l.Trim(ctx, upTo); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	checkLoglet(t, l, 1, 191)
}

func TestTrimFileDamaged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	appendN(t, s.Loglet(1), 1, 3)
	if err := s.Loglet(1).Trim(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, trimFile.name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-6] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open with a damaged trim file: %v, want ErrCorrupt", err)
	}
}
