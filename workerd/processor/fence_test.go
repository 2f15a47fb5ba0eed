package processor

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/store"

	"gorestate.dev/shared/logrecord"
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
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	self := metadata.NodeID{Name: "a", Generation: 1}
	a := New(Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: fa,
		Logs:    func(uint32) (bifrost.Log, error) { return log, nil },
		Invoker: nopInvoker{invoked: make(chan []byte, 100)}, Logger: hclog.NewNullLogger(),
		ClaimEpoch: func(ctx context.Context, atLeast uint64) (uint64, error) {
			return metadata.ClaimEpoch(ctx, meta, 0, self, atLeast)
		},
		Role: RoleLeader, NodeName: "a",
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()

	lsn, err := log.Append(context.Background(), [][]byte{logrecord.FormatMarker()})
	if err != nil {
		t.Fatal(err)
	}
	fa.freezeAbove(lsn)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := a.WaitApplied(wctx, uint64(lsn)); err != nil {
		t.Fatal(err)
	}
	tail := log.Tail()
	patched := make(chan error, 1)
	go func() {
		patched <- la.PatchState(context.Background(), &rpc.PatchStateRequest{Service: "O", Key: "k",
			State: []rpc.StateEntry{{Key: []byte("x"), Value: []byte("1")}}})
	}()
	eventuallyTrue(t, "the patch record in the log", func() bool { return log.Tail() > tail })
	stop() // the partition is removed from this node (or the worker stops)
	if err := <-done; err != nil {
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
