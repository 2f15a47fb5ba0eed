package localloglet

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// syncGate holds fsyncs: each call reports itself on entered and waits for a release.
type syncGate struct {
	entered chan int
	release chan error
	calls   atomic.Int32
	// hold says whether call n (1-based) is held; others pass straight through.
	hold func(n int) bool
}

func newSyncGate(hold func(n int) bool) *syncGate {
	return &syncGate{entered: make(chan int, 16), release: make(chan error), hold: hold}
}

func (g *syncGate) sync(f *os.File) error {
	n := int(g.calls.Add(1))
	if !g.hold(n) {
		return f.Sync()
	}
	g.entered <- n
	if err := <-g.release; err != nil {
		return err
	}
	return f.Sync()
}

func TestReadsSeeOnlyDurableRecords(t *testing.T) {
	t.Parallel()
	gate := newSyncGate(func(n int) bool { return n == 1 })
	s := openStore(t, t.TempDir(), Options{syncFile: gate.sync})
	l := s.Loglet(1)
	ctx := testContext(t)

	// A reader blocked before anything is written.
	got := make(chan []bifrost.Record, 1)
	go func() {
		ents, err := l.Read(ctx, 1, 10)
		if err != nil {
			t.Errorf("blocked read: %v", err)
		}
		got <- ents
	}()

	acked := make(chan error, 1)
	l.AppendAsync([][]byte{payloadFor(1, 1)}, func(_ bifrost.Offset, err error) { acked <- err })
	<-gate.entered // written, fsync in progress

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if ents, err := l.Read(canceled, 1, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("read during fsync returned %v, %v; want nothing until durable", ents, err)
	}
	if tail, last := l.Tail(), l.LastAssigned(); tail != 1 || last != 1 {
		t.Fatalf("during fsync: tail %d, last assigned %d; want 1, 1", tail, last)
	}
	select {
	case ents := <-got:
		t.Fatalf("blocked reader returned %v before the fsync completed", ents)
	default:
	}

	gate.release <- nil
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	if ents := <-got; len(ents) != 1 || ents[0].Offset != 1 || string(ents[0].Payload) != string(payloadFor(1, 1)) {
		t.Fatalf("woken reader got %v", ents)
	}
	if tail := l.Tail(); tail != 2 {
		t.Fatalf("tail %d after the fsync, want 2", tail)
	}
}

// TestGroupCommit checks that appends queued behind a running fsync are committed together
// by the next one.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	gate := newSyncGate(func(n int) bool { return n == 1 })
	s := openStore(t, t.TempDir(), Options{syncFile: gate.sync})
	ctx := testContext(t)

	first := make(chan error, 1)
	s.Loglet(0).AppendAsync([][]byte{payloadFor(0, 1)}, func(_ bifrost.Offset, err error) { first <- err })
	<-gate.entered

	const queued = 100
	var wg sync.WaitGroup
	wg.Add(queued)
	for i := range queued {
		id := uint64(1 + i%8)
		s.Loglet(id).AppendAsync([][]byte{[]byte("queued")}, func(_ bifrost.Offset, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	gate.release <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	st := s.Stats()
	if st.Syncs != 2 || st.Batches != 2 || st.Records != queued+1 {
		t.Fatalf("stats %+v; want 2 fsyncs and 2 writes for %d records", st, queued+1)
	}
	for id := uint64(1); id <= 8; id++ {
		ents, err := s.Loglet(id).Read(ctx, 1, queued)
		if err != nil || len(ents) != queued/8+boolInt(id <= queued%8) {
			t.Fatalf("loglet %d: %d entries, %v", id, len(ents), err)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestFailedSyncFailsStore(t *testing.T) {
	t.Parallel()
	gate := newSyncGate(func(n int) bool { return n == 4 })
	s := openStore(t, t.TempDir(), Options{syncFile: gate.sync})
	l := s.Loglet(1)
	ctx := testContext(t)
	appendN(t, l, 1, 3)

	blocked := make(chan error, 1)
	go func() {
		_, err := l.Read(ctx, 4, 1)
		blocked <- err
	}()

	// Appends in the failing batch and behind it all fail.
	results := make(chan error, 3)
	for range 2 {
		l.AppendAsync([][]byte{[]byte("lost")}, func(_ bifrost.Offset, err error) { results <- err })
	}
	<-gate.entered
	l.AppendAsync([][]byte{[]byte("queued")}, func(_ bifrost.Offset, err error) { results <- err })
	gate.release <- errors.New("injected EIO")
	for range 3 {
		if err := <-results; !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("append in or after the failed batch: %v, want ErrStoreFailed", err)
		}
	}
	if err := <-blocked; !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("blocked reader: %v, want ErrStoreFailed", err)
	}
	if _, err := l.Append(ctx, [][]byte{[]byte("later")}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("append after failure: %v, want ErrStoreFailed", err)
	}
	if _, err := s.Loglet(2).Append(ctx, [][]byte{[]byte("other loglet")}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("append to another loglet after failure: %v, want ErrStoreFailed", err)
	}
	if tail := l.Tail(); tail != 4 {
		t.Fatalf("tail %d after failure, want 4", tail)
	}
	checkLoglet(t, l, 1, 1) // what was durable stays readable
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
