package replicated

import (
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
)

// Tests of write quorum first (seqcore.go): with server 2 of three a standby, new records
// go to servers 0 and 1 only; the standby gets committed records in batches, and takes
// new ones at once when a preferred server fails or is slow.

const (
	testHedge = 10 * time.Millisecond
	testLazy  = 5 * time.Millisecond
)

func newStandbyHarness(t *testing.T) *coreHarness {
	return newCoreHarness(t, 3, 2, func(c *coreConfig) {
		c.standby = []bool{false, false, true}
		c.hedgeDelay = testHedge
		c.lazyDelay = testLazy
	})
}

// enqueueAt enqueues n one-byte records at now.
func (h *coreHarness) enqueueAt(n int, now time.Time) bifrost.Offset {
	h.t.Helper()
	if ok, err := h.c.admit(n, int64(n)); !ok || err != nil {
		h.t.Fatalf("admit %d: ok=%v err=%v", n, ok, err)
	}
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = []byte{byte(i)}
	}
	return h.c.enqueue(ps, int64(n), func(bifrost.Offset, error) {}, now)
}

// wantEager checks that an append wakes standby i (its timer armed at armed) because of
// why, and that it is sent the pending records [first, end) at once.
func (h *coreHarness) wantEager(i int, armed, now time.Time, first, end bifrost.Offset, why string) storeReq {
	h.t.Helper()
	if !h.c.wakeOnAppend(i, armed, now) {
		h.t.Fatalf("an append does not wake the standby while %s", why)
	}
	req := h.store(i, now)
	if req.first != first || req.end != end {
		h.t.Fatalf("standby's store [%d, %d) while %s, want the pending [%d, %d)", req.first, req.end, why, first, end)
	}
	return req
}

func (h *coreHarness) noStore(i int, now time.Time, why string) {
	h.t.Helper()
	if req, ok := h.c.nextStore(i, now); ok {
		h.t.Fatalf("server %d got store [%d, %d) %s", i, req.first, req.end, why)
	}
}

// The commit needs the two preferred servers only; the standby gets the committed records
// once its delay is over, in one store, and never the uncommitted ones meanwhile.
func TestStandbyGetsCommittedRecordsInBatches(t *testing.T) {
	h := newStandbyHarness(t)
	at := t0.Add(time.Second) // the standby's first batch is due at once
	h.enqueueAt(3, at)
	h.noStore(2, at, "while the preferred servers are usable")
	r0, r1 := h.store(0, at), h.store(1, at)
	h.ok(0, r0, at)
	h.ok(1, r1, at)
	h.wantDone(1)
	if h.c.global != 4 {
		t.Fatalf("global tail %d, want 4", h.c.global)
	}
	h.enqueueAt(2, at) // [4, 6), pending
	lazy := h.store(2, at)
	if lazy.first != 1 || lazy.end != 4 {
		t.Fatalf("standby's store [%d, %d), want the committed [1, 4)", lazy.first, lazy.end)
	}
	h.ok(2, lazy, at)
	r0, r1 = h.store(0, at), h.store(1, at)
	h.ok(0, r0, at)
	h.ok(1, r1, at)
	h.noStore(2, at.Add(testLazy-time.Millisecond), "before its delay is over")
	if got := h.c.wakeAt(2); !got.Equal(at.Add(testLazy)) {
		t.Fatalf("standby's sender wakes at %v, want the end of its delay %v", got.Sub(t0), at.Add(testLazy).Sub(t0))
	}
	lazy = h.store(2, at.Add(testLazy))
	if lazy.first != 4 || lazy.end != 6 {
		t.Fatalf("standby's second store [%d, %d), want [4, 6)", lazy.first, lazy.end)
	}
}

// A standby that lags by a full store gets it at once, delay or not.
func TestStandbyFullStoreGoesAtOnce(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) {
		c.standby = []bool{false, false, true}
		c.hedgeDelay, c.lazyDelay = testHedge, time.Hour
		c.maxStoreRecords = 4
	})
	commit := func(n int) {
		h.enqueueAt(n, t0)
		r0, r1 := h.store(0, t0), h.store(1, t0)
		h.ok(0, r0, t0)
		h.ok(1, r1, t0)
	}
	commit(1)
	first := h.store(2, t0) // its first batch: the next is due in an hour
	h.ok(2, first, t0)
	commit(3)
	h.noStore(2, t0, "for 3 records within its delay")
	commit(1)
	if req := h.store(2, t0); req.first != 2 || req.end != 6 {
		t.Fatalf("standby's store [%d, %d), want the full [2, 6)", req.first, req.end)
	}
}

// A failed preferred server makes the standby eager at once: it takes the pending records,
// skipping to the global tail, and they commit with it.
func TestStandbyTakesOverFromFailedServer(t *testing.T) {
	h := newStandbyHarness(t)
	h.enqueueAt(2, t0)
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.ok(0, r0, t0)
	h.ok(1, r1, t0)
	h.wantDone(1)
	h.enqueueAt(1, t0) // [3, 4)
	r0, r1 = h.store(0, t0), h.store(1, t0)
	h.fail(1, r1, t0)
	eager := h.wantEager(2, t0.Add(time.Hour), t0, 3, 4, "a preferred server fails")
	h.ok(0, r0, t0)
	h.ok(2, eager, t0)
	h.wantDone(1, 3)
}

