package processor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
)

// frozenLog is a log whose reads block while it is frozen: the apply loop of a leader whose
// process is stopped (SIGSTOP) or cut off from the log's readers, while its appends still
// get through once it runs again.
type frozenLog struct {
	bifrost.Log
	mu    sync.Mutex
	thaw  chan struct{} // nil: not frozen
	above bifrost.LSN   // while frozen, reads from at most this LSN still pass
}

func (f *frozenLog) freeze() { f.freezeAbove(0) }

// freezeAbove blocks the reads from beyond lsn: a reader that has not read lsn yet still
// does, and its next read blocks. (Freezing every read races with a reader between two
// reads, which then never reads what the test waits for.)
func (f *frozenLog) freezeAbove(lsn bifrost.LSN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thaw == nil {
		f.thaw = make(chan struct{})
	}
	f.above = lsn
}

func (f *frozenLog) unfreeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thaw != nil {
		close(f.thaw)
		f.thaw = nil
	}
}

func (f *frozenLog) Read(ctx context.Context, from bifrost.LSN, max int) ([]bifrost.Entry, error) {
	f.mu.Lock()
	ch := f.thaw
	if from <= f.above {
		ch = nil
	}
	f.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.Log.Read(ctx, from, max)
}

// freezeAfterMarker appends a marker to log and freezes fa, p's log, past it once p applied
// it: p then stops reading the log. It returns the marker's LSN.
func freezeAfterMarker(t *testing.T, p *Processor, log bifrost.Log, fa *frozenLog) bifrost.LSN {
	t.Helper()
	lsn, err := log.Append(context.Background(), [][]byte{logrecord.FormatMarker()})
	if err != nil {
		t.Fatal(err)
	}
	fa.freezeAbove(lsn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitApplied(ctx, uint64(lsn)); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// appendRecords appends recs to log, stamped with the current time.
func appendRecords(t *testing.T, log bifrost.Log, recs []*logrecord.Record) {
	t.Helper()
	for _, r := range recs {
		r.Time = nowMs()
		enc, err := logrecord.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := log.Append(context.Background(), [][]byte{enc}); err != nil {
			t.Fatal(err)
		}
	}
}

// patchOnADeposedLeader runs leader a and follower b, freezes a's log reads past a marker,
// moves the leadership to b, and has a, which has not seen b's announcement, send a state
// patch: its record carries the old epoch and lands after b's announcement, so every
// replica drops it. If askedToFollow, a is asked to follow (its node saw the new table)
// before it reads on. a then thaws; it returns b and PatchState's answer, once b applied
// the log.
func patchOnADeposedLeader(t *testing.T, askedToFollow bool) (*Processor, error) {
	t.Helper()
	b, perr := onADeposedLeader(t, askedToFollow, nil, func(ctx context.Context, la *Leader) error {
		return la.PatchState(ctx, &rpc.PatchStateRequest{Service: "O", Key: "k",
			State: []rpc.StateEntry{{Key: []byte("x"), Value: []byte("1")}}})
	})
	got, err := b.cfg.Store.Begin().StateEntries("O", "k")
	if err != nil {
		t.Fatal(err)
	}
	if perr == nil && len(got) == 0 {
		t.Fatal("the deposed leader acknowledged the state patch (PatchState returned nil), but its record carries the " +
			"superseded epoch and no replica applied it: an acknowledged write is lost")
	}
	return b, perr
}

// onADeposedLeader is patchOnADeposedLeader with another request (op, on a's leader), after
// setup records applied by both replicas.
func onADeposedLeader(t *testing.T, askedToFollow bool, setup []*logrecord.Record, op func(context.Context, *Leader) error) (*Processor, error) {
	t.Helper()
	meta, log := newMetaLog(t)
	fa := &frozenLog{Log: log}
	a := replica(t, meta, fa, "a", RoleLeader)
	b := replica(t, meta, log, "b", RoleFollower)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()
	appendRecords(t, log, setup)
	lsn := freezeAfterMarker(t, a, log, fa)
	// The controller moved the leadership to b, which claims a newer epoch and leads.
	b.SetRole(RoleLeader)
	eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answered := make(chan error, 1)
	go func() { answered <- op(ctx, la) }()
	// Its answer waits until it applied its record: a thaws once the record is durable.
	eventuallyTrue(t, "the request's record in the log", func() bool { return log.Tail() > lsn+2 })
	if askedToFollow {
		a.SetRole(RoleFollower)
		eventuallyTrue(t, "a to follow", func() bool { return a.Mode() == ModeFollower })
	}
	fa.unfreeze()
	perr := <-answered
	if err := b.WaitApplied(ctx, uint64(log.Tail())-1); err != nil {
		t.Fatal(err)
	}
	return b, perr
}

// The same for a restart-as-new: the deposed leader's record is dropped, so it answers
// "not the leader" rather than the id of an invocation that no replica created.
func TestDeposedLeaderDoesNotAcknowledgeAFencedRestart(t *testing.T) {
	id := newID("")
	inv := invokeRec(id, "", "", 0)
	inv.Invoke.CompletionRetentionMs, inv.Invoke.JournalRetentionMs = 60_000, 60_000
	var newInv []byte
	b, err := onADeposedLeader(t, false, append([]*logrecord.Record{inv}, outputEnd(id, `1`)...), func(ctx context.Context, la *Leader) error {
		resp, err := la.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id, Deployment: "keep"}, nil)
		if err == nil && resp.Outcome != rpc.RestartDone {
			return errors.New(string(resp.Outcome))
		}
		if err == nil {
			newInv = resp.NewInvocationID
		}
		return err
	})
	if !errors.Is(err, rpc.ErrNotLeader) {
		t.Fatalf("RestartAsNew on the deposed leader = %v (new invocation %x), want rpc.ErrNotLeader", err, newInv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := b.Leader().RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id, Deployment: "keep"}, nil)
	if err != nil || resp.Outcome != rpc.RestartDone {
		t.Fatalf("RestartAsNew on the new leader: %+v, %v", resp, err)
	}
}

