package loglettest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
)

// GapFreeAppendRead has many goroutines append batches of 1 to 3 records (Append and
// AppendAsync) while a reader tails the loglet. Every acknowledged offset is unique, one
// goroutine's batches get increasing offsets, and reading from 1 returns exactly the
// acknowledged payloads in offset order, up to a tail that FindTail reports open.
func GapFreeAppendRead(t *testing.T, l bifrost.Loglet) {
	ctx := Ctx(t)
	const (
		writers = 10
		batches = 30
	)
	total := 0
	for w := range writers {
		for seq := range batches {
			total += 1 + (w+seq)%3
		}
	}

	var (
		mu    sync.Mutex
		owner = map[bifrost.Offset][]byte{}
	)
	ack := func(w, seq int, first bifrost.Offset, n int) {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			off := first + bifrost.Offset(i)
			if _, dup := owner[off]; dup {
				t.Errorf("offset %d acknowledged twice", off)
			}
			owner[off] = payload(w, seq, i)
		}
	}

	// A tailing reader, blocked at the tail most of the time.
	var tailed []bifrost.Record
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for next := bifrost.Offset(1); next <= bifrost.Offset(total); {
			recs, err := l.Read(ctx, next, 16)
			if err != nil {
				t.Errorf("tailing reader at %d: %v", next, err)
				return
			}
			next = recs[len(recs)-1].Offset + 1
			tailed = append(tailed, recs...)
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var last bifrost.Offset
			for seq := range batches {
				n := 1 + (w+seq)%3
				batch := make([][]byte, n)
				for i := range batch {
					batch[i] = payload(w, seq, i)
				}
				var (
					first bifrost.Offset
					err   error
				)
				if seq%2 == 0 {
					first, err = l.Append(ctx, batch)
				} else {
					ch := make(chan error, 1)
					l.AppendAsync(batch, func(f bifrost.Offset, err error) { first = f; ch <- err })
					err = <-ch
				}
				if err != nil {
					t.Errorf("writer %d batch %d: %v", w, seq, err)
					return
				}
				if first <= last {
					t.Errorf("writer %d: batch %d got offset %d after %d", w, seq, first, last)
				}
				last = first
				ack(w, seq, first, n)
			}
		})
	}
	wg.Wait()
	<-readerDone
	if t.Failed() {
		return
	}
	if len(owner) != total {
		t.Fatalf("%d offsets acknowledged, want %d", len(owner), total)
	}
	expectTail(t, ctx, l, bifrost.TailState{Offset: bifrost.Offset(total + 1)})
	recs := readAll(t, ctx, l, 1, bifrost.Offset(total+1))
	for i, r := range recs {
		if !bytes.Equal(r.Payload, owner[r.Offset]) {
			t.Fatalf("offset %d: read %q, acknowledged %q", r.Offset, r.Payload, owner[r.Offset])
		}
		if !bytes.Equal(tailed[i].Payload, r.Payload) || tailed[i].Offset != r.Offset {
			t.Fatalf("tailing reader saw %d %q at position %d, reread %d %q", tailed[i].Offset, tailed[i].Payload, i, r.Offset, r.Payload)
		}
	}
}

// ReadStreamWaitsForTail checks blocking reads: a reader blocked at the tail wakes on the
// next append and gets exactly it, a read never returns more than max records, and ending
// the context of a blocked read ends it with the context's error.
func ReadStreamWaitsForTail(t *testing.T, l bifrost.Loglet) {
	ctx := Ctx(t)
	type result struct {
		recs []bifrost.Record
		err  error
	}
	for i := range 10 {
		next := bifrost.Offset(i + 1)
		got := make(chan result, 1)
		go func() {
			recs, err := l.Read(ctx, next, 5)
			got <- result{recs, err}
		}()
		select {
		case r := <-got:
			t.Fatalf("read at the tail %d returned %d records, %v before any append", next, len(r.recs), r.err)
		default:
		}
		want := []byte{'r', byte(i)}
		off, err := l.Append(ctx, [][]byte{want})
		if err != nil || off != next {
			t.Fatalf("append %d = %d, %v; want offset %d", i, off, err, next)
		}
		select {
		case r := <-got:
			if r.err != nil || len(r.recs) != 1 || r.recs[0].Offset != next || !bytes.Equal(r.recs[0].Payload, want) {
				t.Fatalf("woken reader got %v, %v; want offset %d %q", r.recs, r.err, next, want)
			}
		case <-ctx.Done():
			t.Fatalf("reader blocked at %d never woke up", next)
		}
	}

	// max bounds a read; the rest follows without a gap.
	batch := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}
	if off, err := l.Append(ctx, batch); err != nil || off != 11 {
		t.Fatalf("append batch = %d, %v; want offset 11", off, err)
	}
	recs, err := l.Read(ctx, 11, 2)
	if err != nil || len(recs) == 0 || len(recs) > 2 || recs[0].Offset != 11 {
		t.Fatalf("read 2 from 11 = %v, %v", recs, err)
	}
	readAll(t, ctx, l, 11, 16)

	// A blocked read ends with its context.
	rctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := l.Read(rctx, 16, 10)
		got <- err
	}()
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled read: %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("a canceled read kept blocking")
	}
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer dcancel()
	if _, err := l.Read(dctx, 16, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read at the tail with a deadline: %v, want DeadlineExceeded", err)
	}
	expectTail(t, ctx, l, bifrost.TailState{Offset: 16})
}

