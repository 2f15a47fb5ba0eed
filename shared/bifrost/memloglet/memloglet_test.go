package memloglet_test

import (
	"context"
	"errors"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/loglettest"
	"gorestate.dev/shared/bifrost/memloglet"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	loglettest.Run(t, func(*testing.T) bifrost.Loglet { return memloglet.New(1) })
}

// SealAt includes held appends below the tail, yet refuses them all with their offsets,
// as a replicated loglet whose acknowledgements were lost would.
func TestSealAtIncludesHeldAppends(t *testing.T) {
	t.Parallel()
	ctx := loglettest.Ctx(t)
	l := memloglet.New(1)
	if _, err := l.Append(ctx, [][]byte{[]byte("committed")}); err != nil {
		t.Fatal(err)
	}
	l.Hold()
	results := make(chan error, 3)
	firsts := make(chan bifrost.Offset, 3)
	for _, n := range []int{1, 2, 1} { // offsets 2, 3-4, 5
		batch := make([][]byte, n)
		for i := range batch {
			batch[i] = []byte("held")
		}
		l.AppendAsync(batch, func(first bifrost.Offset, err error) { firsts <- first; results <- err })
	}
	if n := l.InFlight(); n != 3 {
		t.Fatalf("%d appends in flight, want 3", n)
	}
	if err := l.SealAt(7); !errors.Is(err, memloglet.ErrBadSealTail) {
		t.Fatalf("SealAt above the assigned offsets: %v", err)
	}
	if err := l.SealAt(4); err != nil { // cuts the second batch
		t.Fatal(err)
	}
	for _, want := range []bifrost.Offset{2, 3, 5} {
		err := <-results
		<-firsts
		var se *bifrost.SealedError
		if !errors.As(err, &se) || se.First != want {
			t.Fatalf("held append: %v, want a SealedError at %d", err, want)
		}
	}
	if ts, err := l.FindTail(ctx); err != nil || ts != (bifrost.TailState{Offset: 4, Sealed: true}) {
		t.Fatalf("FindTail = %v, %v", ts, err)
	}
	if recs, err := l.Read(ctx, 1, 10); err != nil || len(recs) != 3 {
		t.Fatalf("read = %v, %v; want 3 records", recs, err)
	}
	if err := l.SealAt(4); err != nil {
		t.Fatalf("SealAt of the sealed tail again: %v", err)
	}
}

func TestFailAppends(t *testing.T) {
	t.Parallel()
	l := memloglet.New(1)
	l.FailAppends(bifrost.ErrReconfigurationNeeded)
	if _, err := l.Append(context.Background(), [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("append: %v", err)
	}
	l.FailAppends(nil)
	if off, err := l.Append(context.Background(), [][]byte{[]byte("x")}); err != nil || off != 1 {
		t.Fatalf("append = %d, %v", off, err)
	}
}
