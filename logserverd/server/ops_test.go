package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

func TestSeal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 4)
	before := h.store.Stats().Writes
	release := h.blockWriter()
	var wg sync.WaitGroup
	results := make(chan *wire.Sealed, 10)
	wg.Go(func() { results <- h.seal() })
	waitFor(t, "the seal to be enqueued", func() bool { return h.state(func(l *loglet) bool { return l.sealing }) })
	for range 9 {
		wg.Go(func() { results <- h.seal() })
	}
	release()
	wg.Wait()
	close(results)
	for r := range results {
		if r.Status != wire.StatusOK || !r.Sealed || r.LocalTail != 5 {
			t.Fatalf("seal %+v", r)
		}
	}
	// The blocker and one seal: concurrent seals share the write.
	if n := h.store.Stats().Writes - before; n != 2 {
		t.Fatalf("%d writes for 10 concurrent seals, want 1 (+1 blocker)", n-1)
	}
	if r := h.seal(); r.Status != wire.StatusOK || r.LocalTail != 5 {
		t.Fatalf("seal again: %+v", r)
	}
	if info := h.info(); !info.Sealed {
		t.Fatalf("info %+v", info)
	}
}

func TestSealWakesWaiters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 1)
	wait := func(q wire.TailQuery) <-chan *wire.TailUpdated {
		return async(func() *wire.TailUpdated {
			r, err := h.srv.WaitForTail(context.Background(), &wire.WaitForTail{Header: wire.Header{LogletID: testLoglet}, Query: q, Offset: 100})
			if err != nil {
				t.Error(err)
			}
			return r
		})
	}
	local, global := wait(wire.WaitLocalTail), wait(wire.WaitGlobalTail)
	pending(t, local, "local tail wait")
	h.seal()
	if r := recv(t, local, "local wait"); r.Status != wire.StatusOK || !r.Sealed {
		t.Fatalf("local %+v", r)
	}
	if r := recv(t, global, "global wait"); r.Status != wire.StatusSealed || !r.Sealed {
		t.Fatalf("global %+v", r)
	}
}

func TestWaitForTail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	wait := func(q wire.TailQuery, off bifrost.Offset) <-chan *wire.TailUpdated {
		return async(func() *wire.TailUpdated {
			r, err := h.srv.WaitForTail(ctx, &wire.WaitForTail{Header: wire.Header{LogletID: testLoglet}, Query: q, Offset: off})
			if err != nil {
				t.Error(err)
			}
			return r
		})
	}
	local := wait(wire.WaitLocalTail, 3)
	either := wait(wire.WaitLocalOrGlobalTail, 5)
	global := wait(wire.WaitGlobalTail, 5)
	h.mustStore(1, 2)
	if r := recv(t, local, "local"); r.Status != wire.StatusOK || r.LocalTail != 3 {
		t.Fatalf("local %+v", r)
	}
	pending(t, either, "local-or-global wait")
	h.info()                    // no tail change
	h.store1(storeReq(3, 1, 5)) // raises the global tail to 5, refused (below it)
	for _, ch := range []<-chan *wire.TailUpdated{either, global} {
		if r := recv(t, ch, "wait"); r.Status != wire.StatusOK || r.KnownGlobalTail != 5 {
			t.Fatalf("%+v", r)
		}
	}
	// Already satisfied: answers at once.
	if r := recv(t, wait(wire.WaitLocalTail, 1), "satisfied wait"); r.Status != wire.StatusOK {
		t.Fatalf("%+v", r)
	}
	if r := recv(t, wait(wire.TailQuery(9), 1), "bad query"); r.Status != wire.StatusMalformed {
		t.Fatalf("%+v", r)
	}
	// The caller's context bounds the wait.
	cctx, cancel := context.WithCancel(ctx)
	errc := async(func() error {
		_, err := h.srv.WaitForTail(cctx, &wire.WaitForTail{Header: wire.Header{LogletID: testLoglet}, Query: wire.WaitLocalTail, Offset: 50})
		return err
	})
	cancel()
	if err := recv(t, errc, "cancelled wait"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	// Close releases waiters.
	srv := h.srv // h.close clears h.srv; a wait that starts after Close fails the same way
	closed := async(func() error {
		_, err := srv.WaitForTail(ctx, &wire.WaitForTail{Header: wire.Header{LogletID: testLoglet}, Query: wire.WaitGlobalTail, Offset: 50})
		return err
	})
	h.close()
	if err := recv(t, closed, "wait at close"); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("err %v", err)
	}
}

func TestWaitForLocalTailEndsOnStorageFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.info()
	ch := async(func() *wire.TailUpdated {
		r, _ := h.srv.WaitForTail(context.Background(), &wire.WaitForTail{Header: wire.Header{LogletID: testLoglet}, Query: wire.WaitLocalTail, Offset: 5})
		return r
	})
	h.store.Fail(errors.New("disk gone"))
	if r := recv(t, ch, "wait"); r == nil || r.Status != wire.StatusDisabled {
		t.Fatalf("%+v", r)
	}
}

