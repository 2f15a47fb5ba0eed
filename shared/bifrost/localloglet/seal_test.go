package localloglet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// waitSealing polls until Seal has started refusing appends on l.
func waitSealing(t *testing.T, l *Loglet) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		l.appendMu.Lock()
		sealing := l.sealing
		l.appendMu.Unlock()
		if sealing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Seal never started")
		}
		time.Sleep(time.Millisecond)
	}
}

// An append enqueued before a seal becomes durable below the sealed tail; one enqueued
// after it is refused; the seal returns only once the earlier ones are durable.
func TestSealDrainsInFlightAppends(t *testing.T) {
	t.Parallel()
	gate := newSyncGate(func(n int) bool { return n == 1 })
	s := openStore(t, t.TempDir(), Options{syncFile: gate.sync})
	l := s.Loglet(1)
	ctx := testContext(t)

	type result struct {
		first bifrost.Offset
		err   error
	}
	a, b, c := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	l.AppendAsync([][]byte{payloadFor(1, 1)}, func(f bifrost.Offset, err error) { a <- result{f, err} })
	<-gate.entered // a is being fsynced
	l.AppendAsync([][]byte{payloadFor(1, 2)}, func(f bifrost.Offset, err error) { b <- result{f, err} })
	sealed := make(chan result, 1)
	go func() {
		tail, err := l.Seal(ctx)
		sealed <- result{tail, err}
	}()
	waitSealing(t, l)
	l.AppendAsync([][]byte{[]byte("late")}, func(f bifrost.Offset, err error) { c <- result{f, err} })

	select {
	case r := <-sealed:
		t.Fatalf("Seal returned %v before the appends in flight were durable", r)
	default:
	}
	if ts, err := l.FindTail(ctx); err != nil || ts.Sealed {
		t.Fatalf("FindTail during the seal = %v, %v; want open", ts, err)
	}

	gate.release <- nil
	if r := <-a; r.err != nil || r.first != 1 {
		t.Fatalf("append before the seal: %+v", r)
	}
	if r := <-b; r.err != nil || r.first != 2 {
		t.Fatalf("append queued before the seal: %+v", r)
	}
	var se *bifrost.SealedError
	if r := <-c; !errors.As(r.err, &se) || se.First != 0 {
		t.Fatalf("append after the seal started: %+v, want a SealedError without offset", r)
	}
	if r := <-sealed; r.err != nil || r.first != 3 {
		t.Fatalf("Seal = %+v, want 3", r)
	}
	if ts, err := l.FindTail(ctx); err != nil || ts != (bifrost.TailState{Offset: 3, Sealed: true}) {
		t.Fatalf("FindTail = %v, %v", ts, err)
	}
}

// A seal whose drain fails with the store is not persisted and not published.
func TestSealFailsWithStore(t *testing.T) {
	t.Parallel()
	gate := newSyncGate(func(n int) bool { return n == 2 })
	dir := t.TempDir()
	s := openStore(t, dir, Options{syncFile: gate.sync})
	l := s.Loglet(1)
	ctx := testContext(t)
	appendN(t, l, 1, 1)
	lost := make(chan error, 1)
	l.AppendAsync([][]byte{[]byte("lost")}, func(_ bifrost.Offset, err error) { lost <- err })
	<-gate.entered
	sealed := make(chan error, 1)
	go func() {
		_, err := l.Seal(ctx)
		sealed <- err
	}()
	waitSealing(t, l)
	gate.release <- errors.New("injected EIO")
	if err := <-lost; !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("append in the failed batch: %v", err)
	}
	if err := <-sealed; !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("Seal behind a failed fsync: %v, want ErrStoreFailed", err)
	}
	if ts, err := l.FindTail(ctx); err != nil || ts.Sealed {
		t.Fatalf("FindTail after a failed seal = %v, %v; want open", ts, err)
	}
	if _, err := os.Stat(filepath.Join(dir, sealFile.name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("seal file after a failed seal: %v", err)
	}
}

// Concurrent seals agree on the tail.
func TestConcurrentSeals(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	l := s.Loglet(1)
	appendN(t, l, 1, 5)
	ctx := testContext(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if tail, err := l.Seal(ctx); err != nil || tail != 6 {
				t.Errorf("Seal = %d, %v; want 6", tail, err)
			}
		})
	}
	wg.Wait()
}

