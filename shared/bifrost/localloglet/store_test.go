package localloglet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
)

// testTimeout bounds every blocking call of a test, so a bug fails instead of hanging.
const testTimeout = 30 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payloadFor is the deterministic payload of a loglet's LSN, so reads can be checked
// without remembering what was written.
func payloadFor(loglet uint64, lsn bifrost.Offset) []byte {
	p := fmt.Appendf(nil, "loglet=%d lsn=%d|", loglet, lsn)
	return append(p, bytes.Repeat([]byte{byte(lsn)}, int(lsn%37))...)
}

// appendN appends records tail..tail+n-1 of loglet l one by one, synchronously.
func appendN(t testing.TB, l *Loglet, id uint64, n int) {
	t.Helper()
	ctx := testContext(t)
	for range n {
		want := l.LastAssigned() + 1
		got, err := l.Append(ctx, [][]byte{payloadFor(id, want)})
		if err != nil {
			t.Fatalf("append to loglet %d: %v", id, err)
		}
		if got != want {
			t.Fatalf("append to loglet %d got lsn %d, want %d", id, got, want)
		}
	}
}

// checkLoglet reads every record of loglet l from from to its tail and checks that the
// LSNs are contiguous and the payloads are payloadFor's.
func checkLoglet(t testing.TB, l *Loglet, id uint64, from bifrost.Offset) {
	t.Helper()
	ctx := testContext(t)
	tail := l.Tail()
	for next := from; next < tail; {
		ents, err := l.Read(ctx, next, 7)
		if err != nil {
			t.Fatalf("read loglet %d from %d: %v", id, next, err)
		}
		for _, e := range ents {
			if e.Offset != next {
				t.Fatalf("loglet %d: got lsn %d, want %d", id, e.Offset, next)
			}
			if want := payloadFor(id, e.Offset); !bytes.Equal(e.Payload, want) {
				t.Fatalf("loglet %d lsn %d: payload %q, want %q", id, e.Offset, e.Payload, want)
			}
			next++
		}
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRoundTripAcrossLoglets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"no cache", Options{CacheSize: -1}},
		{"tiny cache", Options{CacheSize: 300}},
		{"small segments", Options{SegmentSize: 1 << 10, CacheSize: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openStore(t, dir, tc.opts)
			counts := map[uint64]int{0: 5, 1: 40, 7: 1, 1 << 40: 17}
			for round := range 40 {
				for id, n := range counts {
					if round < n {
						appendN(t, s.Loglet(id), id, 1)
					}
				}
			}
			for id, n := range counts {
				l := s.Loglet(id)
				if got := l.Tail(); got != bifrost.Offset(n+1) {
					t.Errorf("loglet %d tail %d, want %d", id, got, n+1)
				}
				checkLoglet(t, l, id, 1)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			// The same after a restart, where every read goes to disk first.
			s = openStore(t, dir, tc.opts)
			for id, n := range counts {
				l := s.Loglet(id)
				if got := l.Tail(); got != bifrost.Offset(n+1) {
					t.Errorf("after restart: loglet %d tail %d, want %d", id, got, n+1)
				}
				checkLoglet(t, l, id, 1)
			}
			appendN(t, s.Loglet(1), 1, 3)
			checkLoglet(t, s.Loglet(1), 1, 1)
		})
	}
}

func TestAppendBatch(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	l := s.Loglet(3)
	ctx := testContext(t)
	for _, size := range []int{1, 4, 100} {
		first := l.Tail()
		batch := make([][]byte, size)
		for i := range batch {
			batch[i] = payloadFor(3, first+bifrost.Offset(i))
		}
		got, err := l.Append(ctx, batch)
		if err != nil || got != first {
			t.Fatalf("append batch of %d: got %d, %v; want %d", size, got, err, first)
		}
		if tail := l.Tail(); tail != first+bifrost.Offset(size) {
			t.Fatalf("tail %d after batch of %d at %d", tail, size, first)
		}
	}
	checkLoglet(t, l, 3, 1)
}

func TestAppendCopiesPayloads(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	l := s.Loglet(1)
	ctx := testContext(t)
	p := []byte("original")
	if _, err := l.Append(ctx, [][]byte{p}); err != nil {
		t.Fatal(err)
	}
	copy(p, "CLOBBERED")
	ents, err := l.Read(ctx, 1, 1)
	if err != nil || string(ents[0].Payload) != "original" {
		t.Fatalf("read %v, %v; want the payload as it was appended", ents, err)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	l := s.Loglet(9)
	appendN(t, l, 9, 10)
	if err := l.Trim(testContext(t), 2); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name     string
		ctx      context.Context
		from     bifrost.Offset
		max      int
		wantLSNs []bifrost.Offset
		wantErr  error
	}{
		{"middle", canceled, 4, 3, []bifrost.Offset{4, 5, 6}, nil},
		{"up to tail", canceled, 8, 100, []bifrost.Offset{8, 9, 10}, nil},
		{"last", canceled, 10, 1, []bifrost.Offset{10}, nil},
		{"first after trim", canceled, 3, 1, []bifrost.Offset{3}, nil},
		{"at trim point", canceled, 2, 5, nil, bifrost.ErrTrimmed},
		{"from zero", canceled, 0, 5, nil, bifrost.ErrTrimmed},
		{"at tail blocks", canceled, 11, 5, nil, context.Canceled},
		{"beyond tail blocks", canceled, 50, 5, nil, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ents, err := l.Read(tc.ctx, tc.from, tc.max)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Read(%d, %d) error %v, want %v", tc.from, tc.max, err, tc.wantErr)
			}
			var got []bifrost.Offset
			for _, e := range ents {
				got = append(got, e.Offset)
				if !bytes.Equal(e.Payload, payloadFor(9, e.Offset)) {
					t.Errorf("lsn %d: payload %q", e.Offset, e.Payload)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantLSNs) {
				t.Fatalf("Read(%d, %d) = %v, want %v", tc.from, tc.max, got, tc.wantLSNs)
			}
		})
	}
	if _, err := l.Read(canceled, 3, 0); err == nil {
		t.Error("Read with max 0 succeeded")
	}
}

