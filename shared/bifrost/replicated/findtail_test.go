package replicated

import (
	"fmt"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// State-machine tests of the find-tail decision (BIFROST.md §4 steps 2–5) and the repair
// plan: answers in, decision out.

type answer struct {
	local    bifrost.Offset
	sealed   bool
	dataLoss bool
	global   bifrost.Offset
	trim     bifrost.Offset
}

func TestTailFinderDecide(t *testing.T) {
	open := func(local bifrost.Offset) *answer { return &answer{local: local} }
	sealed := func(local bifrost.Offset) *answer { return &answer{local: local, sealed: true} }
	tests := []struct {
		name    string
		n, r    int
		global  bifrost.Offset
		answers []*answer // nil: no answer
		giveUp  bool
		want    tailDecision
	}{
		{"no f-majority yet", 3, 2, 1, []*answer{open(5), nil, nil}, false, tailDecision{act: actWait}},
		// A write quorum holding 5 does not make 5 committed: the sequencer may not have
		// heard their answers and may seal below 5.
		{"all open, write quorum above the global tail: wait for it", 3, 2, 1, []*answer{open(5), open(5), nil}, false, tailDecision{act: actWaitTail, tail: 5}},
		{"open, global already at max", 3, 2, 7, []*answer{open(7), open(3), nil}, false, tailDecision{act: actOpen, tail: 7}},
		{"open, one server ahead: wait for tails", 3, 2, 4, []*answer{open(7), open(4), nil}, false, tailDecision{act: actWaitTail, tail: 7}},
		{"open, one server ahead, sequencer dead and quiet: seal (#3385)", 3, 2, 4, []*answer{open(7), open(4), nil}, true, tailDecision{act: actSeal}},
		{"dead sequencer but answers short of a write quorum", 5, 4, 4, []*answer{open(7), open(4), nil, nil, nil}, true, tailDecision{act: actWaitTail, tail: 7}},
		{"some sealed: finish the seal", 3, 2, 1, []*answer{sealed(5), open(5), nil}, false, tailDecision{act: actSeal}},
		{"f-majority sealed at the global tail", 3, 2, 5, []*answer{sealed(5), sealed(4), nil}, false, tailDecision{act: actSealed, tail: 5}},
		{"f-majority sealed, write quorum holds max", 3, 2, 2, []*answer{sealed(6), sealed(6), nil}, false, tailDecision{act: actSealed, tail: 6}},
		{"f-majority sealed, max on one server: repair [global, max)", 3, 2, 4, []*answer{sealed(6), sealed(4), nil}, false, tailDecision{act: actRepair, from: 4, tail: 6}},
		{"f-majority sealed, lagging server excluded", 3, 2, 4, []*answer{nil, sealed(4), sealed(4)}, false, tailDecision{act: actSealed, tail: 4}},
		{"f-majority sealed below a write quorum: wait to repair", 5, 4, 2, []*answer{sealed(6), sealed(2), nil, nil, nil}, false, tailDecision{act: actWait}},
		{"sealed max below the known global tail: restart", 3, 2, 9, []*answer{sealed(6), sealed(6), nil}, false, tailDecision{act: actRestart, tail: 6}},
		{"data loss never counts for the tail", 3, 2, 1, []*answer{sealed(1), {dataLoss: true}, nil}, false, tailDecision{act: actWait}},
		{"data loss excluded from max", 3, 2, 4, []*answer{{dataLoss: true}, sealed(4), sealed(4)}, false, tailDecision{act: actSealed, tail: 4}},
		{"global tail learned from headers", 3, 2, 1, []*answer{{local: 8, sealed: true, global: 8}, sealed(3), nil}, false, tailDecision{act: actSealed, tail: 8}},
		// #2689: a trimmed loglet whose servers' tails sit at trim point + 1 while the
		// known global tail is stale must not trigger a repair.
		{"trimmed loglet needs no repair (#2689)", 3, 2, 1, []*answer{{local: 11, sealed: true, trim: 10}, {local: 11, sealed: true, trim: 10}, nil}, false, tailDecision{act: actSealed, tail: 11}},
		{"single server", 1, 1, 1, []*answer{sealed(3)}, false, tailDecision{act: actSealed, tail: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTailFinder(newQuorum(tc.n, tc.r), tc.global)
			for i, a := range tc.answers {
				if a == nil {
					continue
				}
				st := wire.StatusOK
				if a.dataLoss {
					st = wire.StatusDataLoss
				}
				tf.observe(i, wire.ResponseHeader{Status: st, LocalTail: a.local, Sealed: a.sealed, KnownGlobalTail: a.global}, a.trim)
			}
			if got := tf.decide(tc.giveUp); got != tc.want {
				t.Fatalf("decide: got %s %+v, want %s %+v", got.act, got, tc.want.act, tc.want)
			}
		})
	}
}

// observe reports progress only when something moved.
func TestTailFinderProgress(t *testing.T) {
	tf := newTailFinder(newQuorum(3, 2), 1)
	h := wire.ResponseHeader{Status: wire.StatusOK, LocalTail: 4}
	if !tf.observe(0, h, 0) {
		t.Fatal("first answer is progress")
	}
	if tf.observe(0, h, 0) {
		t.Fatal("same answer again is not progress")
	}
	h.Sealed = true
	if !tf.observe(0, h, 0) {
		t.Fatal("seal bit is progress")
	}
}

func digest(runs ...wire.DigestEntry) []wire.DigestEntry { return runs }

func exists(from, to bifrost.Offset) wire.DigestEntry {
	return wire.DigestEntry{From: from, To: to, Status: wire.DigestExists}
}

// The highest offset on a write quorum settles everything below it; the next offset to
// repair is the one after it (#2615).
func TestRepairPlanAdvanceOffByOne(t *testing.T) {
	p := newRepairPlan(newQuorum(3, 2), 4, 9)
	p.onDigest(0, digest(exists(4, 8)))
	p.onDigest(1, digest(exists(4, 6)))
	p.onDigest(2, nil)
	p.advance()
	if p.start != 7 {
		t.Fatalf("start %d, want 7 (6 is on a write quorum, 7 is not)", p.start)
	}
	if !p.ready() {
		t.Fatal("not ready: write quorum of digests and server 0 holds 7")
	}
	if got := p.lacking(1, 7, 9); len(got) != 1 || got[0] != (offsetRange{7, 9}) {
		t.Fatalf("lacking on server 1: %v", got)
	}
	if got := p.lacking(0, 7, 9); len(got) != 0 {
		t.Fatalf("lacking on server 0: %v", got)
	}
	p.stored(2, offsetRange{7, 9})
	if !p.covered(7, 9) {
		t.Fatal("not covered after the copies")
	}
	p.skipTo(9)
	if !p.done() {
		t.Fatal("not done")
	}
}

// Nothing to copy when the range is already on a write quorum.
func TestRepairPlanAlreadyReplicated(t *testing.T) {
	p := newRepairPlan(newQuorum(3, 2), 4, 6)
	p.onDigest(0, digest(exists(4, 5)))
	p.onDigest(2, digest(exists(4, 5)))
	p.advance()
	if !p.done() {
		t.Fatalf("start %d, want done", p.start)
	}
}

// Repair cannot start without a write quorum of digests, or without a holder of start.
func TestRepairPlanNotReady(t *testing.T) {
	p := newRepairPlan(newQuorum(3, 2), 4, 6)
	p.onDigest(0, digest(exists(4, 5)))
	p.advance()
	if p.ready() {
		t.Fatal("ready with one digest of r=2")
	}
	p = newRepairPlan(newQuorum(3, 2), 4, 6)
	p.onDigest(0, digest(exists(5, 5)))
	p.onDigest(1, nil)
	p.advance()
	if p.ready() {
		t.Fatal("ready although nobody holds 4")
	}
}

// The digests beyond an f-majority are waited for briefly only once every offset of the
// range has a holder among the servers heard: before, a record only an unheard server holds
// could not be read.
func TestRepairPlanHeldThroughout(t *testing.T) {
	p := newRepairPlan(newQuorum(3, 2), 4, 8)
	p.onDigest(1, digest(exists(4, 5)))
	p.onDigest(2, digest(exists(4, 6)))
	if p.heldThroughout() {
		t.Fatal("held throughout although nobody heard holds 7")
	}
	p.onDigest(0, digest(exists(4, 7)))
	if !p.heldThroughout() {
		t.Fatal("not held throughout although server 0 holds 4-7")
	}
	p = newRepairPlan(newQuorum(3, 2), 4, 8)
	p.onDigest(0, digest(wire.DigestEntry{From: 4, To: 6, Status: wire.DigestTrimmed}, exists(7, 7)))
	if !p.heldThroughout() {
		t.Fatal("a trimmed run needs no holder")
	}
}

// A trimmed run is committed and skipped (#2689).
func TestRepairPlanTrimmed(t *testing.T) {
	p := newRepairPlan(newQuorum(3, 2), 4, 8)
	p.onDigest(0, digest(wire.DigestEntry{From: 4, To: 6, Status: wire.DigestTrimmed}, exists(7, 7)))
	p.onDigest(1, nil)
	p.advance()
	if p.start != 7 || !p.ready() {
		t.Fatalf("start %d ready %v, want 7 and ready", p.start, p.ready())
	}
}

// Find-tail waiting for tails (none sealed, the known global tail below the highest local
// tail, the sequencer unreachable but not reported dead) must follow a target that moves
// while its WaitForTail polls are out: each answered poll is re-armed at the newest
// target. Polls armed only once answered and left the decision waiting forever once the
// target moved.
func TestFindTailFollowsAMovingTarget(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 90)
	seq := metadata.NodeID{Name: "w9", Generation: 1} // no such node on the network: unreachable
	seg := c.segment(90, seq)
	s1, s2, s3 := c.servers[0], c.servers[1], c.servers[2]
	// plant stores from..to on s, the last store carrying global as the known global tail.
	plant := func(s *fakeServer, from, to, global bifrost.Offset) {
		for o := from; o <= to; o++ {
			g := bifrost.Offset(1)
			if o == to {
				g = global
			}
			s.plant(t, 90, seq, g, o, fmt.Sprintf("r%d", o))
		}
	}
	plant(s1, 1, 3, 1) // local tails 4, 3, 2
	plant(s2, 1, 2, 1)
	plant(s3, 1, 1, 1)
	l := c.open(c.provider("w2", 1, func(o *Options) { o.DeadSequencerGrace = time.Hour }), seg)
	ctx := testCtx(t, 20*time.Second)
	type result struct {
		t   bifrost.TailState
		err error
	}
	done := make(chan result, 1)
	go func() {
		ts, err := l.FindTail(ctx)
		done <- result{ts, err}
	}()
	// Phases, not condition waits: each gives the find-tail time to poll what changed.
	phase := func() { time.Sleep(150 * time.Millisecond) }
	phase()
	plant(s2, 3, 4, 4) // s2's poll (aimed at 4) answers with tail 5: the target moves to 5
	phase()
	plant(s3, 2, 3, 4) // s3's poll answers too
	phase()
	// Every server reaches 6; the global tail reaches 6 only on the two servers whose
	// polls answered before: only polls re-armed at the newest target see it.
	plant(s1, 4, 5, 1)
	plant(s2, 5, 5, 6)
	plant(s3, 4, 5, 6)
	select {
	case r := <-done:
		if r.err != nil || r.t != (bifrost.TailState{Offset: 6}) {
			t.Fatalf("FindTail = %v, %v; want open(6)", r.t, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("FindTail still waiting 10 s after every server reached tail 6")
	}
}
