package server

import (
	"context"
	"errors"
	"math"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// TestStoreRules has one case per acceptance rule of BIFROST.md §2, in the rules' order.
func TestStoreRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setup     func(h *harness)
		opts      Options
		req       func() *wire.Store
		want      wire.Status
		wantLocal bifrost.Offset // 0: not checked
	}{
		{
			name: "no payloads is malformed",
			req:  func() *wire.Store { r := storeReq(1, 1, 0); r.Payloads = nil; return r },
			want: wire.StatusMalformed,
		},
		{
			name: "offset 0 is malformed",
			req:  func() *wire.Store { r := storeReq(1, 1, 0); r.FirstOffset = 0; return r },
			want: wire.StatusMalformed,
		},
		{
			name: "offset overflow is malformed",
			req:  func() *wire.Store { r := storeReq(1, 2, 0); r.FirstOffset = math.MaxUint64 - 1; return r },
			want: wire.StatusMalformed,
		},
		{
			name: "unknown flags are malformed",
			req:  func() *wire.Store { r := storeReq(1, 1, 0); r.Flags = 0x80; return r },
			want: wire.StatusMalformed,
		},
		{
			name: "no sequencer is malformed",
			req:  func() *wire.Store { r := storeReq(1, 1, 0); r.Sequencer.Name = ""; return r },
			want: wire.StatusMalformed,
		},
		{
			name:  "sealed refuses a normal store",
			setup: func(h *harness) { h.mustStore(1, 2); h.seal() },
			req:   func() *wire.Store { return storeReq(3, 1, 0) },
			want:  wire.StatusSealed, wantLocal: 3,
		},
		{
			name:  "sealed accepts a repair store",
			setup: func(h *harness) { h.mustStore(1, 2); h.seal() },
			req:   func() *wire.Store { r := storeReq(3, 1, 0); r.Flags = wire.FlagIgnoreSeal; return r },
			want:  wire.StatusOK, wantLocal: 4,
		},
		{
			name:  "failed storage is disabled",
			setup: func(h *harness) { h.mustStore(1, 1); h.store.Fail(errors.New("disk on fire")) },
			req:   func() *wire.Store { return storeReq(2, 1, 0) },
			want:  wire.StatusDisabled, wantLocal: 2,
		},
		{
			name: "lost storage is data loss",
			opts: Options{DataLoss: true},
			req:  func() *wire.Store { return storeReq(1, 1, 0) },
			want: wire.StatusDataLoss,
		},
		{
			name:  "another sequencer than the pinned one",
			setup: func(h *harness) { h.mustStore(1, 1) },
			req:   func() *wire.Store { r := storeReq(2, 1, 0); r.Sequencer = seqB; return r },
			want:  wire.StatusSequencerMismatch, wantLocal: 2,
		},
		{
			name:  "a later life of the pinned sequencer's node is another sequencer",
			setup: func(h *harness) { h.mustStore(1, 1) },
			req:   func() *wire.Store { r := storeReq(2, 1, 0); r.Sequencer.Generation++; return r },
			want:  wire.StatusSequencerMismatch,
		},
		{
			name:  "below the global tail, never accepted: written into the hole",
			setup: func(h *harness) { h.info() }, // loaded, empty
			req:   func() *wire.Store { return storeReq(5, 1, 10) },
			want:  wire.StatusOK, wantLocal: 6,
		},
		{
			name:  "overlapping the staging tail: a retry merged with new records, the new part is written",
			setup: func(h *harness) { h.mustStore(1, 4) },
			req:   func() *wire.Store { return storeReq(3, 3, 0) },
			want:  wire.StatusOK, wantLocal: 6,
		},
		{
			name: "ahead of next_ok is out of bounds",
			req:  func() *wire.Store { return storeReq(3, 1, 0) },
			want: wire.StatusOutOfBounds, wantLocal: 1,
		},
		{
			name:  "ahead of the local tail and the global tail",
			setup: func(h *harness) { h.mustStore(1, 2) },
			req:   func() *wire.Store { return storeReq(6, 1, 5) },
			want:  wire.StatusOutOfBounds, wantLocal: 3,
		},
		{
			name: "may jump to the global tail, leaving a hole",
			req:  func() *wire.Store { return storeReq(10, 2, 10) },
			want: wire.StatusOK, wantLocal: 12,
		},
		{
			name: "expired deadline is dropped",
			req:  func() *wire.Store { r := storeReq(1, 1, 0); r.TimeoutAt = now.UnixMilli(); return r },
			want: wire.StatusDropped, wantLocal: 1,
		},
		{
			name: "deadline not reached is stored",
			req:  func() *wire.Store { r := storeReq(1, 1, 0); r.TimeoutAt = now.UnixMilli() + 1; return r },
			want: wire.StatusOK, wantLocal: 2,
		},
		{
			name:  "exact duplicate of durable records is ok",
			setup: func(h *harness) { h.mustStore(1, 3); h.mustStore(4, 1) },
			req:   func() *wire.Store { return storeReq(1, 3, 0) },
			want:  wire.StatusOK, wantLocal: 5,
		},
		{
			name:  "duplicate with other payloads",
			setup: func(h *harness) { h.mustStore(1, 3) },
			req:   func() *wire.Store { r := storeReq(1, 3, 0); r.Payloads[2] = []byte("other"); return r },
			want:  wire.StatusSequencerMismatch,
		},
		{
			name:  "duplicate of a hole",
			setup: func(h *harness) { h.store1(storeReq(10, 1, 10)) },
			req:   func() *wire.Store { return storeReq(5, 1, 0) },
			want:  wire.StatusSequencerMismatch, wantLocal: 11,
		},
		{
			name:  "duplicate of trimmed records is ok",
			setup: func(h *harness) { h.mustStore(1, 5); h.trim(3, 6) },
			req:   func() *wire.Store { return storeReq(2, 3, 0) },
			want:  wire.StatusOK,
		},
		{
			name:  "repair below next_ok rewrites",
			setup: func(h *harness) { h.mustStore(1, 3) },
			req:   func() *wire.Store { r := storeReq(2, 3, 0); r.Flags = wire.FlagIgnoreSeal; return r },
			want:  wire.StatusOK, wantLocal: 5,
		},
		{
			name: "first store is accepted and pins the sequencer",
			req:  func() *wire.Store { return storeReq(1, 3, 0) },
			want: wire.StatusOK, wantLocal: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.opts)
			if tt.setup != nil {
				tt.setup(h)
			}
			got := h.store1(tt.req())
			if got.Status != tt.want {
				t.Fatalf("status %v, want %v (%+v)", got.Status, tt.want, got)
			}
			if tt.wantLocal != 0 && got.LocalTail != tt.wantLocal {
				t.Fatalf("local tail %d, want %d", got.LocalTail, tt.wantLocal)
			}
		})
	}
}

