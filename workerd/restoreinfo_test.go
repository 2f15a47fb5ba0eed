package workerd

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/snapshot"
)

// slowUploads is an object store whose snapshot data uploads hang until released: an S3
// upload of a large store on a loaded host, or an endpoint that stopped answering.
type slowUploads struct {
	snapshot.ObjectStore
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *slowUploads) Put(ctx context.Context, key string, r io.Reader) error {
	if !strings.HasSuffix(key, ".json") {
		s.once.Do(func() { close(s.entered) })
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.ObjectStore.Put(ctx, key, r)
}

// A node leads partition 0, whose snapshot is due, and its upload is slow. Meanwhile a
// failover makes the node the leader of partition 1. The controller places partition 1's new
// follower only once the leader reports its restore info (trim point and newest snapshot),
// which the snapshotter publishes from its tick: uploads (and trims) run apart from the
// tick, so partition 1's restore info is out within a tick or two. (Ticks used to wait for
// uploads and trims, and partition 1 stayed without a follower meanwhile: "1 of 2 replicas:
// waiting for the leader (n3) to report how far the partition's log is trimmed".)
func TestRestoreInfoOfANewLeadershipIsNotHeldUpByAnotherPartitionsUpload(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowUploads{ObjectStore: dir, entered: make(chan struct{}), release: make(chan struct{})}
	defer close(slow.release)
	repo := &snapshot.Repository{Store: slow, Prefix: "p", ClusterName: config.Default().ClusterName, NodeName: "n1", NumRetained: 1}

	w := testWorker(t, 2, bifrost.ProviderLocal, nil)
	b := w.bifrost
	w.cfg.Worker.Snapshots.SnapshotInterval = 0
	w.cfg.Worker.Snapshots.SnapshotIntervalNumRecords = 1 // partition 0's snapshot is due at once
	w.snapshots.repo = repo
	w.placed.Store(&metadata.PartitionTable{NumPartitions: 2, Placement: []metadata.PartitionPlacement{{Leader: "n1"}, {Leader: "n1"}}})

	lead := func(p uint32) *processor.Processor { return runLeader(t, w, p) }
	p0 := lead(0)
	lsn, err := b.WriterLog(0).Append(ctx, [][]byte{logrecord.FormatMarker()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p0.WaitApplied(ctx, uint64(lsn)); err != nil {
		t.Fatal(err)
	}

	runDone := make(chan struct{})
	go func() { defer close(runDone); w.snapshots.run(ctx) }()
	defer func() { cancel(); <-runDone }()
	select {
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("partition 0's snapshot upload did not start")
	}

	// The failover: this node now leads partition 1 too.
	lead(1)
	led := time.Now()
	for w.snapshots.restoreInfo(1) == nil {
		if time.Since(led) > 3*time.Second {
			t.Fatalf("partition 1's restore info is still unpublished %v after it started leading: the snapshotter is held up by "+
				"partition 0's snapshot upload, and the controller places no follower for partition 1 until it is published", time.Since(led).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A leader whose log's trim point cannot be read (old segments whose log servers lost their
// records: two wiped nodes in the chaos test) and that has no snapshot yet reports no
// restore info, so its partition would get no new follower. It takes a snapshot of its own,
// which a new replica can start from, and reports that.
func TestLeaderWithoutTrimPointTakesASnapshot(t *testing.T) {
	st, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo := &snapshot.Repository{Store: st, Prefix: "p", ClusterName: config.Default().ClusterName, NodeName: "n1", NumRetained: 1}
	w, proc := leadingWorker(t, repo)
	w.snapshots.trimPointOf = func(context.Context, uint32) (bifrost.LSN, error) {
		return 0, errors.New("trim point of loglet 3: replicated: not enough log servers answered")
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for w.snapshots.restoreInfo(0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("no restore info: the leader neither learned its trim point nor took a snapshot")
		}
		w.snapshots.tick(ctx)
		w.snapshots.trims.Wait()
		w.snapshots.uploads.Wait()
		time.Sleep(retryTrimPoint / 4)
	}
	ri := w.snapshots.restoreInfo(0)
	if ri.SnapshotLSN == 0 || ri.SnapshotLSN > proc.Applied() {
		t.Fatalf("restore info %+v, want a snapshot of this leader (applied %d)", ri, proc.Applied())
	}
	if _, err := repo.Latest(ctx, 0); err != nil {
		t.Fatalf("no snapshot published: %v", err)
	}
}
