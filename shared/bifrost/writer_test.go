package bifrost_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// A writer log keeps appending while another party seals its tail segment (and sometimes
// extends the chain, sometimes leaves that to the writer): callers see no error, every
// batch lands once, and batches enqueued from one goroutine commit in order.
func TestWriterSurvivesSealByAnotherParty(t *testing.T) {
	t.Parallel()
	for name, newC := range map[string]func(*testing.T, map[uint32][]metadata.Segment) *cluster{
		"memory": newCluster,
		"local":  newLocalCluster,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newC(t, nil)
			c.putChain(t, 1, c.firstSeg(1))
			w := c.node(t, true).WriterLog(1)
			other := c.node(t, false)
			ctx := testCtx(t)

			const batches = 3000
			var (
				mu    sync.Mutex
				order []int
				lsns  []bifrost.LSN
			)
			all := make(chan struct{})
			for i := range batches {
				w.AppendAsync([][]byte{fmt.Appendf(nil, "w%d", i)}, func(lsn bifrost.LSN, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("batch %d: %v", i, err)
					}
					order = append(order, i)
					lsns = append(lsns, lsn)
					if len(order) == batches {
						close(all)
					}
				})
				if i%500 != 250 {
					continue
				}
				// Another party seals the tail segment; every other time it also extends.
				// Each time adds a segment (or replaces an empty one): wait for the
				// previous one first.
				event := uint32(i / 500)
				var tail metadata.Segment
				waitFor(t, fmt.Sprint("segment ", event), func() bool {
					chain, err := other.Chain(ctx, 1) // the other party acts on what it knows
					tail = chain[len(chain)-1]
					return err == nil && tail.Index == event
				})
				if i%1000 == 250 {
					if _, err := other.SealAndExtend(ctx, 1, tail.Index, c.next); err != nil && !isMismatch(err) {
						t.Fatal(err)
					}
				} else {
					l, err := c.registry.Open(ctx, tail)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := l.Seal(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			select {
			case <-all:
			case <-ctx.Done():
				t.Fatal("appends did not complete")
			}
			if t.Failed() {
				return
			}
			for k := range order {
				if order[k] != k {
					t.Fatalf("done number %d was batch %d", k, order[k])
				}
				if k > 0 && lsns[k] <= lsns[k-1] {
					t.Fatalf("batch %d got lsn %d after %d", k, lsns[k], lsns[k-1])
				}
			}
			// Only this writer wrote: the log holds exactly its batches, in order.
			tail, err := w.FindTail(ctx)
			if err != nil || tail != batches+1 {
				t.Fatalf("FindTail = %d, %v; want %d", tail, err, batches+1)
			}
			for k, e := range readRange(t, w, 1, tail) {
				if want := fmt.Sprintf("w%d", k); string(e.Payload) != want || e.LSN != lsns[k] {
					t.Fatalf("lsn %d = %q, want %q at lsn %d", e.LSN, e.Payload, want, lsns[k])
				}
			}
			if chain := c.chain(t, 1); chain[len(chain)-1].Index != 6 {
				t.Fatalf("chain %+v after 6 seals, want a tail segment with index 6", chain)
			}
		})
	}
}

// putChain writes a log's chain (a compare-and-set on the current version).
func (c *cluster) putChain(t *testing.T, logID uint32, segs ...metadata.Segment) {
	t.Helper()
	ctx := testCtx(t)
	v, err := c.meta.Get(ctx, metadata.KeyLogs)
	if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		t.Fatal(err)
	}
	logs := metadata.Logs{Chains: map[uint32][]metadata.Segment{}}
	if v.Version > 0 {
		decode(t, v.Value, &logs)
	}
	logs.Chains[logID] = segs
	if _, err := c.meta.Put(ctx, metadata.KeyLogs, encode(t, logs), v.Version); err != nil {
		t.Fatal(err)
	}
}