// Seals survive a clean restart and a crash (the files as they are when Seal returns).
func TestSealSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, Options{SegmentSize: 1 << 10})
	ctx := testContext(t)
	appendN(t, s.Loglet(1), 1, 30)
	appendN(t, s.Loglet(2), 2, 30)
	if tail, err := s.Loglet(1).Seal(ctx); err != nil || tail != 31 {
		t.Fatalf("Seal = %d, %v", tail, err)
	}
	if tail, err := s.Loglet(7).Seal(ctx); err != nil || tail != 1 {
		t.Fatalf("Seal of an empty loglet = %d, %v", tail, err)
	}
	if err := s.Loglet(1).Trim(ctx, 10); err != nil {
		t.Fatal(err)
	}
	crashed := crashCopy(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"clean": dir, "crash": crashed} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, dir, Options{SegmentSize: 1 << 10})
			for id, want := range map[uint64]bifrost.TailState{1: {Offset: 31, Sealed: true}, 7: {Offset: 1, Sealed: true}, 2: {Offset: 31}} {
				l := s.Loglet(id)
				if ts, err := l.FindTail(ctx); err != nil || ts != want {
					t.Fatalf("loglet %d: FindTail = %v, %v; want %v", id, ts, err, want)
				}
				if want.Sealed {
					if _, err := l.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrSealed) {
						t.Fatalf("loglet %d: append after restart: %v, want ErrSealed", id, err)
					}
					if _, err := l.Read(ctx, want.Offset, 1); !errors.Is(err, bifrost.ErrSealed) {
						t.Fatalf("loglet %d: read at the sealed tail: %v, want ErrSealed", id, err)
					}
					if tail, err := l.Seal(ctx); err != nil || tail != want.Offset {
						t.Fatalf("loglet %d: Seal after restart = %d, %v", id, tail, err)
					}
				}
			}
			if tp, _ := s.Loglet(1).TrimPoint(ctx); tp != 10 {
				t.Fatalf("trim point %d after restart, want 10", tp)
			}
			checkLoglet(t, s.Loglet(1), 1, 11)
			appendN(t, s.Loglet(2), 2, 1)
		})
	}
}

// A seal file that disagrees with the records, or is damaged, fails Open.
func TestSealFileMismatch(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func(path string) error{
		"tail beyond the records": func(path string) error {
			return os.WriteFile(path, sealFile.encode(map[uint64]bifrost.Offset{1: 9}), 0o644)
		},
		"tail below the records": func(path string) error {
			return os.WriteFile(path, sealFile.encode(map[uint64]bifrost.Offset{1: 2}), 0o644)
		},
		"checksum": func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b[len(b)-6] ^= 1
			return os.WriteFile(path, b, 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			appendN(t, s.Loglet(1), 1, 3)
			if _, err := s.Loglet(1).Seal(testContext(t)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := damage(filepath.Join(dir, sealFile.name)); err != nil {
				t.Fatal(err)
			}
			if s, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestSealAfterClose(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	l := s.Loglet(1)
	s.Close()
	if _, err := l.Seal(testContext(t)); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("Seal after Close: %v, want ErrClosed", err)
	}
	if _, err := l.FindTail(testContext(t)); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("FindTail after Close: %v, want ErrClosed", err)
	}
}

func TestProvider(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), Options{})
	p := NewProvider(s, "n1")
	ctx := testContext(t)
	if p.Kind() != bifrost.ProviderLocal {
		t.Fatalf("Kind = %q", p.Kind())
	}
	for _, node := range []string{"", "n1"} {
		l, err := p.Open(ctx, metadata.Segment{Provider: bifrost.ProviderLocal, LogletID: 42, Node: node})
		if err != nil {
			t.Fatalf("Open of a segment on node %q: %v", node, err)
		}
		if l != s.Loglet(42) {
			t.Fatalf("Open of a segment on node %q returned another loglet", node)
		}
	}
	_, err := p.Open(ctx, metadata.Segment{Provider: bifrost.ProviderLocal, LogletID: 42, Index: 3, Node: "n2"})
	if !errors.Is(err, ErrOtherNode) || !strings.Contains(err.Error(), `"n2"`) || !strings.Contains(err.Error(), `"n1"`) {
		t.Fatalf("Open of another node's segment: %v, want ErrOtherNode naming both nodes", err)
	}
	if _, err := p.Open(ctx, metadata.Segment{Provider: bifrost.ProviderReplicated, LogletID: 42}); err == nil {
		t.Fatal("Open of a replicated segment succeeded")
	}
	s.Close()
	if _, err := p.Open(ctx, metadata.Segment{Provider: bifrost.ProviderLocal, LogletID: 42}); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
}
