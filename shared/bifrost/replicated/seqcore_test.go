package replicated

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// State-machine tests of the sequencer core: inputs in, stores and completions out. No
// network, no goroutines; time is a synthetic clock.

var t0 = time.Unix(1_000_000, 0)

func testCoreConfig() coreConfig {
	return coreConfig{
		maxOffset:          DefaultMaxOffset,
		maxInflightRecords: 1000,
		maxInflightBytes:   1 << 20,
		maxStoreRecords:    1000,
		maxStoreBytes:      1 << 20,
		cacheBytes:         1 << 20,
		writeUnavailable:   time.Second,
		tailPushDelay:      10 * time.Millisecond,
		checkSealInterval:  time.Hour,
	}
}

type coreHarness struct {
	t    *testing.T
	c    *seqCore
	done []completion // completions delivered so far, in order
}

func newCoreHarness(t *testing.T, n, r int, tweak func(*coreConfig)) *coreHarness {
	cfg := testCoreConfig()
	if tweak != nil {
		tweak(&cfg)
	}
	return &coreHarness{t: t, c: newSeqCore(cfg, newQuorum(n, r), newBackoff(time.Millisecond, 10*time.Millisecond, 1), t0)}
}

// enqueue admits and enqueues n one-byte records, returning the first offset.
func (h *coreHarness) enqueue(n int) bifrost.Offset {
	h.t.Helper()
	ok, err := h.c.admit(n, int64(n))
	if !ok || err != nil {
		h.t.Fatalf("admit %d: ok=%v err=%v", n, ok, err)
	}
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = []byte{byte(i)}
	}
	var first bifrost.Offset
	first = h.c.enqueue(ps, int64(n), func(bifrost.Offset, error) {}, t0)
	return first
}

func (h *coreHarness) store(i int, now time.Time) storeReq {
	h.t.Helper()
	req, ok := h.c.nextStore(i, now)
	if !ok {
		h.t.Fatalf("no store for server %d", i)
	}
	return req
}

func (h *coreHarness) ok(i int, req storeReq, now time.Time) {
	h.c.onStored(i, req, &wire.Stored{ResponseHeader: wire.ResponseHeader{Status: wire.StatusOK, LocalTail: req.end}}, nil, now)
	h.collect()
}

func (h *coreHarness) status(i int, req storeReq, st wire.Status, now time.Time) {
	h.c.onStored(i, req, &wire.Stored{ResponseHeader: wire.ResponseHeader{Status: st}}, nil, now)
	h.collect()
}

func (h *coreHarness) fail(i int, req storeReq, now time.Time) {
	h.c.onStored(i, req, nil, errors.New("boom"), now)
	h.collect()
}

func (h *coreHarness) collect() { h.done = append(h.done, h.c.takeCompletions()...) }

func (h *coreHarness) wantDone(firsts ...bifrost.Offset) {
	h.t.Helper()
	if len(h.done) != len(firsts) {
		h.t.Fatalf("completions: got %d %+v, want %v", len(h.done), h.done, firsts)
	}
	for i, f := range firsts {
		if h.done[i].first != f || h.done[i].err != nil {
			h.t.Fatalf("completion %d: got first %d err %v, want %d ok", i, h.done[i].first, h.done[i].err, f)
		}
	}
}

// The global tail is the r-th largest acknowledged end, and every batch below it
// completes in the same step, in order.
func TestCommitRuleRthLargestAck(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(2) // [1, 3)
	h.enqueue(1) // [3, 4)
	reqs := []storeReq{h.store(0, t0), h.store(1, t0), h.store(2, t0)}
	if reqs[0].first != 1 || reqs[0].end != 4 || len(reqs[0].payloads) != 3 {
		t.Fatalf("merged store: %+v", reqs[0])
	}
	h.ok(0, reqs[0], t0)
	if h.c.global != 1 || len(h.done) != 0 {
		t.Fatalf("one ack of r=2 committed: global %d, done %v", h.c.global, h.done)
	}
	h.ok(2, reqs[2], t0)
	if h.c.global != 4 {
		t.Fatalf("global %d, want 4", h.c.global)
	}
	h.wantDone(1, 3)
	h.ok(1, reqs[1], t0) // a late third ack changes nothing
	h.wantDone(1, 3)
	if h.c.inflight != 0 || h.c.pending() != 0 {
		t.Fatalf("permits not released: %d records, %d batches", h.c.inflight, h.c.pending())
	}
}

