package processor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/rpc"
)

// gatedLog holds back reads while closed, so a test can end a leadership between the
// append of a record and its apply.
type gatedLog struct {
	bifrost.Log
	mu   sync.Mutex
	open chan struct{}
}

func (g *gatedLog) close() { g.mu.Lock(); g.open = make(chan struct{}); g.mu.Unlock() }
func (g *gatedLog) reopen() {
	g.mu.Lock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
	g.mu.Unlock()
}

func (g *gatedLog) Read(ctx context.Context, from bifrost.LSN, max int) ([]bifrost.Entry, error) {
	entries, err := g.Log.Read(ctx, from, max)
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return entries, err
}

// rpc.ErrNotLeader tells the admin (metadatad/admin onLeader) that nothing was appended, so
// it sends the request again to the next leader. A Manage whose record is already in the
// log when the leadership ends must not answer it: the record is applied by the next
// leader, and a retry would then find the invocation killed (the admin answered 409
// "already completed" to a kill that took effect, 404 to a purge that did). It answers
// rpc.ErrOutcomeUnknown instead.
func TestManageDoesNotAnswerNotLeaderAfterItsAppend(t *testing.T) {
	meta, log := newMetaLog(t)
	gated := &gatedLog{Log: log}
	a := replica(t, meta, gated, "a", RoleLeader)
	b := replica(t, meta, log, "b", RoleFollower)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()
	x := newID("")
	send(t, la, x) // running (the invoker never finishes it)

	gated.close()
	before := log.Tail()
	got := make(chan error, 1)
	go func() {
		_, err := la.Manage(context.Background(), &rpc.ManageRequest{InvocationID: x, Op: rpc.OpKill})
		got <- err
	}()
	eventuallyTrue(t, "the kill to be appended", func() bool { return log.Tail() > before })
	a.SetRole(RoleFollower) // e.g. the controller moves the partition
	var manageErr error
	select {
	case manageErr = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("Manage still waiting")
	}
	gated.reopen()

	b.SetRole(RoleLeader)
	eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })
	if !errors.Is(manageErr, rpc.ErrOutcomeUnknown) {
		t.Fatalf("Manage answered %v after its record was appended, want rpc.ErrOutcomeUnknown (rpc.ErrNotLeader makes the admin send it again)", manageErr)
	}
	// The next leader applied the kill once: a second kill finds it completed or gone.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	outcome, err := b.Leader().Manage(ctx, &rpc.ManageRequest{InvocationID: x, Op: rpc.OpKill})
	if err != nil {
		t.Fatal(err)
	}
	if outcome != rpc.ManageNotFound && outcome != rpc.ManageCompleted {
		t.Fatalf("the logged kill was not applied by the next leader: a second kill answers %q", outcome)
	}
}
