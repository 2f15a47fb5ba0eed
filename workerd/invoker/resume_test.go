package invoker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// parkedLeadership is a leadership whose attempts park in WaitApplied (the first thing an
// attempt does, holding its slot) until the leadership ends.
type parkedLeadership struct {
	ctx    context.Context
	parked atomic.Int32
}

func (l *parkedLeadership) NoteFailure([]byte, rpc.Failure)    {}
func (l *parkedLeadership) Partition() uint32                  { return 7 }
func (l *parkedLeadership) Context() context.Context           { return l.ctx }
func (l *parkedLeadership) Snapshot() (*store.Snapshot, error) { return nil, fmt.Errorf("unused") }
func (l *parkedLeadership) AppendAsync(*logrecord.Record, func(bifrost.LSN, error)) {
	panic("unused")
}
func (l *parkedLeadership) WaitApplied(ctx context.Context, _ bifrost.LSN) error {
	l.parked.Add(1)
	defer l.parked.Add(-1)
	<-ctx.Done()
	return ctx.Err()
}

// A new leader resuming many invocations starts them only as attempt slots free up: with a
// limit of 3, the fourth Resume waits, and no more than 3 tasks exist meanwhile.
func TestResumeWaitsForAFreeSlot(t *testing.T) {
	inv := New(Options{ConcurrencyLimit: 3, Logger: hclog.NewNullLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	l := &parkedLeadership{ctx: ctx}
	resumed := make(chan int, 10)
	go func() {
		for i := range 10 {
			inv.Resume(l, []byte(fmt.Sprintf("inv-%d", i)))
			resumed <- i
		}
		close(resumed)
	}()
	for range 3 {
		select {
		case <-resumed:
		case <-time.After(5 * time.Second):
			t.Fatal("the first three resumes did not return")
		}
	}
	select {
	case i := <-resumed:
		t.Fatalf("resume %d returned while every slot was taken", i)
	case <-time.After(200 * time.Millisecond):
	}
	inv.mu.Lock()
	tasks := len(inv.tasks)
	inv.mu.Unlock()
	if tasks != 3 || l.parked.Load() != 3 {
		t.Fatalf("%d tasks, %d attempts running; want 3 and 3", tasks, l.parked.Load())
	}
	cancel()
	for range resumed {
	}
	inv.StopPartition(7)
	if len(inv.sem) != 0 {
		t.Fatalf("%d attempt slots still taken after the leadership ended", len(inv.sem))
	}
}

// Resuming an invocation that already has a task does not start a second run and returns
// its slot.
func TestResumeOfADrivenInvocation(t *testing.T) {
	inv := New(Options{ConcurrencyLimit: 2, Logger: hclog.NewNullLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &parkedLeadership{ctx: ctx}
	inv.Invoke(l, []byte("a"))
	inv.Resume(l, []byte("a"))
	deadline := time.Now().Add(5 * time.Second)
	for l.parked.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	inv.mu.Lock()
	again := inv.tasks[taskKey(7, []byte("a"))].again
	tasks := len(inv.tasks)
	inv.mu.Unlock()
	if tasks != 1 || again || len(inv.sem) != 1 {
		t.Fatalf("tasks %d, again %v, slots taken %d; want 1, false, 1", tasks, again, len(inv.sem))
	}
	cancel()
	inv.StopPartition(7)
}