// Batches refused with the offsets a sealer kept are committed after all; the one that
// straddles the sealed tail keeps its committed prefix and re-appends the rest; later ones
// are re-appended. Nothing is duplicated and done runs in order.
func TestWriterSettlesRefusedBatches(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	w := c.node(t, true).WriterLog(1)
	appendRecords(t, w, "a", 1, 1)

	l := c.loglet(memSeg(1))
	l.Hold()
	type result struct {
		name string
		lsn  bifrost.LSN
		err  error
	}
	results := make(chan result, 3)
	for _, b := range []struct {
		name string
		n    int
	}{{"b1", 1}, {"b2", 2}, {"b3", 1}} { // offsets 2, 3-4, 5
		batch := make([][]byte, b.n)
		for i := range batch {
			batch[i] = fmt.Appendf(nil, "%s.%d", b.name, i)
		}
		w.AppendAsync(batch, func(lsn bifrost.LSN, err error) { results <- result{b.name, lsn, err} })
	}
	waitFor(t, "three appends in flight", func() bool { return l.InFlight() == 3 })
	// A sealer found offsets 2 and 3 on enough servers: sealed tail 4.
	if err := l.SealAt(4); err != nil {
		t.Fatal(err)
	}
	for _, want := range []result{{"b1", 2, nil}, {"b2", 3, nil}, {"b3", 5, nil}} {
		if got := <-results; got != want {
			t.Fatalf("done = %+v, want %+v", got, want)
		}
	}
	var got []string
	for _, e := range readRange(t, w, 1, 6) {
		got = append(got, string(e.Payload))
	}
	if want := []string{"a0", "b1.0", "b2.0", "b2.1", "b3.0"}; !slices.Equal(got, want) {
		t.Fatalf("log = %q, want %q", got, want)
	}
	if got, want := c.reconfigurations(), []string{"log 1 after 0 at 4"}; !slices.Equal(got, want) {
		t.Fatalf("reconfigurations %q, want %q", got, want)
	}
}

// A loglet that needs reconfiguration (say, its sequencer is gone) is sealed and replaced
// by the writer; the append lands on the new segment.
func TestWriterReconfiguresOnDemand(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	w := c.node(t, true).WriterLog(1)
	appendRecords(t, w, "a", 2, 1)
	c.loglet(memSeg(1)).FailAppends(bifrost.ErrReconfigurationNeeded)
	appendRecords(t, w, "b", 2, 3)
	chain := c.chain(t, 1)
	if len(chain) != 2 || chain[1].BaseLSN != 3 {
		t.Fatalf("chain %+v, want a second segment at 3", chain)
	}
	if got, want := c.reconfigurations(), []string{"log 1 after 0 at 3"}; !slices.Equal(got, want) {
		t.Fatalf("reconfigurations %q, want %q", got, want)
	}
}

// A plain log never reconfigures: its appends wait until someone else extends the chain.
func TestPlainLogWaitsForExtension(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	b := c.node(t, true) // a Reconfigure hook, which a plain log must not use
	l := b.Log(1)
	ctx := testCtx(t)
	appendRecords(t, l, "a", 1, 1)
	c.loglet(memSeg(1)).FailAppends(bifrost.ErrReconfigurationNeeded)
	done := make(chan error, 1)
	var lsn bifrost.LSN
	l.AppendAsync([][]byte{[]byte("waits")}, func(got bifrost.LSN, err error) { lsn = got; done <- err })
	select {
	case err := <-done:
		t.Fatalf("append completed with %v before the chain was extended", err)
	default:
	}
	if got := c.reconfigurations(); len(got) != 0 {
		t.Fatalf("a plain log reconfigured: %q", got)
	}
	if _, err := c.node(t, false).SealAndExtend(ctx, 1, 0, memNext); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || lsn != 2 {
		t.Fatalf("append after the extension = %d, %v; want 2", lsn, err)
	}
}

// A plain log whose tail segment refused an append without being sealed (its sequencer
// unreachable for a moment, or not yet running on its node) tries that segment again: the
// append lands once the loglet takes appends again, though nobody extends the chain.
func TestPlainLogRetriesUnsealedSegment(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	l := c.node(t, false).Log(1)
	appendRecords(t, l, "a", 1, 1)
	c.loglet(memSeg(1)).FailAppends(bifrost.ErrReconfigurationNeeded)
	done := make(chan error, 2)
	var lsns [2]bifrost.LSN
	for i := range lsns {
		l.AppendAsync([][]byte{[]byte(fmt.Sprint("b", i))}, func(got bifrost.LSN, err error) { lsns[i] = got; done <- err })
	}
	time.Sleep(30 * time.Millisecond) // refused at least once
	select {
	case err := <-done:
		t.Fatalf("append completed with %v while the loglet refused appends", err)
	default:
	}
	c.loglet(memSeg(1)).FailAppends(nil)
	for range lsns {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if lsns != [2]bifrost.LSN{2, 3} {
		t.Fatalf("appends landed at %v, want [2 3] in order", lsns)
	}
	if chain := c.chain(t, 1); len(chain) != 1 {
		t.Fatalf("chain %+v changed; want the one segment", chain)
	}
	recs := readRange(t, l, 1, 4)
	if got := []string{string(recs[0].Payload), string(recs[1].Payload), string(recs[2].Payload)}; !slices.Equal(got, []string{"a0", "b0", "b1"}) {
		t.Fatalf("log = %q", got)
	}
}

// A writer log of a log without segments creates the first one.
func TestWriterCreatesFirstSegment(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {}})
	w := c.node(t, true).WriterLog(1)
	appendRecords(t, w, "a", 2, 1)
	if got, want := c.reconfigurations(), []string{"log 1 after none at 1"}; !slices.Equal(got, want) {
		t.Fatalf("reconfigurations %q, want %q", got, want)
	}
	if chain := c.chain(t, 1); len(chain) != 1 || chain[0].Index != 0 || chain[0].BaseLSN != 1 {
		t.Fatalf("chain %+v", chain)
	}
}

