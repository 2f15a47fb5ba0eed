package replicated

import (
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
)

// Tests of gathering (seqCore.gatherUntil): while a store to a server is in flight, new
// records for it wait a third of its round trip after the later of the last send and the
// last answer, and then go in one store.

const us = time.Microsecond

// newGatherHarness is three servers, r=2, flooding (no standbys), two stores in flight per
// server, with gathering; server 0's round trip is measured as 300µs, and it is idle at
// t0+1ms.
func newGatherHarness(t *testing.T) *coreHarness {
	h := newCoreHarness(t, 3, 2, func(c *coreConfig) {
		c.maxStores = 2
		c.gather = true
	})
	h.enqueueAt(1, t0)
	first := h.store(0, t0)
	if !h.c.gatherUntil(0, t0).IsZero() {
		t.Fatal("records are held before any round trip was measured")
	}
	h.ok(0, first, t0.Add(300*us))
	if rtt := h.c.servers[0].rtt; rtt != 300*us {
		t.Fatalf("round trip %v, want 300µs", rtt)
	}
	return h
}

// twoInFlight sends server 0 of a gather harness two stores from t1 = t0+1ms: a = [2, 3)
// at once, and b = [3, 4) once its hold (100µs) is over; server 0 is then full.
func (h *coreHarness) twoInFlight() (t1 time.Time, a, b storeReq) {
	h.t.Helper()
	t1 = t0.Add(time.Millisecond)
	h.enqueueAt(1, t1)
	a = h.store(0, t1)
	h.enqueueAt(1, t1)
	h.noStore(0, t1, "during its hold")
	b = h.store(0, t1.Add(100*us))
	if a.first != 2 || b.first != 3 || !h.c.full(0) {
		h.t.Fatalf("stores from %d and %d, full %v; want 2, 3, full", a.first, b.first, h.c.full(0))
	}
	return t1, a, b
}

// The second store to a busy server waits, and then carries every record appended
// meanwhile; the append neither wakes a sender armed for the deadline nor lets it sleep past it.
func TestGatherHoldsTheStoreBehindOneInFlight(t *testing.T) {
	h := newGatherHarness(t)
	t1 := t0.Add(time.Millisecond)
	h.enqueueAt(1, t1) // [2, 3)
	if r := h.store(0, t1); r.first != 2 || r.end != 3 {
		t.Fatalf("store [%d, %d), want [2, 3): nothing in flight, no hold", r.first, r.end)
	}
	now := t1.Add(10 * us)
	h.enqueueAt(1, now) // [3, 4)
	due := t1.Add(100 * us)
	if got := h.c.gatherUntil(0, now); !got.Equal(due) {
		t.Fatalf("held until %v, want %v (a third of the round trip after the send)", got.Sub(t0), due.Sub(t0))
	}
	h.noStore(0, now, "while it gathers")
	if got, gathering := h.c.sleepUntil(0, now); !got.Equal(due) || !gathering {
		t.Fatalf("the sender sleeps until %v (gathering %v), want the gather deadline %v", got.Sub(t0), gathering, due.Sub(t0))
	}
	if !h.c.wakeOnAppend(0, time.Time{}, now) {
		t.Fatal("an append does not wake a sender that has no timer armed")
	}
	if h.c.wakeOnAppend(0, due, now) {
		t.Fatal("an append wakes a sender armed for the gather deadline")
	}
	h.enqueueAt(2, due.Add(-us)) // [4, 6)
	h.noStore(0, due.Add(-us), "just before the deadline")
	if r := h.store(0, due); r.first != 3 || r.end != 6 {
		t.Fatalf("store at the deadline [%d, %d), want everything gathered [3, 6)", r.first, r.end)
	}
}

// The answer of the store in flight ends the hold: nothing is in flight any more.
func TestGatherEndsWithTheAnswerInFlight(t *testing.T) {
	h := newGatherHarness(t)
	t1 := t0.Add(time.Millisecond)
	h.enqueueAt(1, t1)
	inflight := h.store(0, t1)
	h.enqueueAt(1, t1.Add(10*us))
	h.noStore(0, t1.Add(10*us), "while it gathers")
	h.ok(0, inflight, t1.Add(50*us))
	if r := h.store(0, t1.Add(50*us)); r.first != 3 {
		t.Fatalf("store from %d after the answer, want 3", r.first)
	}
}

