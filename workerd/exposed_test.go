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
	"gorestate.dev/workerd/snapshot"
)

func TestUnderReplicatedEnd(t *testing.T) {
	t.Parallel()
	repl := func(index uint32, base uint64, nodeset ...string) metadata.Segment {
		return metadata.Segment{Index: index, BaseLSN: base, Provider: bifrost.ProviderReplicated,
			Replicated: &metadata.ReplicatedParams{Replication: 2, Nodeset: nodeset}}
	}
	local := metadata.Segment{Index: 0, BaseLSN: 1, Provider: bifrost.ProviderLocal, Node: "n1"}
	n2Lost := func(upTo uint32) map[string]metadata.Node {
		return map[string]metadata.Node{"n2": {Name: "n2", LostSegments: map[uint32]uint32{7: upTo}}}
	}
	for _, tc := range []struct {
		name  string
		chain []metadata.Segment
		lost  map[string]metadata.Node
		want  bifrost.LSN
	}{
		{"no lost servers", []metadata.Segment{repl(0, 1, "n1", "n2", "n3"), repl(1, 11, "n1", "n2", "n3")}, nil, 0},
		{"a sealed segment lost on n2", []metadata.Segment{repl(0, 1, "n1", "n2", "n3"), repl(1, 11, "n1", "n3", "n4")}, n2Lost(0), 10},
		{"the last of two lost sealed segments", []metadata.Segment{repl(0, 1, "n1", "n2", "n3"), repl(1, 11, "n1", "n2", "n3"),
			repl(2, 30, "n1", "n3", "n4")}, n2Lost(1), 29},
		{"n2 kept segment 1 (it came after the loss)", []metadata.Segment{repl(0, 1, "n1", "n2", "n3"), repl(1, 11, "n1", "n2", "n3"),
			repl(2, 30, "n1", "n3", "n4")}, n2Lost(0), 10},
		{"the lost segment is not in n2's nodeset", []metadata.Segment{repl(0, 1, "n1", "n3", "n4"), repl(1, 11, "n1", "n2", "n3")}, n2Lost(1), 0},
		{"an empty sealed segment", []metadata.Segment{repl(0, 1, "n1", "n2", "n3"), repl(1, 1, "n1", "n3", "n4")}, n2Lost(0), 0},
		{"the open tail (its writer replaces it)", []metadata.Segment{local, repl(1, 5, "n1", "n2", "n3")}, n2Lost(1), 0},
		{"another log's loss", []metadata.Segment{repl(0, 1, "n1", "n2", "n3"), repl(1, 11, "n1", "n3", "n4")},
			map[string]metadata.Node{"n2": {Name: "n2", LostSegments: map[uint32]uint32{8: 5}}}, 0},
	} {
		if got := underReplicatedEnd(7, tc.chain, tc.lost); got != tc.want {
			t.Errorf("%s: underReplicatedEnd = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// replicatedOnLocal serves segments of provider replicated from the node's local loglets,
// so that a test can give a chain sealed replicated segments without log servers.
type replicatedOnLocal struct{ local *localloglet.Provider }

func (r replicatedOnLocal) Kind() string { return bifrost.ProviderReplicated }

func (r replicatedOnLocal) Open(ctx context.Context, seg metadata.Segment) (bifrost.Loglet, error) {
	seg.Provider, seg.Replicated, seg.Node = bifrost.ProviderLocal, nil, ""
	return r.local.Open(ctx, seg)
}

// exposedLeader is a worker of n1 leading partition 0, whose log is a sealed replicated
// segment (LSNs 1-10, nodeset n1, n2, n3) followed by an open local one, with a snapshot
// destination, snapshots only on demand and a trim delay of an hour. n2 lost its records
// of segment 0 if lost.
func exposedLeader(t *testing.T, lost bool) (*Worker, *processor.Processor) {
	t.Helper()
	ctx := context.Background()
	var local *localloglet.Provider
	w := testWorker(t, 1, bifrost.ProviderLocal, func(l *localloglet.Provider) bifrost.Registry {
		local = l
		return bifrost.Registry{bifrost.ProviderLocal: l, bifrost.ProviderReplicated: replicatedOnLocal{l}}
	})
	sealed := metadata.Segment{Index: 0, BaseLSN: 1, Provider: bifrost.ProviderReplicated, LogletID: bifrost.LogletID(0, 0),
		Replicated: &metadata.ReplicatedParams{Replication: 2, Nodeset: []string{"n1", "n2", "n3"}, Sequencer: metadata.NodeID{Name: "n1", Generation: 1}}}
	l, err := replicatedOnLocal{local}.Open(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := l.Append(ctx, [][]byte{logrecord.FormatMarker()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	chain := []metadata.Segment{sealed, {Index: 1, BaseLSN: 11, Provider: bifrost.ProviderLocal, LogletID: bifrost.LogletID(0, 1), Node: "n1"}}
	b, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: chain}})
	if _, err := w.meta.Put(ctx, metadata.KeyLogs, b, 1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the two-segment chain", func() bool { return len(w.bifrost.CachedChain(0)) == 2 })

	nodes := metadata.Nodes{Nodes: map[string]metadata.Node{
		"n1": {Name: "n1", Roles: []string{config.RoleWorker, config.RoleLogServer}},
		"n2": {Name: "n2", Roles: []string{config.RoleWorker, config.RoleLogServer}},
		"n3": {Name: "n3", Roles: []string{config.RoleLogServer}},
	}}
	if lost {
		n2 := nodes.Nodes["n2"]
		n2.LostSegments = map[uint32]uint32{0: 0}
		nodes.Nodes["n2"] = n2
	}
	nb, _ := json.Marshal(nodes)
	if err := w.view.setNodes(nb); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.snapshots.repo = &snapshot.Repository{Store: st, Prefix: "p", ClusterName: w.cfg.ClusterName, NodeName: "n1", NumRetained: 1}
	w.cfg.Worker.TrimDelayInterval = config.Duration(time.Hour)
	w.cfg.Worker.Snapshots.SnapshotInterval = 0
	w.cfg.Worker.Snapshots.SnapshotIntervalNumRecords = 0
	w.placed.Store(&metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "n1", Followers: []string{"n2"}}}})

	proc := runLeader(t, w, 0)
	if err := proc.WaitApplied(ctx, 10); err != nil {
		t.Fatal(err)
	}
	return w, proc
}

// ticks runs the snapshotter's tick n times, each after the uploads and trims the one
// before started.
func ticks(w *Worker, n int) {
	for range n {
		w.snapshots.tick(context.Background())
		w.snapshots.uploads.Wait()
		w.snapshots.trims.Wait()
	}
}

// A log server lost its disk, and with it its records of a sealed segment: those records
// have a copy fewer than the log's replication, and nothing copies sealed segments again.
// The leader snapshots the partition at once (snapshots are otherwise only on demand here)
// and trims the log past the segment without waiting the trim delay (an hour), so the
// segment leaves the chain. (Before, the records kept one copy until the next snapshot
// and the trim delay after it: with the default settings, until an operator ran
// `snapshots create`.)
func TestLeaderSnapshotsAndTrimsSegmentsALogServerLost(t *testing.T) {
	ctx := context.Background()
	w, proc := exposedLeader(t, true)
	ticks(w, 4)
	st, _, err := w.bifrost.State(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := w.snapshots.repo.Latest(ctx, 0)
	if err != nil {
		t.Fatalf("no snapshot was taken: %v", err)
	}
	chain := w.bifrost.CachedChain(0)
	t.Logf("applied %d; snapshot at %d; trim point %d; chain of %d segment(s)", proc.Applied(), latest.MinAppliedLSN, st.TrimPoint, len(chain))
	if latest.MinAppliedLSN < 10 {
		t.Fatalf("the snapshot covers LSN %d, not the lost segment's records (up to 10)", latest.MinAppliedLSN)
	}
	if st.TrimPoint < 10 {
		t.Fatalf("the log is trimmed up to %d: the records of the lost segment (up to 10) still have one copy fewer", st.TrimPoint)
	}
	if st.TrimPoint > 10 {
		t.Fatalf("the log is trimmed up to %d, past the lost segment (up to 10), without the trim delay", st.TrimPoint)
	}
	if len(chain) != 1 || chain[0].Index != 1 {
		t.Fatalf("chain %+v: the trimmed segment is still in it", chain)
	}
	if ri := w.snapshots.restoreInfo(0); ri == nil || ri.TrimPointLSN != 10 {
		t.Fatalf("restore info %+v, want trim point 10", ri)
	}
}

// The same log with no server that lost anything: no snapshot is due and nothing is trimmed
// (the trim delay is an hour, and snapshots are only on demand).
func TestLeaderLeavesAFullyReplicatedLogAlone(t *testing.T) {
	ctx := context.Background()
	w, _ := exposedLeader(t, false)
	ticks(w, 4)
	if l, err := w.snapshots.repo.Latest(ctx, 0); err == nil {
		t.Fatalf("a snapshot was taken (%+v) though none was due", l)
	}
	st, _, err := w.bifrost.State(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.TrimPoint != 0 {
		t.Fatalf("the log was trimmed up to %d", st.TrimPoint)
	}
}
