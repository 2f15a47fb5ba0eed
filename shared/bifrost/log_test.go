package bifrost_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// threeSegments builds log 1 with segments of 5, 3 and 4 records (LSNs 1-5, 6-8, 9-12),
// the first two sealed and extended with SealAndExtend.
func threeSegments(t *testing.T) (*cluster, *bifrost.Bifrost, bifrost.Log) {
	t.Helper()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	b := c.node(t, false)
	l := b.Log(1)
	ctx := testCtx(t)
	appendRecords(t, l, "a", 5, 1)
	if _, err := b.SealAndExtend(ctx, 1, 0, memNext); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, l, "b", 3, 6)
	if _, err := b.SealAndExtend(ctx, 1, 1, memNext); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, l, "c", 4, 9)
	return c, b, l
}

func TestLSNMappingAcrossSegments(t *testing.T) {
	t.Parallel()
	c, b, l := threeSegments(t)
	ctx := testCtx(t)

	chain := c.chain(t, 1)
	if len(chain) != 3 {
		t.Fatalf("chain %+v, want 3 segments", chain)
	}
	for i, want := range []uint64{1, 6, 9} {
		s := chain[i]
		if s.BaseLSN != want || s.Index != uint32(i) || s.LogletID != bifrost.LogletID(1, uint32(i)) {
			t.Errorf("segment %d = %+v, want base %d, index %d, loglet %d", i, s, want, i, bifrost.LogletID(1, uint32(i)))
		}
	}
	// Offsets restart in each loglet.
	for i, want := range []bifrost.TailState{{Offset: 6, Sealed: true}, {Offset: 4, Sealed: true}, {Offset: 5}} {
		if ts, err := c.loglet(chain[i]).FindTail(ctx); err != nil || ts != want {
			t.Errorf("loglet of segment %d: FindTail = %v, %v; want %v", i, ts, err, want)
		}
	}

	// A read stops at a segment's end; the next one continues in the next segment.
	for _, step := range []struct {
		from      bifrost.LSN
		wantFirst string
		wantLen   int
	}{{1, "a0", 5}, {6, "b0", 3}, {7, "b1", 2}, {9, "c0", 4}, {12, "c3", 1}} {
		ents, err := l.Read(ctx, step.from, 100)
		if err != nil || len(ents) != step.wantLen || string(ents[0].Payload) != step.wantFirst || ents[0].LSN != step.from {
			t.Fatalf("Read(%d) = %d entries (first %v), %v; want %d from %q", step.from, len(ents), ents, err, step.wantLen, step.wantFirst)
		}
	}
	want := []string{"a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "c0", "c1", "c2", "c3"}
	for i, e := range readRange(t, l, 1, 13) {
		if string(e.Payload) != want[i] {
			t.Fatalf("lsn %d = %q, want %q", e.LSN, e.Payload, want[i])
		}
	}
	if tail, err := l.FindTail(ctx); err != nil || tail != 13 {
		t.Fatalf("FindTail = %d, %v; want 13", tail, err)
	}
	if tail := l.Tail(); tail != 13 {
		t.Fatalf("Tail = %d, want 13", tail)
	}
	// Another node, knowing nothing yet, finds the same.
	other := c.node(t, false).Log(1)
	if tail, err := other.FindTail(ctx); err != nil || tail != 13 {
		t.Fatalf("FindTail on another node = %d, %v; want 13", tail, err)
	}
	if tail := other.Tail(); tail < 9 || tail > 13 {
		t.Fatalf("Tail on another node = %d, want between the tail segment's base 9 and 13", tail)
	}
	if b.Log(1) != l || b.WriterLog(1) != b.WriterLog(1) || b.WriterLog(1) == l {
		t.Fatal("Log and WriterLog must each return one shared instance per id")
	}
}

// A reader at the end of a sealed tail segment waits for the chain to be extended and
// continues in the new segment.
func TestReaderWaitsForExtension(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	b := c.node(t, false)
	l := b.Log(1)
	ctx := testCtx(t)
	appendRecords(t, l, "a", 2, 1)

	type result struct {
		ents []bifrost.Entry
		err  error
	}
	got := make(chan result, 1)
	go func() {
		ents, err := l.Read(ctx, 3, 10)
		got <- result{ents, err}
	}()
	// Someone seals the tail loglet: the reader must not fail, nor return.
	if _, err := c.loglet(memSeg(1)).Seal(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		t.Fatalf("read at a sealed, unextended tail returned %v, %v", r.ents, r.err)
	default:
	}
	// Extended by another node; the first record of the new segment wakes the reader.
	other := c.node(t, false)
	if _, err := other.SealAndExtend(ctx, 1, 0, memNext); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, other.Log(1), "b", 1, 3)
	r := <-got
	if r.err != nil || len(r.ents) != 1 || r.ents[0].LSN != 3 || string(r.ents[0].Payload) != "b0" {
		t.Fatalf("woken reader got %v, %v; want lsn 3 %q", r.ents, r.err, "b0")
	}
}