// TrimGaps checks trimming: reads at or below the trim point fail with a *TrimmedError
// carrying the trim point, reads above it return records, the trim point never moves
// back, and a trim beyond the tail is clipped to the last record.
func TrimGaps(t *testing.T, l bifrost.Loglet) {
	ctx := Ctx(t)
	for i := range 10 {
		if _, err := l.Append(ctx, [][]byte{payload(0, i, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	expectTrimPoint := func(want bifrost.Offset) {
		t.Helper()
		if got, err := l.TrimPoint(ctx); err != nil || got != want {
			t.Fatalf("TrimPoint = %d, %v; want %d", got, err, want)
		}
	}
	expectTrimmed := func(from, trim bifrost.Offset) {
		t.Helper()
		recs, err := l.Read(ctx, from, 10)
		var te *bifrost.TrimmedError
		if !errors.As(err, &te) || !errors.Is(err, bifrost.ErrTrimmed) || te.TrimPoint != trim {
			t.Fatalf("read from %d = %d records, %v; want a *TrimmedError at %d", from, len(recs), err, trim)
		}
	}
	expectTrimPoint(0)
	if err := l.Trim(ctx, 5); err != nil {
		t.Fatal(err)
	}
	expectTrimPoint(5)
	for from := bifrost.Offset(1); from <= 5; from++ {
		expectTrimmed(from, 5)
	}
	for i, r := range readAll(t, ctx, l, 6, 11) {
		if want := payload(0, 5+i, 0); !bytes.Equal(r.Payload, want) {
			t.Fatalf("offset %d after trim: %q, want %q", r.Offset, r.Payload, want)
		}
	}

	if err := l.Trim(ctx, 3); err != nil {
		t.Fatal(err)
	}
	expectTrimPoint(5) // never back
	if err := l.Trim(ctx, 100); err != nil {
		t.Fatal(err)
	}
	expectTrimPoint(10) // clipped to the last record
	expectTrimmed(10, 10)
	expectTail(t, ctx, l, bifrost.TailState{Offset: 11})

	// A fully trimmed loglet continues after its trim point.
	if off, err := l.Append(ctx, [][]byte{[]byte("after trim")}); err != nil || off != 11 {
		t.Fatalf("append after trim = %d, %v; want 11", off, err)
	}
	if recs := readAll(t, ctx, l, 11, 12); string(recs[0].Payload) != "after trim" {
		t.Fatalf("read after trim: %q", recs[0].Payload)
	}
}

// AppendAfterSeal checks a seal: it wakes a reader blocked at the tail with ErrSealed,
// refuses later appends with a *SealedError, reports the tail sealed, is idempotent, and
// leaves the records below the sealed tail readable (and trimmable).
func AppendAfterSeal(t *testing.T, l bifrost.Loglet) {
	ctx := Ctx(t)
	if off, err := l.Append(ctx, [][]byte{[]byte("1"), []byte("2")}); err != nil || off != 1 {
		t.Fatalf("append = %d, %v", off, err)
	}
	if off, err := l.Append(ctx, [][]byte{[]byte("3")}); err != nil || off != 3 {
		t.Fatalf("append = %d, %v", off, err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := l.Read(ctx, 4, 10)
		blocked <- err
	}()

	tail, err := l.Seal(ctx)
	if err != nil || tail != 4 {
		t.Fatalf("Seal = %d, %v; want 4", tail, err)
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, bifrost.ErrSealed) {
			t.Fatalf("reader blocked at the tail: %v, want ErrSealed", err)
		}
	case <-ctx.Done():
		t.Fatal("the seal did not wake a reader blocked at the tail")
	}
	expectSealedAppend(t, ctx, l, 4)
	expectTail(t, ctx, l, bifrost.TailState{Offset: 4, Sealed: true})
	if again, err := l.Seal(ctx); err != nil || again != 4 {
		t.Fatalf("second Seal = %d, %v; want 4", again, err)
	}
	expectReadSealed(t, ctx, l, 4)
	expectReadSealed(t, ctx, l, 5)
	recs := readAll(t, ctx, l, 1, 4)
	for i, want := range []string{"1", "2", "3"} {
		if string(recs[i].Payload) != want {
			t.Fatalf("offset %d after seal: %q, want %q", i+1, recs[i].Payload, want)
		}
	}
	if err := l.Trim(ctx, 2); err != nil {
		t.Fatalf("trim a sealed loglet: %v", err)
	}
	readAll(t, ctx, l, 3, 4)
	expectTail(t, ctx, l, bifrost.TailState{Offset: 4, Sealed: true})
}

// SealEmpty seals a loglet without records: its sealed tail is 1.
func SealEmpty(t *testing.T, l bifrost.Loglet) {
	ctx := Ctx(t)
	tail, err := l.Seal(ctx)
	if err != nil || tail != 1 {
		t.Fatalf("Seal of an empty loglet = %d, %v; want 1", tail, err)
	}
	expectTail(t, ctx, l, bifrost.TailState{Offset: 1, Sealed: true})
	expectReadSealed(t, ctx, l, 1)
	expectSealedAppend(t, ctx, l, 1)
	if again, err := l.Seal(ctx); err != nil || again != 1 {
		t.Fatalf("second Seal = %d, %v; want 1", again, err)
	}
	if tp, err := l.TrimPoint(ctx); err != nil || tp != 0 {
		t.Fatalf("TrimPoint = %d, %v; want 0", tp, err)
	}
}