// A batch completes only once all of it is below the global tail, even when stores split
// it.
func TestCommitRuleWholeBatch(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) { c.maxStoreRecords = 2 })
	h.enqueue(3)
	a, b := h.store(0, t0), h.store(1, t0)
	h.ok(0, a, t0)
	h.ok(1, b, t0)
	if h.c.global != 3 || len(h.done) != 0 {
		t.Fatalf("global %d done %v: batch [1,4) must wait for offset 3", h.c.global, h.done)
	}
	a, b = h.store(0, t0), h.store(1, t0)
	if a.first != 3 || a.end != 4 {
		t.Fatalf("second store %+v", a)
	}
	h.ok(0, a, t0)
	h.ok(1, b, t0)
	h.wantDone(1)
}

// One store in flight per server; what is enqueued meanwhile goes in the next store,
// which starts where the previous one ended.
func TestPerServerOrderAndMerge(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(1)
	req := h.store(0, t0)
	if _, ok := h.c.nextStore(0, t0); ok {
		t.Fatal("second store to a server while one is in flight")
	}
	h.enqueue(2)
	h.enqueue(3)
	h.ok(0, req, t0)
	next := h.store(0, t0)
	if next.first != 2 || next.end != 7 || len(next.payloads) != 5 {
		t.Fatalf("next store %+v, want [2, 7) merged", next)
	}
}

// The byte bound of a store splits merged batches (but a store always carries a record).
func TestStoreByteBound(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) { c.maxStoreBytes = 2 })
	h.enqueue(5)
	req := h.store(0, t0)
	if req.first != 1 || req.end != 3 {
		t.Fatalf("store %+v, want [1, 3)", req)
	}
}

// A server that failed and comes back is sent stores from the global tail, not from
// where it stopped: it leaves a hole below the global tail only.
func TestLaggingServerSkipsToGlobalTail(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(5)
	r0, r1, r2 := h.store(0, t0), h.store(1, t0), h.store(2, t0)
	h.fail(2, r2, t0)
	h.ok(0, r0, t0)
	h.ok(1, r1, t0)
	if h.c.global != 6 {
		t.Fatalf("global %d", h.c.global)
	}
	h.enqueue(2)
	if _, ok := h.c.nextStore(2, t0); ok {
		t.Fatal("store to a server in backoff")
	}
	later := t0.Add(time.Second)
	req := h.store(2, later)
	if req.first != 6 || req.end != 8 || req.global != 6 {
		t.Fatalf("store to the lagging server %+v, want [6, 8) with global 6", req)
	}
}

// A server that answers OutOfBounds lost what it acknowledged: it is sent stores from
// max(its tail, global tail) again.
func TestOutOfBoundsResetsAck(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(3)
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.ok(0, r0, t0)
	h.ok(1, r1, t0)
	h.enqueue(1) // offset 4
	r0 = h.store(0, t0)
	h.c.onStored(0, r0, &wire.Stored{ResponseHeader: wire.ResponseHeader{Status: wire.StatusOutOfBounds, LocalTail: 1}}, nil, t0)
	req := h.store(0, t0.Add(time.Second))
	if req.first != 4 {
		t.Fatalf("resend from %d, want 4 (the global tail)", req.first)
	}
}

// Sealed answers from an f-majority fail every pending batch with its offset.
func TestSealedFMajorityFailsPending(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(2)
	h.enqueue(1)
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.status(0, r0, wire.StatusSealed, t0)
	if len(h.done) != 0 || h.c.state != seqOpen {
		t.Fatalf("one sealed server of n=3 r=2 ended the sequencer: %v %v", h.done, h.c.state)
	}
	h.status(1, r1, wire.StatusSealing, t0)
	if len(h.done) != 2 || h.c.state != seqSealed {
		t.Fatalf("done %v state %v", h.done, h.c.state)
	}
	for i, want := range []bifrost.Offset{1, 3} {
		var se *bifrost.SealedError
		if !errors.As(h.done[i].err, &se) || se.First != want {
			t.Fatalf("completion %d: %v, want SealedError{First: %d}", i, h.done[i].err, want)
		}
	}
	if _, err := h.c.admit(1, 1); !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("admit after seal: %v", err)
	}
}