func TestInvalidAppends(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	l := s.Loglet(1)
	ctx := testContext(t)
	// One allocation serves every oversized case; the pages are never touched.
	big := make([]byte, MaxPayloadSize+1)
	cases := []struct {
		name     string
		payloads [][]byte
		want     error
	}{
		{"empty batch", nil, ErrEmptyBatch},
		{"payload too large", [][]byte{big}, ErrTooLarge},
		{"batch too large", [][]byte{big[:MaxPayloadSize], big[:MaxPayloadSize], big[:1]}, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Append(ctx, tc.payloads); !errors.Is(err, tc.want) {
				t.Fatalf("append: %v, want %v", err, tc.want)
			}
		})
	}
	// A rejected append takes no LSN.
	appendN(t, l, 1, 2)
	checkLoglet(t, l, 1, 1)
}

func TestClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	l := s.Loglet(1)
	appendN(t, l, 1, 1)

	// A reader blocked at the tail is released by Close.
	readErr := make(chan error, 1)
	go func() {
		_, err := l.Read(context.Background(), 2, 1)
		readErr <- err
	}()

	// Appends enqueued before Close are committed by it.
	const pending = 50
	results := make(chan error, pending)
	for i := range pending {
		l.AppendAsync([][]byte{payloadFor(1, bifrost.Offset(2+i))}, func(_ bifrost.Offset, err error) { results <- err })
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for range pending {
		if err := <-results; err != nil {
			t.Fatalf("append enqueued before close: %v", err)
		}
	}
	// The reader either saw the appends or was closed; it must not hang.
	if err := <-readErr; err != nil && !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("blocked read: %v", err)
	}

	ctx := testContext(t)
	if _, err := l.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, err := l.Read(ctx, 1, 1); !errors.Is(err, bifrost.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if err := l.Trim(ctx, 1); !errors.Is(err, bifrost.ErrClosed) {
		t.Errorf("trim after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}

	s = openStore(t, dir, Options{})
	if got := s.Loglet(1).Tail(); got != 2+pending {
		t.Fatalf("tail after reopen %d, want %d", got, 2+pending)
	}
	checkLoglet(t, s.Loglet(1), 1, 1)
}

func TestOpenLocksDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openStore(t, dir, Options{})
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestTailReaderUsesCache(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		cacheSize int64
		wantDisk  bool
	}{
		{"cache", 0, false},
		{"no cache", -1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, t.TempDir(), Options{CacheSize: tc.cacheSize})
			l := s.Loglet(1)
			ctx := testContext(t)
			for lsn := bifrost.Offset(1); lsn <= 20; lsn++ {
				appendN(t, l, 1, 1)
				ents, err := l.Read(ctx, lsn, 10)
				if err != nil || len(ents) != 1 || !bytes.Equal(ents[0].Payload, payloadFor(1, lsn)) {
					t.Fatalf("read %d: %v, %v", lsn, ents, err)
				}
			}
			if got := s.Stats().DiskReads > 0; got != tc.wantDisk {
				t.Fatalf("disk reads %d, want some: %v", s.Stats().DiskReads, tc.wantDisk)
			}
		})
	}
}

func TestCacheEvictionKeepsOlderReadable(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{CacheSize: 1 << 10})
	for id := range uint64(4) {
		appendN(t, s.Loglet(id), id, 30)
	}
	before := s.Stats().DiskReads
	for id := range uint64(4) {
		checkLoglet(t, s.Loglet(id), id, 1)
	}
	if s.Stats().DiskReads == before {
		t.Fatal("no disk reads for records evicted from a 1 KiB cache")
	}
	// The newest records of the last loglet are still cached.
	before = s.Stats().DiskReads
	checkLoglet(t, s.Loglet(3), 3, 29)
	if s.Stats().DiskReads != before {
		t.Fatal("the newest records were read from disk")
	}
}

func TestStoreDirCreated(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	openStore(t, dir, Options{})
	if _, err := os.Stat(filepath.Join(dir, segmentName(1))); err != nil {
		t.Fatal(err)
	}
}