// An empty segment is replaced, not followed: its successor starts at the same base.
func TestEmptySegmentIsReplaced(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	b := c.node(t, false)
	ctx := testCtx(t)
	seg, err := b.SealAndExtend(ctx, 1, 0, memNext)
	if err != nil {
		t.Fatal(err)
	}
	chain := c.chain(t, 1)
	if len(chain) != 1 || chain[0].Index != 1 || chain[0].BaseLSN != 1 || chain[0].LogletID != bifrost.LogletID(1, 1) || seg.Index != 1 {
		t.Fatalf("chain after extending an empty segment: %+v (returned %+v)", chain, seg)
	}
	appendRecords(t, b.Log(1), "x", 2, 1)
	readRange(t, b.Log(1), 1, 3)
	if _, err := b.SealAndExtend(ctx, 1, 0, memNext); !isMismatch(err) {
		t.Fatalf("SealAndExtend of a replaced index: %v, want ErrSegmentMismatch", err)
	}
}

// A log without segments gets its first one from NoSegment.
func TestFirstSegment(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {}})
	b := c.node(t, false)
	ctx := testCtx(t)
	if tail, err := b.Log(1).FindTail(ctx); err != nil || tail != 1 {
		t.Fatalf("FindTail without segments = %d, %v; want 1", tail, err)
	}
	if _, err := b.SealAndExtend(ctx, 1, 0, memNext); !isMismatch(err) {
		t.Fatalf("SealAndExtend(0) without segments: %v, want ErrSegmentMismatch", err)
	}
	seg, err := b.SealAndExtend(ctx, 1, bifrost.NoSegment, func(sealed bifrost.LSN, prev metadata.Segment) (metadata.Segment, error) {
		if sealed != 1 || prev.Provider != "" {
			return metadata.Segment{}, fmt.Errorf("next(%d, %+v), want (1, zero)", sealed, prev)
		}
		return memNext(sealed, prev)
	})
	if err != nil || seg.Index != 0 || seg.BaseLSN != 1 || seg.LogletID != bifrost.LogletID(1, 0) {
		t.Fatalf("first segment = %+v, %v", seg, err)
	}
	appendRecords(t, b.Log(1), "x", 1, 1)
}