// A pending batch that waited the hedge delay goes to the standby too.
func TestStandbyHedgesOldBatch(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) {
		c.standby = []bool{false, false, true}
		c.hedgeDelay, c.lazyDelay = testHedge, testLazy
		c.tailPushDelay = time.Hour // no other reason to wake at the hedge deadline
	})
	h.enqueueAt(1, t0)
	r0 := h.store(0, t0)
	h.ok(0, r0, t0) // server 1 has not been sent the batch yet (its sender is slow)
	h.noStore(2, t0.Add(testHedge-time.Millisecond), "before the hedge delay")
	if got := h.c.wakeAt(2); !got.Equal(t0.Add(testHedge)) {
		t.Fatalf("standby's sender wakes at %v, want the hedge deadline", got.Sub(t0))
	}
	hedge := h.store(2, t0.Add(testHedge))
	h.ok(2, hedge, t0.Add(testHedge))
	h.wantDone(1)
}

// A preferred server that leaves a store unanswered for the hedge delay is slow: every
// new batch goes to the standby at once after that, not one hedge delay later each.
func TestStandbyEagerWhileAPreferredServerIsSlow(t *testing.T) {
	h := newStandbyHarness(t)
	h.enqueueAt(1, t0)
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.ok(0, r0, t0)
	_ = r1 // server 1 never answers
	late := t0.Add(testHedge)
	hedge := h.store(2, late)
	h.ok(2, hedge, late)
	h.wantDone(1)
	h.enqueueAt(1, late) // [2, 3): young, but server 1 is slow
	if !h.c.wakeOnAppend(2, late.Add(testLazy), late) {
		t.Fatal("an append does not wake the standby while a preferred server is slow")
	}
	if req := h.store(2, late); req.first != 2 {
		t.Fatalf("standby's store starts at %d, want 2", req.first)
	}
}

// A quiet standby with a hedge deadline armed soon enough is not woken by appends: that
// would cost a wake-up per append for nothing.
func TestStandbyNotWokenPerAppend(t *testing.T) {
	h := newStandbyHarness(t)
	h.enqueueAt(1, t0)
	if !h.c.wakeOnAppend(2, time.Time{}, t0) {
		t.Fatal("a standby asleep until woken is not woken for the hedge deadline")
	}
	if h.c.wakeOnAppend(2, t0.Add(testLazy), t0) {
		t.Fatal("a standby armed before the hedge deadline is woken")
	}
	if !h.c.wakeOnAppend(0, t0.Add(testLazy), t0) {
		t.Fatal("a preferred server is not woken")
	}
}

// Committed records the cache no longer holds are skipped: the standby's hole lies below
// the global tail, where it is harmless.
func TestStandbySkipsEvictedRecords(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) {
		c.standby = []bool{false, false, true}
		c.hedgeDelay, c.lazyDelay = testHedge, testLazy
		c.cacheBytes = 2
	})
	h.enqueueAt(5, t0)
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.ok(0, r0, t0)
	h.ok(1, r1, t0)
	req := h.store(2, t0.Add(testLazy))
	if req.first != 4 || req.end != 6 {
		t.Fatalf("standby's store [%d, %d), want the cached [4, 6)", req.first, req.end)
	}
}

// standbyOf returns the nodeset index of the loglet's standby (one for n=3, r=2).
func standbyOf(t *testing.T, l *Loglet) int {
	t.Helper()
	l.seq.mu.Lock()
	defer l.seq.mu.Unlock()
	for i, s := range l.seq.core.cfg.standby {
		if s {
			return i
		}
	}
	t.Fatal("no standby server")
	return -1
}

// Through the loglet on fake servers: the standby gets every record once appends stop; a
// preferred server that stops answering stores costs the first append one hedge delay,
// not every append; a killed one costs nothing.
func TestStandbyThroughTheLoglet(t *testing.T) {
	t.Parallel()
	const hedge = 100 * time.Millisecond
	c := newCluster(t, 3, 2, 12)
	l := c.open(c.provider("w1", 1, func(o *Options) {
		o.HedgeDelay = hedge
		// The silent server's stores must not time out (and count as failed) while the
		// appends run: 20 appends waiting a hedge each take 2 s.
		o.RPCTimeout = 10 * time.Second
	}), c.segment(15, w1))
	ctx := testCtx(t, time.Minute)
	sb := standbyOf(t, l)
	preferred := []int{(sb + 1) % 3, (sb + 2) % 3}
	appendN := func(n int) bifrost.Offset {
		var last bifrost.Offset
		for range n {
			o, err := l.Append(ctx, [][]byte{[]byte("x")})
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			last = o
		}
		return last
	}

	last := appendN(20)
	eventually(t, 5*time.Second, "the standby holds every record", func() bool {
		local, _, _ := c.servers[sb].state(15)
		return local == last+1
	})
	c.servers[sb].mu.Lock()
	stores := c.servers[sb].loglet(15).stores
	c.servers[sb].mu.Unlock()
	if stores >= 20 {
		t.Fatalf("the standby got %d stores for 20 sequential appends: not batched", stores)
	}

	killed := c.names[preferred[1]]
	c.net.Kill(killed)
	start := time.Now()
	appendN(20)
	if took := time.Since(start); took > 5*hedge {
		t.Fatalf("20 appends with a preferred server killed took %v (hedge delay %v)", took, hedge)
	}
	c.net.Restart(killed)
	eventually(t, 5*time.Second, killed+" back in use", func() bool {
		o := appendN(1)
		local, _, _ := c.servers[preferred[1]].state(15)
		return local > o
	})

	slow := c.names[preferred[0]]
	c.net.SetFaults(slow, faultnet.Faults{DropRequest: 1, BlackHole: true, Methods: []string{"Store"}})
	start = time.Now()
	appendN(20)
	if took := time.Since(start); took > 5*hedge {
		t.Fatalf("20 appends with %s silent took %v: each waited for the hedge delay (%v)", slow, took, hedge)
	}
}