// A refused or malformed store changes nothing on disk; a malformed one not even the
// known global tail.
func TestMalformedStoreChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 2)
	before := h.store.Stats().Writes
	bad := []*wire.Store{
		{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: 1 << 40}, FirstOffset: 3, Sequencer: seqA},
		{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: 1 << 40}, FirstOffset: 0, Sequencer: seqA, Payloads: recs(0, 1)},
		{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: 1 << 40}, FirstOffset: math.MaxUint64, Sequencer: seqA, Payloads: recs(0, 1)},
		{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: 1 << 40}, FirstOffset: 3, Payloads: recs(3, 1)},
	}
	for _, r := range bad {
		if got := h.store1(r); got.Status != wire.StatusMalformed {
			t.Fatalf("%+v: %v", r, got.Status)
		}
	}
	refused := storeReq(9, 1, 0) // out of bounds
	if got := h.store1(refused); got.Status != wire.StatusOutOfBounds {
		t.Fatal(got.Status)
	}
	if n := h.store.Stats().Writes; n != before {
		t.Fatalf("%d writes after refused stores", n-before)
	}
	if info := h.info(); info.KnownGlobalTail != 1 || info.LocalTail != 3 {
		t.Fatalf("info %+v", info)
	}
}

func TestEveryRequestRaisesTheGlobalTail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	hdr := func(g bifrost.Offset) wire.Header { return wire.Header{LogletID: testLoglet, KnownGlobalTail: g} }
	calls := []func(){
		func() { h.srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: hdr(2)}) },
		func() { h.srv.GetRecords(ctx, &wire.GetRecords{Header: hdr(3), From: 1, To: 1}) },
		func() { h.srv.GetDigest(ctx, &wire.GetDigest{Header: hdr(4), From: 1, To: 1}) },
		func() {
			h.srv.WaitForTail(ctx, &wire.WaitForTail{Header: hdr(5), Query: wire.WaitGlobalTail, Offset: 1})
		},
		func() { h.srv.Store(ctx, storeReq(1, 1, 6)) }, // refused: below the global tail
		func() { h.srv.Trim(ctx, &wire.Trim{Header: hdr(7), TrimPoint: 1}) },
		func() { h.srv.Seal(ctx, &wire.Seal{Header: hdr(8), Sequencer: seqA}) },
	}
	for i, call := range calls {
		call()
		if got := h.info().KnownGlobalTail; got != bifrost.Offset(i+2) {
			t.Fatalf("after call %d: global tail %d, want %d", i, got, i+2)
		}
	}
}

