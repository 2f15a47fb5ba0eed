package processor

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/store"
)

// exportOf exports a processor's store once it has applied at least lsn.
func exportOf(t *testing.T, p *Processor, db *store.DB, lsn uint64) (uint64, []byte) {
	t.Helper()
	eventuallyTrue(t, "the leader to apply the sends", func() bool { return p.Applied() >= lsn })
	e, err := db.Partition(0).OpenExport()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release()
	var buf bytes.Buffer
	if _, err := e.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return e.Applied, buf.Bytes()
}

// A new leader that restored a snapshot and then finds the log trimmed past it while taking
// the leadership (the old leader published a newer snapshot and trimmed meanwhile) restores
// the newer snapshot and leads, instead of retrying the read of trimmed records forever.
func TestLeaderFindingATrimGapRestoresANewerSnapshot(t *testing.T) {
	meta, log := newMetaLog(t)
	adb, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	a, stopA := startProcessor(t, log, adb, nopInvoker{invoked: make(chan []byte, 100)})
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	send(t, a.Leader(), newID(""))
	older, olderData := exportOf(t, a, adb, 2)
	for range 4 {
		send(t, a.Leader(), newID(""))
	}
	newer, newerData := exportOf(t, a, adb, older+4)
	stopA()
	if err := log.TrimPrefix(context.Background(), bifrost.LSN(newer)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var asked []uint64
	bdb, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	self := metadata.NodeID{Name: "b", Generation: 1}
	b := New(Config{Partition: 0, NumPartitions: 1, Store: bdb.Partition(0), Log: log,
		Logs:    func(uint32) (bifrost.Log, error) { return log, nil },
		Invoker: nopInvoker{invoked: make(chan []byte, 100)}, Logger: hclog.NewNullLogger(), Role: RoleLeader, NodeName: "b",
		ClaimEpoch: func(ctx context.Context, atLeast uint64) (uint64, error) {
			return metadata.ClaimEpoch(ctx, meta, 0, self, atLeast)
		},
		// The first restore finds the snapshot that was newest when it looked; the log has
		// been trimmed past it since.
		Restore: func(ctx context.Context, minLSN uint64) (uint64, error) {
			mu.Lock()
			asked = append(asked, minLSN)
			first := len(asked) == 1
			mu.Unlock()
			data := newerData
			if first {
				data = olderData
			}
			return bdb.Partition(0).Import(bytes.NewReader(data))
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("b: %v", err)
		}
	}()
	eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[1] != newer {
		t.Fatalf("restores asked for %v, want [0 %d] (the trim point)", asked, newer)
	}
	if b.Applied() <= newer {
		t.Fatalf("b applied %d, want past the restored snapshot at %d", b.Applied(), newer)
	}
}

// A new replica whose snapshot cannot be restored (every retained one damaged, the store
// unreachable) starts from the log when the log was never trimmed: the same state, only
// slower. When the log is trimmed, it cannot, and says so.
func TestBootstrapWithoutARestorableSnapshotReplaysAnUntrimmedLog(t *testing.T) {
	meta, log := newMetaLog(t)
	adb, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	a, stopA := startProcessor(t, log, adb, nopInvoker{invoked: make(chan []byte, 100)})
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	sent := newID("")
	send(t, a.Leader(), sent)
	applied := a.Applied()
	stopA()

	damaged := errors.New("snapshot 0/lsn_5: data file does not match its metadata")
	replica := func(t *testing.T) *Processor {
		db, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		self := metadata.NodeID{Name: "b", Generation: 1}
		return New(Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: log,
			Logs:    func(uint32) (bifrost.Log, error) { return log, nil },
			Invoker: nopInvoker{invoked: make(chan []byte, 100)}, Logger: hclog.NewNullLogger(), Role: RoleLeader, NodeName: "b",
			ClaimEpoch: func(ctx context.Context, atLeast uint64) (uint64, error) {
				return metadata.ClaimEpoch(ctx, meta, 0, self, atLeast)
			},
			Restore: func(context.Context, uint64) (uint64, error) { return 0, damaged },
		})
	}

	b := replica(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	eventuallyTrue(t, "b to replay the log and lead", func() bool { return b.Leader() != nil && b.Applied() > applied })
	if st, err := b.cfg.Store.Begin().Status(sent); err != nil || st == nil {
		t.Fatalf("the invocation sent before: %v %v, want it replayed from the log", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := log.TrimPrefix(context.Background(), bifrost.LSN(applied)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := replica(t).Run(ctx); !errors.Is(err, damaged) {
		t.Fatalf("with the log trimmed, Run = %v, want the restore's error", err)
	}
}