func offsets(r *wire.Records) string {
	s := ""
	for _, rec := range r.Records {
		switch rec.Kind {
		case wire.RecordTrimGap:
			s += fmt.Sprintf("gap[%d-%d] ", rec.Offset, rec.GapTo)
		default:
			if string(rec.Payload) != fmt.Sprintf("rec-%d", rec.Offset) {
				return fmt.Sprintf("bad payload %q at %d", rec.Payload, rec.Offset)
			}
			s += fmt.Sprintf("%d ", rec.Offset)
		}
	}
	return fmt.Sprintf("%snext=%d", s, r.NextOffset)
}

func TestGetRecords(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 5)
	h.store1(storeReq(8, 3, 8)) // jump to the global tail: hole at 6..7
	h.trim(2, 0)
	tests := []struct {
		name     string
		from, to bifrost.Offset
		limit    uint32
		want     string
	}{
		{"trim gap, holes skipped, clipped to the local tail", 1, 100, 1 << 20, "gap[1-2] 3 4 5 8 9 10 next=11"},
		{"above the trim point", 3, 4, 1 << 20, "3 4 next=5"},
		{"byte budget", 3, 100, 9, "3 next=4"},
		{"at least one record", 4, 100, 0, "4 next=5"},
		{"in a hole", 6, 7, 1 << 20, "next=8"},
		{"past the local tail", 11, 20, 1 << 20, "next=11"},
		{"range inside the trim gap", 1, 1, 1 << 20, "gap[1-1] next=2"},
	}
	for _, tt := range tests {
		r := h.records(tt.from, tt.to, tt.limit)
		if r.Status != wire.StatusOK || offsets(r) != tt.want {
			t.Errorf("%s: %v %q, want %q", tt.name, r.Status, offsets(r), tt.want)
		}
	}
	for _, bad := range [][2]bifrost.Offset{{0, 5}, {5, 4}} {
		if r := h.records(bad[0], bad[1], 100); r.Status != wire.StatusMalformed {
			t.Errorf("GetRecords(%d, %d): %v", bad[0], bad[1], r.Status)
		}
	}
}

func TestTrim(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 50)
	tests := []struct {
		name      string
		point     bifrost.Offset
		global    bifrost.Offset
		want      wire.Status
		wantPoint bifrost.Offset
	}{
		{"zero is malformed", 0, 0, wire.StatusMalformed, 0},
		{"at the local tail is malformed", 51, 0, wire.StatusMalformed, 0},
		{"below the local tail", 20, 0, wire.StatusOK, 20},
		{"lower trim changes nothing", 10, 0, wire.StatusOK, 20},
		{"clipped to local tail - 1", 60, 70, wire.StatusOK, 50},
	}
	for _, tt := range tests {
		r := h.trim(tt.point, tt.global)
		if r.Status != tt.want {
			t.Fatalf("%s: %v", tt.name, r.Status)
		}
		if got := h.info().TrimPoint; got != tt.wantPoint {
			t.Fatalf("%s: trim point %d, want %d", tt.name, got, tt.wantPoint)
		}
	}
	// Reads clamp to the trim point at once; the records go in the background.
	if r := h.records(1, 100, 1<<20); offsets(r) != "gap[1-50] next=51" {
		t.Fatalf("records %q", offsets(r))
	}
	waitFor(t, "background deletion", func() bool {
		recs, _, _ := h.store.ReadRecords(testLoglet, 1, 100, 1<<20, 100)
		return len(recs) == 0
	})
	h.reopen()
	if info := h.info(); info.TrimPoint != 50 || info.LocalTail != 51 || info.KnownGlobalTail != 70 {
		t.Fatalf("after reopen: %+v", info)
	}
}

func TestGetDigest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 4)
	h.store1(storeReq(7, 2, 7)) // hole at 5..6
	h.store1(storeReq(9, 1, 0))
	h.trim(2, 0)
	r, err := h.srv.GetDigest(context.Background(), &wire.GetDigest{Header: wire.Header{LogletID: testLoglet}, From: 1, To: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.DigestEntry{{From: 1, To: 2, Status: wire.DigestTrimmed}, {From: 3, To: 4, Status: wire.DigestExists}, {From: 7, To: 9, Status: wire.DigestExists}}
	if r.Status != wire.StatusOK || fmt.Sprint(r.Entries) != fmt.Sprint(want) {
		t.Fatalf("digest %v %v, want %v", r.Status, r.Entries, want)
	}
	r, _ = h.srv.GetDigest(context.Background(), &wire.GetDigest{Header: wire.Header{LogletID: testLoglet}, From: 5, To: 3})
	if r.Status != wire.StatusMalformed {
		t.Fatalf("from > to: %v", r.Status)
	}
}

func TestRecoveryAfterReopen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 10)
	h.trim(4, 11)
	h.seal()
	h.reopen()
	info := h.info()
	if info.LocalTail != 11 || !info.Sealed || info.TrimPoint != 4 || info.KnownGlobalTail != 11 {
		t.Fatalf("after reopen: %+v", info)
	}
	if r := h.store1(storeReq(11, 1, 0)); r.Status != wire.StatusSealed {
		t.Fatalf("store after reopen: %v", r.Status)
	}
	repair := storeReq(11, 1, 0)
	repair.Sequencer = seqB
	repair.Flags = wire.FlagIgnoreSeal
	if r := h.store1(repair); r.Status != wire.StatusSequencerMismatch {
		t.Fatalf("repair from another sequencer after reopen: %v (the pin was lost)", r.Status)
	}
	if r := h.records(1, 100, 1<<20); offsets(r) != "gap[1-4] 5 6 7 8 9 10 next=11" {
		t.Fatalf("records %q", offsets(r))
	}
}