// A leader that has not applied its successor's announcement yet (frozen and thawed, or
// just slower to read the log than the new leader was to claim) must not acknowledge a
// record every replica drops: it answers "not the leader" (nothing took effect, the request
// may go to the new leader). It used to answer once the record was durable, and the patch
// was lost; Signal (an awakeable resolved through the ingress) and RestartAsNew did the same.
func TestDeposedLeaderDoesNotAcknowledgeAFencedPatch(t *testing.T) {
	b, perr := patchOnADeposedLeader(t, false)
	if !errors.Is(perr, rpc.ErrNotLeader) {
		t.Fatalf("PatchState on the deposed leader = %v, want rpc.ErrNotLeader", perr)
	}
	// Sent again to the new leader, the patch takes effect.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Leader().PatchState(ctx, &rpc.PatchStateRequest{Service: "O", Key: "k",
		State: []rpc.StateEntry{{Key: []byte("x"), Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "the patch on b", func() bool {
		got, err := b.cfg.Store.Begin().StateEntries("O", "k")
		return err == nil && len(got) == 1
	})
}

// A deposed leader that is asked to follow before it applied its successor's announcement
// applies that announcement, and its own later record, as a follower, outside the leader
// loop that sets the fence (Leader.fencedAt). It still does not acknowledge the record:
// once the leadership ended unfenced, a newer epoch in the store makes the outcome unknown.
func TestDeposedLeaderAskedToFollowDoesNotAcknowledgeAFencedPatch(t *testing.T) {
	_, perr := patchOnADeposedLeader(t, true)
	if perr != nil && !errors.Is(perr, rpc.ErrNotLeader) && !errors.Is(perr, rpc.ErrOutcomeUnknown) {
		t.Fatalf("PatchState = %v", perr)
	}
}

// A leader asked to follow after its restart record is durable but before it applied it
// (no newer leader claimed meanwhile) applies the record as a follower, which answers
// nobody. The restart took effect, so the request is answered with the new invocation, not
// "outcome unknown" (a retry would restart the invocation a second time).
func TestLeaderAskedToFollowStillAnswersItsAppliedRestart(t *testing.T) {
	meta, log := newMetaLog(t)
	fa := &frozenLog{Log: log}
	a := replica(t, meta, fa, "a", RoleLeader)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()
	id := newID("")
	inv := invokeRec(id, "", "", 0)
	inv.Invoke.CompletionRetentionMs, inv.Invoke.JournalRetentionMs = 60_000, 60_000
	appendRecords(t, log, append([]*logrecord.Record{inv}, outputEnd(id, `1`)...))
	lsn := freezeAfterMarker(t, a, log, fa)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		resp *rpc.RestartAsNewResponse
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := la.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id, Deployment: "keep"}, nil)
		answered <- result{resp, err}
	}()
	eventuallyTrue(t, "the restart's record in the log", func() bool { return log.Tail() > lsn+1 })
	a.SetRole(RoleFollower)
	eventuallyTrue(t, "a to follow", func() bool { return a.Mode() == ModeFollower })
	fa.unfreeze()
	r := <-answered
	if r.err != nil || r.resp.Outcome != rpc.RestartDone || len(r.resp.NewInvocationID) == 0 {
		t.Fatalf("RestartAsNew = %+v, %v; want done with the new invocation's id", r.resp, r.err)
	}
	snap, err := a.cfg.Store.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	if st, err := snap.Status(r.resp.NewInvocationID); err != nil || st == nil {
		t.Fatalf("the new invocation %x is not in the store: %+v, %v", r.resp.NewInvocationID, st, err)
	}
}
