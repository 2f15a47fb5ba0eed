package workerd

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
)

// gatedTrims is a loglet provider whose trims wait until released: log servers that take
// their time (trimTimeout is 5s) to answer a trim.
type gatedTrims struct {
	bifrost.Provider
	entered chan struct{}
	release chan struct{}
}

func (g *gatedTrims) Open(ctx context.Context, seg metadata.Segment) (bifrost.Loglet, error) {
	l, err := g.Provider.Open(ctx, seg)
	if err != nil {
		return nil, err
	}
	return &gatedLoglet{Loglet: l, g: g}, nil
}

type gatedLoglet struct {
	bifrost.Loglet
	g *gatedTrims
}

func (l *gatedLoglet) Trim(ctx context.Context, upTo bifrost.Offset) error {
	select {
	case l.g.entered <- struct{}{}:
	default: // a later trim: the test waits for the first only
	}
	<-l.g.release
	return l.Loglet.Trim(ctx, upTo)
}

// A trim runs apart from the tick. When the leadership ends and starts again while it is in
// flight (a processor restarted by startProcessor's retry loop, a deposed leader leading
// again), the new leadership's restore info counts the trim's target, and its outcome is
// recorded for the new leadership. (It was recorded only for the dropped one, and a single
// node without snapshots reported "never trimmed" (CanStart) for a log trimmed up to X: the
// controller would place a new follower, which could not replay from LSN 1 and had no
// snapshot to restore.)
func TestRestoreInfoCountsATrimOfAnEarlierLeadership(t *testing.T) {
	ctx := context.Background()
	var g *gatedTrims
	w := testWorker(t, 1, bifrost.ProviderLocal, func(local *localloglet.Provider) bifrost.Registry {
		g = &gatedTrims{Provider: local, entered: make(chan struct{}, 1), release: make(chan struct{})}
		return bifrost.Registry{bifrost.ProviderLocal: g}
	})
	b := w.bifrost
	w.cfg.Worker.TrimDelayInterval = config.Duration(time.Minute) // no destination
	nodes, _ := json.Marshal(metadata.Nodes{Nodes: map[string]metadata.Node{"n1": {Name: "n1", Roles: []string{config.RoleWorker}}}})
	if err := w.view.setNodes(nodes); err != nil {
		t.Fatal(err)
	}
	w.placed.Store(&metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "n1"}}})
	proc := runLeader(t, w, 0)
	waitFor := func(what string, cond func() bool) { t.Helper(); waitUntil(t, what, cond) }
	var last bifrost.LSN
	var err error
	for range 10 {
		if last, err = b.WriterLog(0).Append(ctx, [][]byte{logrecord.FormatMarker()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := proc.WaitApplied(ctx, uint64(last)); err != nil {
		t.Fatal(err)
	}

	// The leadership's first tick reads the trim point; a durable applied LSN seen a
	// trim-delay-interval ago is trimmable.
	w.snapshots.tick(ctx)
	w.snapshots.trims.Wait()
	w.snapshots.mu.Lock()
	w.snapshots.parts[0].candidates = []trimCandidate{{lsn: last, seen: time.Now().Add(-time.Hour)}}
	w.snapshots.mu.Unlock()
	w.snapshots.tick(ctx) // starts the trim up to last
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim started")
	}

	// The leadership ends and starts again while the trim is in flight.
	proc.SetRole(processor.RoleFollower)
	waitFor("a to follow", func() bool { return proc.Leader() == nil })
	w.snapshots.tick(ctx)
	proc.SetRole(processor.RoleLeader)
	waitFor("a to lead again", func() bool { return proc.Leader() != nil })
	w.snapshots.tick(ctx)

	close(g.release) // the trim of the earlier leadership lands
	w.snapshots.trims.Wait()
	w.snapshots.tick(ctx)

	st, _, err := b.State(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ri := w.snapshots.restoreInfo(0)
	t.Logf("log trim point %d; restore info %+v", st.TrimPoint, ri)
	if st.TrimPoint == 0 {
		t.Fatal("the trim did not happen")
	}
	if ri != nil && ri.TrimPointLSN < uint64(st.TrimPoint) {
		t.Fatalf("the restore info reports trim point %d (CanStart=%v) but the log is trimmed up to %d: a new follower would be placed and could not start",
			ri.TrimPointLSN, ri.CanStart(), st.TrimPoint)
	}
}