// Fewer than r usable servers for WriteUnavailableTimeout fail the pending appends with
// ErrReconfigurationNeeded; a shorter outage does not.
func TestWriteUnavailableTimeout(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(1)
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.fail(0, r0, t0)
	h.fail(1, r1, t0)
	if h.c.tick(t0.Add(999 * time.Millisecond)) {
		t.Fatal("failed before the timeout")
	}
	if !h.c.tick(t0.Add(time.Second)) {
		t.Fatal("not failed after the timeout")
	}
	h.collect()
	if len(h.done) != 1 || !errors.Is(h.done[0].err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("done %+v", h.done)
	}
	if _, err := h.c.admit(1, 1); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("admit after failure: %v", err)
	}

	// A server that recovers within the timeout resets the clock.
	h = newCoreHarness(t, 3, 2, nil)
	h.enqueue(1)
	r0, r1 = h.store(0, t0), h.store(1, t0)
	h.fail(0, r0, t0)
	h.fail(1, r1, t0)
	r0 = h.store(0, t0.Add(500*time.Millisecond))
	h.ok(0, r0, t0.Add(500*time.Millisecond))
	if h.c.tick(t0.Add(5 * time.Second)) {
		t.Fatal("failed although two servers were usable")
	}
}

// Offsets past MaxOffset demand a reconfiguration, for good.
func TestOffsetsExhausted(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) { c.maxOffset = 5 })
	h.enqueue(3)
	if _, err := h.c.admit(3, 3); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("admit past the limit: %v", err)
	}
	if _, err := h.c.admit(1, 1); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("admit after exhaustion: %v", err)
	}
}

// The in-flight window blocks admission (no error) until permits are released; a batch
// larger than the window is admitted alone.
func TestInflightWindow(t *testing.T) {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) { c.maxInflightRecords = 4 })
	h.enqueue(3)
	if ok, err := h.c.admit(2, 2); ok || err != nil {
		t.Fatalf("admit over the window: ok=%v err=%v", ok, err)
	}
	r0, r1 := h.store(0, t0), h.store(1, t0)
	h.ok(0, r0, t0)
	h.ok(1, r1, t0)
	if ok, _ := h.c.admit(10, 10); !ok {
		t.Fatal("a large batch with nothing in flight must be admitted")
	}
}

// Draining refuses new appends but lets in-flight ones commit; freezing fails the rest,
// and acknowledgements arriving afterwards never move the tail (#2094).
func TestDrainThenFreeze(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(1)
	h.enqueue(1)
	a0, a1 := h.store(0, t0), h.store(1, t0)
	h.c.startDrain()
	if _, err := h.c.admit(1, 1); !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("admit while draining: %v", err)
	}
	h.ok(0, a0, t0)
	h.ok(1, a1, t0)
	h.wantDone(1, 2)

	h = newCoreHarness(t, 3, 2, nil)
	h.enqueue(1)
	a0, a1 = h.store(0, t0), h.store(1, t0)
	h.c.startDrain()
	if tail := h.c.freeze(); tail != 1 {
		t.Fatalf("frozen tail %d", tail)
	}
	h.collect()
	var se *bifrost.SealedError
	if len(h.done) != 1 || !errors.As(h.done[0].err, &se) || se.First != 1 {
		t.Fatalf("done %+v", h.done)
	}
	h.ok(0, a0, t0)
	h.ok(1, a1, t0)
	if h.c.global != 1 {
		t.Fatalf("acks after freeze moved the tail to %d", h.c.global)
	}
	if _, ok := h.c.nextStore(2, t0); ok {
		t.Fatal("store sent after freeze")
	}
}