// After an answer (another store still in flight) the hold counts from the answer: the
// appends that the commit let go come right after it.
func TestGatherCountsFromTheLastAnswer(t *testing.T) {
	h := newGatherHarness(t)
	t1, a, _ := h.twoInFlight()
	answered := t1.Add(400 * us)
	h.ok(0, a, answered) // round trip 400µs: the average moves an eighth of the way
	rtt := h.c.servers[0].rtt
	if rtt != 300*us+100*us/8 {
		t.Fatalf("round trip %v, want 312.5µs", rtt)
	}
	h.enqueueAt(1, answered) // [4, 5)
	due := answered.Add(rtt / 3)
	if got := h.c.gatherUntil(0, answered); !got.Equal(due) {
		t.Fatalf("held until %v, want %v (a third of the round trip after the answer)", got.Sub(t0), due.Sub(t0))
	}
	h.noStore(0, due.Add(-us), "before the deadline")
	if r := h.store(0, due); r.first != 4 || r.end != 5 {
		t.Fatalf("store at the deadline [%d, %d), want [4, 5)", r.first, r.end)
	}
}

// Records that fill a store, by count or by bytes, go at once: holding them gathers nothing
// more.
func TestGatherNotForAFullStore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   func(*coreConfig)
		payload []byte
	}{
		{"records", func(c *coreConfig) { c.maxStoreRecords = 1 }, []byte{1}},
		{"bytes", func(c *coreConfig) { c.maxStoreBytes = 8 }, make([]byte, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newGatherHarness(t)
			tc.limit(&h.c.cfg)
			t1 := t0.Add(time.Millisecond)
			h.enqueueAt(1, t1)
			h.store(0, t1)
			now := t1.Add(10 * us)
			if ok, err := h.c.admit(1, int64(len(tc.payload))); !ok || err != nil {
				t.Fatalf("admit: %v %v", ok, err)
			}
			h.c.enqueue([][]byte{tc.payload}, int64(len(tc.payload)), func(bifrost.Offset, error) {}, now)
			if g := h.c.gatherUntil(0, now); !g.IsZero() {
				t.Fatalf("a full store is held until %v", g.Sub(t0))
			}
			if r := h.store(0, now); r.first != 3 || r.end != 4 {
				t.Fatalf("store [%d, %d), want the full [3, 4)", r.first, r.end)
			}
		})
	}
}

// A sender that cannot send for another reason (a failed store to resync) gets no gather
// deadline, and never one already past, on which it would spin.
func TestGatherNeverDueInThePast(t *testing.T) {
	h := newGatherHarness(t)
	t1, a, b := h.twoInFlight()
	h.fail(0, a, t1.Add(110*us)) // b still in flight: resync
	h.c.servers[0].retryAt = time.Time{}
	h.enqueueAt(1, t1.Add(110*us))
	now := t1.Add(120 * us) // within what would be b's gather window
	if g := h.c.gatherUntil(0, now); !g.IsZero() {
		t.Fatalf("a resyncing server gathers until %v", g.Sub(t0))
	}
	h.noStore(0, now, "while it resyncs")
	if wake, _ := h.c.sleepUntil(0, now); !wake.IsZero() {
		t.Fatalf("a resyncing sender wakes at %v, want only when woken (by the answer in flight)", wake.Sub(t0))
	}
	h.ok(0, b, t1.Add(300*us))
	// b's Ok acknowledges everything below its end (the server took it, so it holds
	// what came before); the held record goes at once.
	if r := h.store(0, t1.Add(300*us)); r.first != 4 || r.end != 5 {
		t.Fatalf("after the answer, store [%d, %d), want [4, 5) at once", r.first, r.end)
	}
}

// A quiet standby's batches keep their own timers; gathering holds only eager stores.
func TestGatherLeavesQuietStandbysAlone(t *testing.T) {
	h := newStandbyHarness(t)
	h.c.cfg.gather, h.c.cfg.maxStores = true, 2
	h.c.servers[2].rtt = 300 * us
	at := t0.Add(time.Second) // the standby's first batch is due at once
	h.enqueueAt(1, at)
	h.ok(0, h.store(0, at), at)
	h.ok(1, h.store(1, at), at)
	if lazy := h.store(2, at); lazy.first != 1 || lazy.end != 2 {
		t.Fatalf("standby's batch [%d, %d), want the committed [1, 2)", lazy.first, lazy.end)
	}
	h.enqueueAt(1, at) // pending, with the standby's batch in flight
	if g := h.c.gatherUntil(2, at); !g.IsZero() {
		t.Fatalf("a quiet standby gathers until %v", g.Sub(t0))
	}
}
