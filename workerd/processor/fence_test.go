package processor

import (
	"context"
	"testing"
	"time"

	"gorestate.dev/shared/rpc"
)

// When the processor stops (its partition moved off this node, the worker shuts down, Run
// failed and waits for its restart, or stopped for good) before it applied a record that
// appendApplied waits for, the call answers "outcome unknown" shortly after the leadership
// ended, instead of waiting as long as the caller does (the ingress resolves awakeables
// with the client's request context, and its HTTP client has no timeout).
func TestAppendAppliedReturnsWhenTheProcessorStops(t *testing.T) {
	meta, log := newMetaLog(t)
	fa := &frozenLog{Log: log}
	a, stop := startReplica(t, meta, fa, "a", RoleLeader)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()
	freezeAfterMarker(t, a, log, fa)
	tail := log.Tail()
	patched := make(chan error, 1)
	go func() {
		patched <- la.PatchState(context.Background(), &rpc.PatchStateRequest{Service: "O", Key: "k",
			State: []rpc.StateEntry{{Key: []byte("x"), Value: []byte("1")}}})
	}()
	eventuallyTrue(t, "the patch record in the log", func() bool { return log.Tail() > tail })
	if err := stop(); err != nil { // the partition is removed from this node (or the worker stops)
		t.Fatal(err)
	}
	fa.unfreeze()
	select {
	case err := <-patched:
		t.Logf("PatchState = %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("PatchState still waits 5s after the processor stopped: it waits for an apply that will never come, as long as its caller does")
	}
}
