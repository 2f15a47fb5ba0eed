package processor

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
)

// review: the fence (Leader.fencedAt) is set only by act's onApplied. A deposed leader that
// is asked to follow (its node's reconcile saw the new table) before it applied its
// successor's announcement applies that announcement, and its own later record, as a
// follower: nothing fences the old leadership, and appendApplied acknowledges a record that
// every replica dropped.
func TestReviewDeposedLeaderAskedToFollowDoesNotAcknowledgeAFencedPatch(t *testing.T) {
	meta, log := newMetaLog(t)
	fa := &frozenLog{Log: log}
	a := replica(t, meta, fa, "a", RoleLeader)
	b := replica(t, meta, log, "b", RoleFollower)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()

	fa.freeze()
	lsn, err := log.Append(context.Background(), [][]byte{logrecord.FormatMarker()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitApplied(context.Background(), uint64(lsn)); err != nil {
		t.Fatal(err)
	}
	b.SetRole(RoleLeader)
	eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	patched := make(chan error, 1)
	go func() {
		patched <- la.PatchState(ctx, &rpc.PatchStateRequest{Service: "O", Key: "k",
			State: []rpc.StateEntry{{Key: []byte("x"), Value: []byte("1")}}})
	}()
	eventuallyTrue(t, "the patch record in the log", func() bool { return log.Tail() > lsn+2 })
	// The new table reaches a before its log reads do: it is asked to follow.
	a.SetRole(RoleFollower)
	eventuallyTrue(t, "a to follow", func() bool { return a.Mode() == ModeFollower })
	fa.unfreeze()
	perr := <-patched

	tail := uint64(log.Tail()) - 1
	if err := b.WaitApplied(ctx, tail); err != nil {
		t.Fatal(err)
	}
	got, err := b.cfg.Store.Begin().StateEntries("O", "k")
	if err != nil {
		t.Fatal(err)
	}
	if perr == nil && len(got) == 0 {
		t.Fatal("PatchState returned nil but no replica applied the patch (its record carries the superseded epoch): an acknowledged write is lost")
	}
	if perr != nil && !errors.Is(perr, rpc.ErrNotLeader) && !errors.Is(perr, rpc.ErrOutcomeUnknown) {
		t.Fatalf("PatchState = %v", perr)
	}
}