// A writer log reading at its sealed, unextended tail extends the chain itself.
func TestWriterReadExtendsSealedTail(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	w := c.node(t, true).WriterLog(1)
	ctx := testCtx(t)
	appendRecords(t, w, "a", 2, 1)
	if _, err := c.loglet(memSeg(1)).Seal(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := w.Read(ctx, 3, 10)
		got <- err
	}()
	waitFor(t, "the writer to extend the chain", func() bool { return len(c.chain(t, 1)) == 2 })
	appendRecords(t, w, "b", 1, 3)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestWatchdog(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}, 2: {}})
	b := c.node(t, true)
	ctx := testCtx(t)
	appendRecords(t, b.WriterLog(1), "a", 3, 1)

	keep := func(metadata.Segment) bool { return false }
	if moved, err := b.Watchdog(ctx, 1, keep); err != nil || moved {
		t.Fatalf("Watchdog(keep) = %v, %v", moved, err)
	}
	var checked metadata.Segment
	replace := func(s metadata.Segment) bool { checked = s; return s.Index == 0 }
	if moved, err := b.Watchdog(ctx, 1, replace); err != nil || !moved {
		t.Fatalf("Watchdog(replace) = %v, %v", moved, err)
	}
	if checked.Index != 0 || checked.LogletID != bifrost.LogletID(1, 0) {
		t.Fatalf("check got %+v", checked)
	}
	if chain := c.chain(t, 1); len(chain) != 2 || chain[1].BaseLSN != 4 {
		t.Fatalf("chain after the watchdog: %+v", chain)
	}
	appendRecords(t, b.WriterLog(1), "b", 1, 4)
	if moved, err := b.Watchdog(ctx, 1, replace); err != nil || moved {
		t.Fatalf("Watchdog on the new segment = %v, %v", moved, err)
	}
	// A log without segments gets one.
	if moved, err := b.Watchdog(ctx, 2, keep); err != nil || !moved {
		t.Fatalf("Watchdog of a log without segments = %v, %v", moved, err)
	}
	if chain := c.chain(t, 2); len(chain) != 1 {
		t.Fatalf("chain of log 2: %+v", chain)
	}
	plain := c.node(t, false)
	if _, err := plain.Watchdog(ctx, 1, replace); !errors.Is(err, bifrost.ErrNoReconfigure) {
		t.Fatalf("Watchdog without a hook: %v", err)
	}
}

// Close fails appends that wait for a reconfiguration.
func TestCloseFailsWaitingAppends(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	b := c.node(t, false)
	ctx := testCtx(t)
	if _, err := c.loglet(memSeg(1)).Seal(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	b.Log(1).AppendAsync([][]byte{[]byte("x")}, func(_ bifrost.LSN, err error) { done <- err })
	b.Close()
	if err := <-done; !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("waiting append after Close: %v, want ErrClosed", err)
	}
}

// A failing Reconfigure hook (no log servers yet, say) is retried; appends wait meanwhile
// and then succeed, in order.
func TestWriterRetriesFailedReconfiguration(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	var mu sync.Mutex
	failures := 3
	b := bifrost.New(bifrost.Options{
		Meta:          c.meta,
		Registry:      c.registry,
		RetryInterval: time.Millisecond,
		Reconfigure: func(ctx context.Context, logID uint32, prev metadata.Segment, sealed bifrost.LSN) (metadata.Segment, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				return metadata.Segment{}, errors.New("injected: no log servers")
			}
			return c.reconfigure(ctx, logID, prev, sealed)
		},
	})
	t.Cleanup(func() { b.Close() })
	w := b.WriterLog(1)
	appendRecords(t, w, "a", 1, 1)
	c.loglet(memSeg(1)).FailAppends(bifrost.ErrReconfigurationNeeded)
	results := make(chan bifrost.LSN, 3)
	for i := range 3 {
		w.AppendAsync([][]byte{fmt.Appendf(nil, "b%d", i)}, func(lsn bifrost.LSN, err error) {
			if err != nil {
				t.Errorf("append b%d: %v", i, err)
			}
			results <- lsn
		})
	}
	for want := bifrost.LSN(2); want <= 4; want++ {
		if got := <-results; got != want {
			t.Fatalf("lsn %d, want %d", got, want)
		}
	}
	if got := c.reconfigurations(); len(got) != 1 {
		t.Fatalf("reconfigurations %q, want one success after the failures", got)
	}
}
