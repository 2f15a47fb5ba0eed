package workerd

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
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

// review: a trim runs apart from the tick and writes to the partitionSnapshots it started
// from. When the leadership ends and starts again while it is in flight (a processor
// restarted by startProcessor's retry loop, a deposed leader leading again), the tick
// drops that partitionSnapshots, the new one reads the trim point before the orphaned trim
// lands and reports it as the restore info, and the orphaned trim's outcome is recorded
// only in the dropped one. A single node without snapshots then reports "never trimmed"
// (CanStart) for a log trimmed up to X: the controller places a new follower, which cannot
// replay from LSN 1 and has no snapshot to restore.
func TestReviewRestoreInfoCountsATrimOfAnEarlierLeadership(t *testing.T) {
	ctx := context.Background()
	logs, err := localloglet.Open(t.TempDir(), localloglet.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	meta, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {{BaseLSN: 1, Provider: bifrost.ProviderLocal}}}})
	if _, err := meta.Put(ctx, metadata.KeyLogs, chains, 0); err != nil {
		t.Fatal(err)
	}
	g := &gatedTrims{Provider: localloglet.NewProvider(logs, "n1"), entered: make(chan struct{}, 1), release: make(chan struct{})}
	b := bifrost.New(bifrost.Options{Meta: meta, Registry: bifrost.Registry{bifrost.ProviderLocal: g}})
	t.Cleanup(func() { b.Close() })
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	cfg := config.Default()
	cfg.NodeName = "n1"
	cfg.Worker.TrimDelayInterval = config.Duration(time.Minute)
	w := &Worker{cfg: cfg, meta: meta, log: hclog.NewNullLogger(), bifrost: b, db: db}
	w.snapshots = snapshotter{w: w, parts: map[uint32]*partitionSnapshots{}} // no destination
	nodes, _ := json.Marshal(metadata.Nodes{Nodes: map[string]metadata.Node{"n1": {Name: "n1", Roles: []string{config.RoleWorker}}}})
	if err := w.view.setNodes(nodes); err != nil {
		t.Fatal(err)
	}
	w.placed.Store(&metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "n1"}}})
	proc := processor.New(processor.Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: b.Log(0), WriterLog: b.WriterLog(0),
		Logs: func(uint32) (bifrost.Log, error) { return b.WriterLog(0), nil }, Invoker: nopInvoker{}, Logger: hclog.NewNullLogger(),
		Role: processor.RoleLeader, NodeName: "n1"})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(pctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w.procs = map[uint32]*running{0: {proc: proc, cancel: cancel, done: make(chan struct{})}}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the leader", func() bool { return proc.Leader() != nil })
	var last bifrost.LSN
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