// A duplicate of a store that is accepted but not yet durable waits for it, then is Ok.
func TestDuplicateInFlightWaitsForDurability(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.info() // load before blocking the writer
	release := h.blockWriter()
	defer release()
	first := async(func() *wire.Stored { return h.store1(storeReq(1, 2, 0)) })
	waitFor(t, "the first store to be accepted", func() bool { return h.state(func(l *loglet) bool { return l.staging == 3 }) })
	dup := async(func() *wire.Stored { return h.store1(storeReq(1, 2, 0)) })
	pending(t, dup, "duplicate of an in-flight store")
	release()
	for _, ch := range []<-chan *wire.Stored{first, dup} {
		if r := recv(t, ch, "store"); r.Status != wire.StatusOK || r.LocalTail != 3 {
			t.Fatalf("%+v", r)
		}
	}
}

// While a seal is in flight a repair store is told to retry (Sealing) and a normal store
// waits and is refused once the seal is durable.
func TestStoreDuringSeal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 2)
	release := h.blockWriter()
	defer release()
	sealed := async(func() *wire.Sealed { return h.seal() })
	waitFor(t, "the seal to be enqueued", func() bool { return h.state(func(l *loglet) bool { return l.sealing }) })

	repair := storeReq(3, 1, 0)
	repair.Flags = wire.FlagIgnoreSeal
	if r := h.store1(repair); r.Status != wire.StatusSealing {
		t.Fatalf("repair during seal: %v", r.Status)
	}
	normal := async(func() *wire.Stored { return h.store1(storeReq(3, 1, 0)) })
	pending(t, normal, "store during seal")
	release()
	if r := recv(t, sealed, "seal"); r.Status != wire.StatusOK || !r.Sealed || r.LocalTail != 3 {
		t.Fatalf("seal %+v", r)
	}
	if r := recv(t, normal, "store"); r.Status != wire.StatusSealed || !r.Sealed {
		t.Fatalf("store parked behind the seal: %+v", r)
	}
	// Once sealed, repair stores are accepted again.
	if r := h.store1(repair); r.Status != wire.StatusOK || r.LocalTail != 4 {
		t.Fatalf("repair after seal: %+v", r)
	}
}

// A store's answer comes only once its records are durable.
func TestStoreAnswersAfterSync(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.info()
	release := h.blockWriter()
	defer release()
	st := async(func() *wire.Stored { return h.store1(storeReq(1, 1, 0)) })
	waitFor(t, "the store to be accepted", func() bool { return h.state(func(l *loglet) bool { return l.staging == 2 }) })
	pending(t, st, "store before its sync")
	if info := h.info(); info.LocalTail != 1 {
		t.Fatalf("local tail %d before the sync", info.LocalTail)
	}
	release()
	if r := recv(t, st, "store"); r.Status != wire.StatusOK || r.LocalTail != 2 {
		t.Fatalf("%+v", r)
	}
}

func TestStoreHonoursContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.info()
	release := h.blockWriter()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := async(func() error { _, err := h.srv.Store(ctx, storeReq(1, 1, 0)); return err })
	waitFor(t, "the store to be accepted", func() bool { return h.state(func(l *loglet) bool { return l.staging == 2 }) })
	cancel()
	if err := recv(t, errc, "store"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	release()
	// The write still completes.
	waitFor(t, "the write", func() bool { return h.info().LocalTail == 2 })
}

// A retry whose answer was lost, merged with newer records, writes only its new part, and
// the records read back are the sequencer's, each at its own offset.
func TestStoreRetryMergedPastStagingWritesTheNewPart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.mustStore(1, 4)
	if got := h.store1(storeReq(3, 4, 0)); got.Status != wire.StatusOK || got.LocalTail != 7 {
		t.Fatalf("merged retry: %+v", got)
	}
	recs := h.records(1, 6, 1<<20)
	if len(recs.Records) != 6 {
		t.Fatalf("%d records, want 6", len(recs.Records))
	}
	for i, r := range recs.Records {
		want := storeReq(i+1, 1, 0).Payloads[0]
		if r.Offset != bifrost.Offset(i+1) || string(r.Payload) != string(want) {
			t.Fatalf("record %d = offset %d %q, want %q", i, r.Offset, r.Payload, want)
		}
	}
}