// Many racers extend the same segment: exactly one compare-and-set wins, every loser gets
// the winner's segment and ErrSegmentMismatch, and every node ends with the same chain.
func TestSealAndExtendRace(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	nodes := make([]*bifrost.Bifrost, 4)
	for i := range nodes {
		nodes[i] = c.node(t, false)
	}
	ctx := testCtx(t)
	appendRecords(t, nodes[0].Log(1), "a", 3, 1)

	const racers = 16
	type result struct {
		seg metadata.Segment
		err error
	}
	results := make(chan result, racers)
	start := make(chan struct{})
	for i := range racers {
		go func() {
			<-start
			seg, err := nodes[i%len(nodes)].SealAndExtend(ctx, 1, 0, func(sealed bifrost.LSN, _ metadata.Segment) (metadata.Segment, error) {
				// Each racer proposes a distinguishable successor.
				return metadata.Segment{Provider: "memory", Node: fmt.Sprint("racer-", i)}, nil
			})
			results <- result{seg, err}
		}()
	}
	close(start)
	var winners []metadata.Segment
	var losers []metadata.Segment
	for range racers {
		r := <-results
		switch {
		case r.err == nil:
			winners = append(winners, r.seg)
		case isMismatch(r.err):
			losers = append(losers, r.seg)
		default:
			t.Fatalf("racer: %v", r.err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d winners: %+v", len(winners), winners)
	}
	w := winners[0]
	if w.BaseLSN != 4 || w.Index != 1 || w.LogletID != bifrost.LogletID(1, 1) {
		t.Fatalf("winner %+v, want base 4, index 1", w)
	}
	for _, s := range losers {
		if s.Node != w.Node || s.Index != 1 {
			t.Fatalf("loser adopted %+v, winner is %+v", s, w)
		}
	}
	chain := c.chain(t, 1)
	if len(chain) != 2 || chain[1].Node != w.Node {
		t.Fatalf("stored chain %+v, winner %+v", chain, w)
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprint("node ", i, " to see the new chain"), func() bool {
			got, err := n.Chain(ctx, 1)
			return err == nil && len(got) == 2 && got[1].Node == w.Node
		})
	}
	appendRecords(t, nodes[3].Log(1), "b", 1, 4)
}

func TestTrimAcrossSegments(t *testing.T) {
	t.Parallel()
	c, _, l := threeSegments(t)
	ctx := testCtx(t)
	chain := c.chain(t, 1)
	if err := l.TrimPrefix(ctx, 7); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bifrost.Offset{5, 2, 0} {
		if tp, err := c.loglet(chain[i]).TrimPoint(ctx); err != nil || tp != want {
			t.Errorf("segment %d trim point %d, %v; want %d", i, tp, err, want)
		}
	}
	expectGap := func(from, trim bifrost.LSN) {
		t.Helper()
		_, err := l.Read(ctx, from, 10)
		var gap *bifrost.TrimGapError
		if !errors.As(err, &gap) || !errors.Is(err, bifrost.ErrTrimmed) || gap.TrimPoint != trim || gap.LogID != 1 {
			t.Fatalf("Read(%d) = %v, want a trim gap up to %d", from, err, trim)
		}
	}
	// Each segment reports its own trim point: a reader that skips to it reaches the next.
	expectGap(1, 5)
	expectGap(5, 5)
	expectGap(6, 7)
	expectGap(7, 7)
	if ents := readRange(t, l, 8, 13); string(ents[0].Payload) != "b2" {
		t.Fatalf("lsn 8 = %q after trim", ents[0].Payload)
	}
	// Again (already done for sealed segments), and beyond the tail: clipped to it.
	if err := l.TrimPrefix(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if tp, err := c.loglet(chain[2]).TrimPoint(ctx); err != nil || tp != 4 {
		t.Fatalf("tail segment trim point %d, %v; want 4 (its last record)", tp, err)
	}
	expectGap(12, 12)
	appendRecords(t, l, "d", 1, 13)
}

// Segments that a trim covers wholly are dropped from the chain (the tail stays): a leader
// on another node, without this one's cache of finished trims, then trims and asks only
// what is left, and chains do not grow with every reconfiguration. The log's trim point is
// still known (State), and a read below the chain's first segment is a trim gap.
func TestTrimDropsWhollyTrimmedSegmentsFromTheChain(t *testing.T) {
	t.Parallel()
	c, b, l := threeSegments(t) // segments at LSN 1-5, 6-8, 9-12
	ctx := testCtx(t)
	if err := l.TrimPrefix(ctx, 7); err != nil {
		t.Fatal(err)
	}
	chain := c.chain(t, 1)
	if len(chain) != 2 || chain[0].BaseLSN != 6 {
		t.Fatalf("chain after a trim to 7: %+v, want the segments from LSN 6 on", chain)
	}
	if st, _, err := b.State(ctx, 1); err != nil || st.TrimPoint != 7 {
		t.Fatalf("state after a trim to 7: %+v, %v", st, err)
	}
	other := c.node(t, false)
	if err := other.Log(1).TrimPrefix(ctx, 8); err != nil {
		t.Fatal(err)
	}
	chain = c.chain(t, 1)
	if len(chain) != 1 || chain[0].BaseLSN != 9 {
		t.Fatalf("chain after a trim to 8 on another node: %+v, want the tail segment alone", chain)
	}
	for _, n := range []*bifrost.Bifrost{b, other} {
		waitFor(t, "the node to see the pruned chain", func() bool {
			got, err := n.Chain(ctx, 1)
			return err == nil && len(got) == 1
		})
		if st, _, err := n.State(ctx, 1); err != nil || st.TrimPoint != 8 {
			t.Fatalf("state after a trim to 8: %+v, %v", st, err)
		}
		_, err := n.Log(1).Read(ctx, 3, 10)
		var gap *bifrost.TrimGapError
		if !errors.As(err, &gap) || gap.TrimPoint != 8 {
			t.Fatalf("read of a dropped segment = %v, want a trim gap up to 8", err)
		}
	}
	if ents := readRange(t, l, 9, 13); string(ents[0].Payload) != "c0" {
		t.Fatalf("lsn 9 = %q", ents[0].Payload)
	}
	// The tail segment stays, however far the trim goes.
	if err := l.TrimPrefix(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if chain = c.chain(t, 1); len(chain) != 1 {
		t.Fatalf("chain after a trim past the tail: %+v", chain)
	}
	appendRecords(t, l, "d", 1, 13)
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {{BaseLSN: 1, Provider: "nonesuch", LogletID: 9}}})
	b := c.node(t, false)
	ctx := testCtx(t)
	if _, err := b.Log(1).Read(ctx, 1, 0); err == nil {
		t.Fatal("Read with max 0 succeeded")
	}
	if _, err := b.Log(1).Read(ctx, 1, 1); err == nil {
		t.Fatal("Read of a segment with an unknown provider succeeded")
	}
	b.Close()
	if _, err := b.Log(2).Read(context.Background(), 1, 1); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("Read of a log without chain after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Log(2).Append(context.Background(), [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
}

// Chains provisioned before LogletID(log, index) named loglets by log id alone: log 0's
// new segments must not take the loglet ids of logs 1 and 2 (one local store holds all).
func TestLegacyLogletIDsAreNotReused(t *testing.T) {
	t.Parallel()
	legacy := func(id uint64) []metadata.Segment {
		return []metadata.Segment{{BaseLSN: 1, Provider: "memory", LogletID: id}}
	}
	c := newCluster(t, map[uint32][]metadata.Segment{0: legacy(0), 1: legacy(1), 2: legacy(2)})
	b := c.node(t, false)
	appendRecords(t, b.Log(0), "a", 2, 1)
	appendRecords(t, b.Log(1), "b", 1, 1)
	seg, err := b.SealAndExtend(testCtx(t), 0, 0, memNext)
	if err != nil {
		t.Fatal(err)
	}
	if seg.Index != 3 || seg.LogletID != 3 || seg.BaseLSN != 3 {
		t.Fatalf("successor %+v, want index 3 (loglet ids 1 and 2 are taken), base 3", seg)
	}
	appendRecords(t, b.Log(0), "c", 1, 3)
	if ents := readRange(t, b.Log(1), 1, 2); string(ents[0].Payload) != "b0" {
		t.Fatalf("log 1 = %q", ents[0].Payload)
	}
}

func TestState(t *testing.T) {
	t.Parallel()
	c, b, l := threeSegments(t)
	ctx := testCtx(t)
	if _, ok, err := b.State(ctx, 9); ok || err != nil {
		t.Fatalf("State of a log without segments: %v, %v", ok, err)
	}
	st, ok, err := b.State(ctx, 1)
	if err != nil || !ok || st.Tail != 13 || st.Sealed || st.TrimPoint != 0 || st.Segment.Index != 2 {
		t.Fatalf("State = %+v, %v, %v", st, ok, err)
	}
	if err := l.TrimPrefix(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := c.loglet(st.Segment).Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _, err = b.State(ctx, 1); err != nil || st.Tail != 13 || !st.Sealed || st.TrimPoint != 7 {
		t.Fatalf("State after trim and seal = %+v, %v", st, err)
	}
}

// deafStore never reports a newer version: a node on it keeps its first view of the chain
// unless it reads the store itself.
type deafStore struct{ metadata.Store }

func (deafStore) WaitNewer(ctx context.Context, _ string, _ uint64) (metadata.Versioned, error) {
	<-ctx.Done()
	return metadata.Versioned{}, ctx.Err()
}

// SealAndExtend checks a stale cache against the store before refusing.
func TestSealAndExtendWithStaleCache(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[uint32][]metadata.Segment{1: {memSeg(1)}})
	ctx := testCtx(t)
	stale := bifrost.New(bifrost.Options{Meta: deafStore{c.meta}, Registry: c.registry})
	t.Cleanup(func() { stale.Close() })
	if chain, err := stale.Chain(ctx, 1); err != nil || len(chain) != 1 {
		t.Fatalf("Chain = %+v, %v", chain, err)
	}
	appendRecords(t, c.node(t, false).Log(1), "a", 2, 1)
	if _, err := c.node(t, false).SealAndExtend(ctx, 1, 0, memNext); err != nil {
		t.Fatal(err)
	}
	seg, err := stale.SealAndExtend(ctx, 1, 1, memNext)
	if err != nil || seg.Index != 2 || seg.BaseLSN != 3 {
		t.Fatalf("SealAndExtend(1) on a stale node = %+v, %v; want segment 2 at 3", seg, err)
	}
}
