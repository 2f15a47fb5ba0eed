package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/snapshot"
	"gorestate.dev/workerd/store"
)

// leadingWorker is a one-node worker leading partition 0 on a local log, with the snapshot
// repository repo (nil: none): what snapshotter.tick needs, without Start.
func leadingWorker(t *testing.T, repo *snapshot.Repository) (*Worker, *processor.Processor) {
	t.Helper()
	w := testWorker(t, 1, bifrost.ProviderLocal, nil)
	b := w.bifrost
	w.cfg.Worker.TrimDelayInterval = 0
	w.cfg.Worker.Snapshots.SnapshotInterval = config.Duration(time.Hour)
	w.cfg.Worker.Snapshots.SnapshotIntervalNumRecords = 0
	w.snapshots.repo = repo
	w.placed.Store(&metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "n1"}}})

	proc := runLeader(t, w, 0)
	// A few records for the leader to apply.
	for range 10 {
		if _, err := b.WriterLog(0).Append(context.Background(), [][]byte{logrecord.FormatMarker()}); err != nil {
			t.Fatal(err)
		}
	}
	tail, _ := b.WriterLog(0).FindTail(context.Background())
	if err := proc.WaitApplied(context.Background(), uint64(tail)-1); err != nil {
		t.Fatal(err)
	}
	return w, proc
}

// The destination holds a latest.json whose LSN is far beyond anything this partition's log
// ever held: written by another cluster with the same (default) name on the same
// destination and prefix, from before fingerprints existed (a cluster rebuilt on a kept
// bucket). An active leader has applied every LSN that any snapshot of its log covers, so
// a latest above its applied LSN is not of this log, and the leader does not trim by it:
// that would drop records no snapshot holds.
func TestTrimNeverFollowsASnapshotBeyondTheLeadersAppliedLSN(t *testing.T) {
	ctx := context.Background()
	st, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo := &snapshot.Repository{Store: st, Prefix: "p", ClusterName: config.Default().ClusterName, NodeName: "n1", NumRetained: 1}

	// The other cluster's snapshot of its partition 0, at LSN 1000.
	odb, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer odb.Close()
	txn := odb.Partition(0).Begin()
	txn.SetApplied(1000)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	other := *repo
	other.NodeName = "someone-else"
	if _, err := other.Create(ctx, odb.Partition(0), 0, 0, snapshot.KeyRange{}); err != nil {
		t.Fatal(err)
	}

	w, proc := leadingWorker(t, repo)
	applied := proc.Applied()
	for range 2 {
		w.snapshots.tick(ctx)
		w.snapshots.trims.Wait()
	}
	ls, _, err := w.bifrost.State(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ri := w.snapshots.restoreInfo(0)
	t.Logf("leader applied %d; log trim point %d; restore info %+v", applied, ls.TrimPoint, ri)
	if ls.TrimPoint > 0 {
		t.Fatalf("the log was trimmed up to %d (the leader applied %d) on a latest.json at LSN 1000 that no leader of this log wrote; "+
			"no snapshot of this log covers the trimmed records", ls.TrimPoint, applied)
	}
}

// The worker's snapshot repository checks snapshots against the fingerprint of the cluster
// configuration, and refuses to go on before it has read it.
func TestWorkerRepositoryUsesTheClusterFingerprint(t *testing.T) {
	cfg := config.Default()
	cfg.NodeName = "n1"
	cfg.Worker.Snapshots.Destination = "file://" + t.TempDir()
	w := New(cfg, nil, hclog.NewNullLogger())
	repo := w.snapshots.repo
	if repo == nil || repo.ClusterFingerprint == nil {
		t.Fatalf("repository %+v without a fingerprint source", repo)
	}
	if _, err := repo.ClusterFingerprint(); !errors.Is(err, errConfigUnknown) {
		t.Fatalf("fingerprint before the configuration was read: %v", err)
	}
	b, _ := json.Marshal(metadata.ClusterConfig{NumPartitions: 1, Fingerprint: "abc"})
	if err := w.view.setConfig(b); err != nil {
		t.Fatal(err)
	}
	if fp, err := repo.ClusterFingerprint(); err != nil || fp != "abc" {
		t.Fatalf("fingerprint = %q, %v; want abc", fp, err)
	}
}

// A restore asked before the worker has read the cluster configuration (a processor starts
// right after Start) waits for it, instead of failing on the unknown fingerprint (the new
// replica would then replay its whole log).
func TestRestoreWaitsForTheClusterConfiguration(t *testing.T) {
	w := testWorker(t, 1, bifrost.ProviderLocal, nil)
	st, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.snapshots.repo = &snapshot.Repository{Store: st, ClusterName: w.cfg.ClusterName, NodeName: "n1", NumRetained: 1,
		ClusterFingerprint: w.view.fingerprint}
	restored := make(chan error, 1)
	go func() {
		_, err := w.restoreHook(0)(context.Background(), 0)
		restored <- err
	}()
	select {
	case err := <-restored:
		t.Fatalf("restore answered before the configuration was read: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	b, _ := json.Marshal(metadata.ClusterConfig{NumPartitions: 1, Fingerprint: "abc"})
	if err := w.view.setConfig(b); err != nil {
		t.Fatal(err)
	}
	if err := <-restored; !errors.Is(err, processor.ErrNoSnapshot) {
		t.Fatalf("restore = %v, want no snapshot (there is none yet)", err)
	}
}