// Once commits stop, each server gets the final global tail after TailPushDelay.
func TestTailPushAfterCommitsStop(t *testing.T) {
	h := newCoreHarness(t, 3, 2, nil)
	h.enqueue(1)
	r0, r1, r2 := h.store(0, t0), h.store(1, t0), h.store(2, t0)
	h.ok(0, r0, t0)
	h.ok(1, r1, t0)
	h.ok(2, r2, t0)
	if _, ok := h.c.nextInfo(0, t0); ok {
		t.Fatal("push before the delay")
	}
	if at := h.c.wakeAt(0); !at.Equal(t0.Add(10 * time.Millisecond)) {
		t.Fatalf("wake at %v", at)
	}
	g, ok := h.c.nextInfo(0, t0.Add(10*time.Millisecond))
	if !ok || g != 2 {
		t.Fatalf("push %d %v, want 2", g, ok)
	}
	h.c.onInfo(0, g, nil, errors.New("lost"), t0)
	if g, ok = h.c.nextInfo(0, t0.Add(time.Second)); !ok || g != 2 {
		t.Fatalf("lost push not retried: %d %v", g, ok)
	}
	h.c.onInfo(0, g, &wire.LogletInfo{ResponseHeader: wire.ResponseHeader{Status: wire.StatusOK}}, nil, t0)
	if _, ok := h.c.nextInfo(0, t0.Add(time.Second)); ok {
		t.Fatal("pushed the same tail twice")
	}
}

// The commit rule (r-th largest acknowledged end, with per-server skipping to the global
// tail) checked against a naive reference: the global tail is the largest G such that
// every offset below it is held by at least r servers. Random interleavings of
// enqueues, successes and failures, reproducible by seed.
func TestCommitRuleAgainstReference(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed))
		n := 1 + rng.IntN(5)
		r := 1 + rng.IntN(n)
		h := newCoreHarness(t, n, r, func(c *coreConfig) { c.maxStoreRecords = 1 + rng.IntN(4) })
		held := make([]map[bifrost.Offset]bool, n)
		for i := range held {
			held[i] = map[bifrost.Offset]bool{}
		}
		inflight := make([]*storeReq, n)
		now := t0
		for step := 0; step < 300; step++ {
			now = now.Add(time.Millisecond)
			switch i := rng.IntN(n); {
			case rng.IntN(4) == 0:
				if ok, _ := h.c.admit(3, 3); ok {
					h.enqueue(1 + rng.IntN(3))
				}
			case inflight[i] == nil:
				if req, ok := h.c.nextStore(i, now.Add(time.Second)); ok {
					inflight[i] = &req
				}
			case rng.IntN(3) == 0:
				h.fail(i, *inflight[i], now)
				inflight[i] = nil
			default:
				for o := inflight[i].first; o < inflight[i].end; o++ {
					held[i][o] = true
				}
				h.ok(i, *inflight[i], now)
				inflight[i] = nil
			}
			ref := bifrost.Offset(1)
			for ; ; ref++ {
				c := 0
				for i := range held {
					if held[i][ref] {
						c++
					}
				}
				if c < r {
					break
				}
			}
			if h.c.global != ref {
				t.Fatalf("seed %d step %d (n=%d r=%d): global %d, reference %d", seed, step, n, r, h.c.global, ref)
			}
			prev := bifrost.Offset(0)
			for _, d := range h.done {
				if d.err != nil || d.first <= prev || d.first >= h.c.global {
					t.Fatalf("seed %d: bad completion %+v after %d (global %d)", seed, d, prev, h.c.global)
				}
				prev = d.first
			}
		}
	}
}