func TestGlobalTailIsPersisted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.srv.GetLogletInfo(context.Background(), &wire.GetLogletInfo{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: 9}})
	h.reopen() // Close writes the known global tails
	if info := h.info(); info.KnownGlobalTail != 9 {
		t.Fatalf("global tail %d after reopen, want 9", info.KnownGlobalTail)
	}
}

// Many goroutines store into many loglets at once; after a reopen every record is there.
func TestConcurrentStores(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	const loglets, writersPerLoglet, batches = 16, 4, 25
	var wg sync.WaitGroup
	for lg := range loglets {
		id := uint64(lg) + 1
		// Writers of one loglet take turns through a channel, as one sequencer's sender
		// would, so offsets arrive in order; readers poll meanwhile.
		turn := make(chan int, 1)
		turn <- 1
		for range writersPerLoglet {
			wg.Go(func() {
				for range batches {
					first := <-turn
					r, err := h.srv.Store(context.Background(), &wire.Store{Header: wire.Header{LogletID: id},
						FirstOffset: bifrost.Offset(first), Sequencer: seqA, Payloads: recs(first, 3)})
					if err != nil || r.Status != wire.StatusOK {
						t.Errorf("loglet %d store %d: %+v %v", id, first, r, err)
					}
					turn <- first + 3
				}
			})
		}
		wg.Go(func() {
			for range 20 {
				h.srv.GetRecords(context.Background(), &wire.GetRecords{Header: wire.Header{LogletID: id}, From: 1, To: 1000, LimitBytes: 1 << 20})
			}
		})
	}
	wg.Wait()
	h.reopen()
	const want = writersPerLoglet * batches * 3
	for lg := range loglets {
		r, _ := h.srv.GetRecords(context.Background(), &wire.GetRecords{Header: wire.Header{LogletID: uint64(lg) + 1}, From: 1, To: 10000, LimitBytes: 1 << 30})
		if len(r.Records) != want || r.LocalTail != want+1 {
			t.Fatalf("loglet %d: %d records, local tail %d, want %d", lg+1, len(r.Records), r.LocalTail, want)
		}
		for i, rec := range r.Records {
			if rec.Offset != bifrost.Offset(i+1) || string(rec.Payload) != fmt.Sprintf("rec-%d", i+1) {
				t.Fatalf("loglet %d record %d: %d %q", lg+1, i, rec.Offset, rec.Payload)
			}
		}
	}
}

func TestDataLossAnswersEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{DataLoss: true})
	ctx := context.Background()
	hdr := wire.Header{LogletID: testLoglet, KnownGlobalTail: 3}
	statuses := map[string]wire.Status{}
	r1, _ := h.srv.Store(ctx, storeReq(1, 1, 0))
	statuses["store"] = r1.Status
	r2, _ := h.srv.Seal(ctx, &wire.Seal{Header: hdr, Sequencer: seqA})
	statuses["seal"] = r2.Status
	r3, _ := h.srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: hdr})
	statuses["info"] = r3.Status
	r4, _ := h.srv.GetRecords(ctx, &wire.GetRecords{Header: hdr, From: 1, To: 2})
	statuses["records"] = r4.Status
	r5, _ := h.srv.Trim(ctx, &wire.Trim{Header: hdr, TrimPoint: 1})
	statuses["trim"] = r5.Status
	r6, _ := h.srv.WaitForTail(ctx, &wire.WaitForTail{Header: hdr, Query: wire.WaitLocalTail, Offset: 1})
	statuses["wait"] = r6.Status
	r7, _ := h.srv.GetDigest(ctx, &wire.GetDigest{Header: hdr, From: 1, To: 2})
	statuses["digest"] = r7.Status
	for op, st := range statuses {
		if st != wire.StatusDataLoss {
			t.Errorf("%s: %v, want data-loss", op, st)
		}
	}
	if h.store.Stats().Writes != 0 {
		t.Fatal("a data-loss server wrote")
	}
}