// A standby whose eager store skipped to the global tail and whose answer was lost must not
// be sent the range below that store again: the server may hold a hole there, and would
// refuse the range as a mismatched duplicate each time.
func TestStandbyBatchesStartPastWhatWasSent(t *testing.T) {
	h := newStandbyHarness(t)
	commit := func(n int, at time.Time) {
		h.enqueueAt(n, at)
		r0, r1 := h.store(0, at), h.store(1, at)
		h.ok(0, r0, at)
		h.ok(1, r1, at)
	}
	commit(2, t0) // [1, 3): the standby lacks it
	h.enqueueAt(1, t0)
	r0 := h.store(0, t0)
	h.ok(0, r0, t0)
	late := t0.Add(testHedge)
	hedge := h.store(2, late) // eager: skips to the global tail
	if hedge.first != 3 || hedge.end != 4 {
		t.Fatalf("hedged store [%d, %d), want [3, 4)", hedge.first, hedge.end)
	}
	h.fail(2, hedge, late) // stored, but the answer was lost
	r1 := h.store(1, late)
	h.ok(1, r1, late)
	h.c.servers[2].failures, h.c.servers[2].retryAt = 0, time.Time{} // it answers again
	commit(1, late)                                                  // [4, 5)
	req := h.store(2, late.Add(testLazy))
	if req.first < 4 {
		t.Fatalf("standby's batch [%d, %d) starts below the end (4) of the store it was sent", req.first, req.end)
	}
}

// With two standbys, one that is hedged (a preferred server is slow) but has no pending
// record to take still gets its batch of committed records: nothing to send while its
// sender's wake-up time lies in the past would spin the sender.
func TestHedgedStandbyWithNothingPendingGetsItsBatch(t *testing.T) {
	h := newCoreHarness(t, 4, 2, func(c *coreConfig) {
		c.standby = []bool{false, false, true, true}
		c.hedgeDelay, c.lazyDelay = testHedge, testLazy
	})
	h.enqueueAt(1, t0)
	r0 := h.store(0, t0)
	_ = h.store(1, t0) // server 1 never answers
	h.ok(0, r0, t0)
	late := t0.Add(testHedge)
	eager := h.store(2, late)
	h.ok(2, eager, late)
	h.wantDone(1)
	req, ok := h.c.nextStore(3, late)
	if !ok || req.first != 1 || req.end != 2 {
		t.Fatalf("hedged standby 3 with nothing pending: store %+v %v, want its batch [1, 2)", req, ok)
	}
	h.ok(3, req, late)
	if at := h.c.wakeAt(3); !at.IsZero() && !at.After(late) {
		t.Fatalf("standby 3's sender wakes at %v, at or before now (%v): it would spin", at.Sub(t0), late.Sub(t0))
	}
}

// While a preferred server has as many stores in flight as allowed, new records would
// queue behind them: the standby takes them at once, and the commit is the faster two of
// three, as with flooding.
func TestStandbyEagerWhilePreferredServersAreSaturated(t *testing.T) {
	h := newStandbyHarness(t) // one store in flight per server
	h.enqueueAt(1, t0)
	h.noStore(2, t0, "before the preferred servers have stores in flight")
	r0, r1 := h.store(0, t0), h.store(1, t0)
	// The store that filled server 0 makes its sender wake the standby (sender.go).
	if !h.c.fullPreferred(0) || h.c.fullPreferred(2) {
		t.Fatalf("fullPreferred: server 0 %v (want true), standby %v (want false)", h.c.fullPreferred(0), h.c.fullPreferred(2))
	}
	h.enqueueAt(1, t0) // [2, 3) queues behind them
	if h.c.wakeOnAppend(0, time.Time{}, t0) {
		t.Fatal("an append wakes a sender whose stores in flight are at the limit")
	}
	eager := h.wantEager(2, t0.Add(testLazy), t0, 1, 3, "the preferred servers are saturated")
	h.ok(2, eager, t0)
	h.ok(0, r0, t0)
	h.wantDone(1)
	_ = r1 // server 1 is slow: the first batch committed with servers 0 and 2
}