// Several stores in flight per server, against a model of the log server's acceptance
// rule (a store is accepted only at or below next_ok = max(staging tail, known global
// tail); a store entirely below the staging tail is a duplicate). Stores reach a server in
// order or, with reordering, in any order; some are lost before the server sees them and
// some answers are lost after it stored them. Safety: every offset below the sequencer's
// global tail is held by at least r servers, and completions come in order below it.
// Liveness: once the network behaves, everything enqueued commits.
func TestPipelinedStoresAgainstServerModel(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := 1 + rng.IntN(5)
		r := 1 + rng.IntN(n)
		reorder := rng.IntN(2) == 0
		h := newCoreHarness(t, n, r, func(c *coreConfig) {
			c.maxStoreRecords = 1 + rng.IntN(4)
			c.maxStores = 1 + rng.IntN(4)
			c.gather = rng.IntN(2) == 0
		})
		// Stores are sent a second ahead of the clock (past any backoff), except with
		// gathering, whose holds need round trips measured forward in time.
		sendAhead := time.Second
		if h.c.cfg.gather {
			sendAhead = 0
		}
		type server struct {
			held     map[bifrost.Offset]bool
			staging  bifrost.Offset // end of the accepted records
			global   bifrost.Offset // known global tail
			inflight []storeReq
		}
		servers := make([]*server, n)
		for i := range servers {
			servers[i] = &server{held: map[bifrost.Offset]bool{}, staging: 1, global: 1}
		}
		// process is the server taking a store; it returns the answer.
		process := func(s *server, req storeReq) *wire.Stored {
			s.global = max(s.global, req.global)
			last := req.end - 1
			switch nextOK := max(s.staging, s.global); {
			case req.first > nextOK:
				return &wire.Stored{ResponseHeader: wire.ResponseHeader{Status: wire.StatusOutOfBounds, LocalTail: s.staging}}
			case last < s.staging:
				for o := req.first; o < req.end; o++ {
					if !s.held[o] {
						return &wire.Stored{ResponseHeader: wire.ResponseHeader{Status: wire.StatusSequencerMismatch}}
					}
				}
			default:
				for o := max(req.first, min(s.staging, req.first)); o < req.end; o++ {
					s.held[o] = true
				}
				s.staging = max(s.staging, req.end)
			}
			return &wire.Stored{ResponseHeader: wire.ResponseHeader{Status: wire.StatusOK, LocalTail: s.staging}}
		}
		check := func(step int) {
			for o := bifrost.Offset(1); o < h.c.global; o++ {
				c := 0
				for _, s := range servers {
					if s.held[o] {
						c++
					}
				}
				if c < r {
					t.Fatalf("seed %d step %d (n=%d r=%d): offset %d below the global tail %d is held by %d servers", seed, step, n, r, o, h.c.global, c)
				}
			}
			prev := bifrost.Offset(0)
			for _, d := range h.done {
				if d.err != nil || d.first <= prev || d.first >= h.c.global {
					t.Fatalf("seed %d: bad completion %+v after %d (global %d)", seed, d, prev, h.c.global)
				}
				prev = d.first
			}
		}
		now := t0
		answer := func(i int, faults bool) {
			s := servers[i]
			k := 0
			if reorder && faults {
				k = rng.IntN(len(s.inflight))
			}
			req := s.inflight[k]
			s.inflight = append(s.inflight[:k], s.inflight[k+1:]...)
			switch x := rng.IntN(6); {
			case faults && x == 0: // lost on the way
				h.fail(i, req, now)
			case faults && x == 1: // stored, answer lost
				process(s, req)
				h.fail(i, req, now)
			default:
				h.c.onStored(i, req, process(s, req), nil, now)
				h.collect()
			}
		}
		for step := 0; step < 400; step++ {
			now = now.Add(time.Millisecond)
			i := rng.IntN(n)
			switch {
			case rng.IntN(3) == 0:
				if ok, _ := h.c.admit(3, 3); ok {
					h.enqueue(1 + rng.IntN(3))
				}
			case rng.IntN(2) == 0:
				if req, ok := h.c.nextStore(i, now.Add(sendAhead)); ok {
					servers[i].inflight = append(servers[i].inflight, req)
				}
			case len(servers[i].inflight) > 0:
				answer(i, true)
			}
			check(step)
		}
		// The network heals: answer everything in order until nothing is left to send.
		for round := 0; round < 1000 && h.c.global < h.c.next; round++ {
			now = now.Add(time.Second)
			for i := range servers {
				for len(servers[i].inflight) > 0 {
					answer(i, false)
				}
				for {
					req, ok := h.c.nextStore(i, now)
					if !ok {
						break
					}
					servers[i].inflight = append(servers[i].inflight, req)
				}
			}
		}
		check(-1)
		if h.c.global != h.c.next {
			t.Fatalf("seed %d (n=%d r=%d): global tail %d, next %d: appends never committed", seed, n, r, h.c.global, h.c.next)
		}
	}
}
