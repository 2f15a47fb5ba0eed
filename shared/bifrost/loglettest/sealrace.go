package loglettest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// AppendConcurrentWithSeal races opts.Appenders appenders (batches of one or two records)
// with one Seal, while a poller watches FindTail and a reader tails the loglet. Every
// observation of a seal (Seal's result, FindTail, a second Seal) names the same tail T;
// every acknowledged offset is unique and below T; no append that started after Seal
// returned is acknowledged; every record below T reads back (the acknowledged ones with
// their payloads, the others with the payload of some refused append: a sealer may keep
// a record whose acknowledgement was lost); nothing at or above T is ever readable; and
// open tails reported before the seal never exceed T.
func AppendConcurrentWithSeal(t *testing.T, l bifrost.Loglet, opts Options) {
	opts = opts.withDefaults()
	// The goroutines below use ctx; a failure of the sealer cancels it and waits for them
	// before failing the test, so that none reports to a finished test (a panic that
	// would hide why the test failed).
	ctx, cancel := context.WithCancel(Ctx(t))
	defer cancel()

	var (
		mu        sync.Mutex
		acked     = map[bifrost.Offset][]byte{}
		attempted = map[string]bool{} // every payload ever appended
		openTails []bifrost.Offset    // open tails FindTail reported
	)
	var sealReturned atomic.Bool
	// The sealer waits for a random number of acknowledgements, so the seal lands in the
	// middle of the appends rather than before them.
	target := 1 + rand.IntN(2*opts.Appenders)
	reached := make(chan struct{})
	var ackCount atomic.Int64
	stop := make(chan struct{}) // closed once the seal is done and every appender saw it

	var wg sync.WaitGroup
	for w := range opts.Appenders {
		wg.Go(func() {
			// Bounded so that a loglet that ignores its seal fails instead of looping.
			for seq := range 10_000 {
				randomDelay(opts.MaxDelay)
				n := 1 + (w+seq)%2
				batch := make([][]byte, n)
				mu.Lock()
				for i := range batch {
					batch[i] = payload(w, seq, i)
					attempted[string(batch[i])] = true
				}
				mu.Unlock()
				afterSeal := sealReturned.Load()
				first, err := l.Append(ctx, batch)
				if errors.Is(err, bifrost.ErrSealed) {
					return
				}
				if err != nil {
					t.Errorf("appender %d batch %d: %v", w, seq, err)
					return
				}
				if afterSeal {
					t.Errorf("appender %d: batch %d started after Seal returned and was acknowledged at %d", w, seq, first)
				}
				mu.Lock()
				for i := range n {
					off := first + bifrost.Offset(i)
					if _, dup := acked[off]; dup {
						t.Errorf("offset %d acknowledged twice", off)
					}
					acked[off] = batch[i]
				}
				mu.Unlock()
				if ackCount.Add(1) == int64(target) {
					close(reached)
				}
			}
			t.Errorf("appender %d: 10000 batches acknowledged without a seal", w)
		})
	}

	// The poller records open tails until it sees the seal, which it must once Seal has
	// returned (stop).
	var sealedSeen []bifrost.Offset
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		var last bifrost.Offset
		for {
			stopped := false
			select {
			case <-stop:
				stopped = true
			default:
			}
			ts, err := l.FindTail(ctx)
			if err != nil {
				t.Errorf("FindTail: %v", err)
				return
			}
			if ts.Offset < last {
				t.Errorf("FindTail went back from %d to %v", last, ts)
			}
			last = ts.Offset
			if ts.Sealed {
				sealedSeen = append(sealedSeen, ts.Offset)
				return
			}
			if stopped {
				t.Errorf("FindTail = %v after Seal returned", ts)
				return
			}
			mu.Lock()
			openTails = append(openTails, ts.Offset)
			mu.Unlock()
			runtime.Gosched() // leave the CPU to the appenders between polls
		}
	}()

	// The tailing reader reads until the seal stops it.
	var tailed []bifrost.Record
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for next := bifrost.Offset(1); ; {
			recs, err := l.Read(ctx, next, 32)
			if errors.Is(err, bifrost.ErrSealed) {
				return
			}
			if err != nil {
				t.Errorf("tailing reader at %d: %v", next, err)
				return
			}
			for _, r := range recs {
				if r.Offset != next {
					t.Errorf("tailing reader: offset %d, want %d", r.Offset, next)
					return
				}
				next++
			}
			tailed = append(tailed, recs...)
		}
	}()

	abort := func(format string, args ...any) {
		cancel()
		wg.Wait()
		close(stop)
		<-pollDone
		<-readDone
		t.Fatalf(format, args...)
	}
	// The sealer.
	select {
	case <-reached:
	case <-ctx.Done():
		abort("appenders stalled before the seal")
	}
	randomDelay(opts.MaxDelay)
	tail, err := l.Seal(ctx)
	sealReturned.Store(true)
	if err != nil {
		abort("Seal: %v", err)
	}
	wg.Wait()
	close(stop)
	<-pollDone
	<-readDone
	if t.Failed() {
		return
	}

	// Every observation of the seal agrees.
	if again, err := l.Seal(ctx); err != nil || again != tail {
		t.Fatalf("second Seal = %d, %v; the first returned %d", again, err, tail)
	}
	for _, seen := range sealedSeen {
		if seen != tail {
			t.Fatalf("FindTail saw sealed(%d), Seal returned %d", seen, tail)
		}
	}
	expectTail(t, ctx, l, bifrost.TailState{Offset: tail, Sealed: true})
	for _, o := range openTails {
		if o > tail {
			t.Fatalf("FindTail reported open(%d) above the sealed tail %d", o, tail)
		}
	}
	for off := range acked {
		if off >= tail {
			t.Fatalf("offset %d acknowledged at or above the sealed tail %d", off, tail)
		}
	}

	// Below the tail: everything, each payload once; at and above it: nothing.
	recs := readAll(t, ctx, l, 1, tail)
	seen := map[string]bool{}
	for _, r := range recs {
		if want, ok := acked[r.Offset]; ok && !bytes.Equal(r.Payload, want) {
			t.Fatalf("offset %d: read %q, acknowledged %q", r.Offset, r.Payload, want)
		}
		if !attempted[string(r.Payload)] || seen[string(r.Payload)] {
			t.Fatalf("offset %d: %q was never appended, or is read twice", r.Offset, r.Payload)
		}
		seen[string(r.Payload)] = true
	}
	expectReadSealed(t, ctx, l, tail)
	expectSealedAppend(t, ctx, l, tail)
	t.Logf("sealed at %d after %d acknowledged batches: %d records, %d acknowledged", tail, target, len(recs), len(acked))
	if len(tailed) != len(recs) {
		t.Fatalf("tailing reader saw %d records before the seal, the sealed loglet holds %d", len(tailed), len(recs))
	}
	for i := range tailed {
		if tailed[i].Offset != recs[i].Offset || !bytes.Equal(tailed[i].Payload, recs[i].Payload) {
			t.Fatalf("tailing reader saw %d %q, reread %d %q", tailed[i].Offset, tailed[i].Payload, recs[i].Offset, recs[i].Payload)
		}
	}
}
