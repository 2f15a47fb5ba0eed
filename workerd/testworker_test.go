package workerd

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
)

type nopInvoker struct{}

func (nopInvoker) Invoke(processor.Leadership, []byte)                             {}
func (nopInvoker) Resume(processor.Leadership, []byte)                             {}
func (nopInvoker) Notify(processor.Leadership, []byte, uint32, store.JournalEntry) {}
func (nopInvoker) StopPartition(uint32)                                            {}
func (nopInvoker) Abort(processor.Leadership, []byte)                              {}
func (nopInvoker) Pause(processor.Leadership, []byte)                              {}
func (nopInvoker) RetryNow(processor.Leadership, []byte)                           {}

// testWorker is a worker of node n1 with what its processors and snapshotter need, without
// Start: a local metadata store whose logs object gives each of the partitions' logs one
// segment of provider kind, bifrost over the providers registry returns (given the node's
// local loglet provider; nil: that provider alone), and a partition store.
func testWorker(t *testing.T, partitions int, kind string, registry func(*localloglet.Provider) bifrost.Registry) *Worker {
	t.Helper()
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
	chains := map[uint32][]metadata.Segment{}
	for p := range uint32(partitions) {
		chains[p] = []metadata.Segment{{BaseLSN: 1, Provider: kind, LogletID: bifrost.LogletID(p, 0)}}
	}
	b, _ := json.Marshal(metadata.Logs{Chains: chains})
	if _, err := meta.Put(context.Background(), metadata.KeyLogs, b, 0); err != nil {
		t.Fatal(err)
	}
	local := localloglet.NewProvider(logs, "n1")
	reg := bifrost.Registry{bifrost.ProviderLocal: local}
	if registry != nil {
		reg = registry(local)
	}
	bf := bifrost.New(bifrost.Options{Meta: meta, Registry: reg})
	t.Cleanup(func() { bf.Close() })
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.NodeName = "n1"
	w := &Worker{cfg: cfg, meta: meta, log: hclog.NewNullLogger(), bifrost: bf, logs: logs, db: db, procs: map[uint32]*running{}}
	w.snapshots = snapshotter{w: w, parts: map[uint32]*partitionSnapshots{}}
	return w
}

// runLeader starts a processor of partition p (of w's table's partitions) as leader on w,
// registers it in w.procs and waits until it leads. It is stopped when the test ends.
func runLeader(t *testing.T, w *Worker, p uint32) *processor.Processor {
	t.Helper()
	n := uint32(1)
	if tbl := w.placed.Load(); tbl != nil {
		n = tbl.NumPartitions
	}
	b := w.bifrost
	proc := processor.New(processor.Config{Partition: p, NumPartitions: n, Store: w.db.Partition(p), Log: b.Log(p), WriterLog: b.WriterLog(p),
		Logs: func(q uint32) (bifrost.Log, error) { return b.WriterLog(q), nil }, Invoker: nopInvoker{}, Logger: hclog.NewNullLogger(),
		Role: processor.RoleLeader, NodeName: w.cfg.NodeName})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w.procsMu.Lock()
	w.procs[p] = &running{proc: proc, cancel: cancel, done: done}
	w.procsMu.Unlock()
	waitUntil(t, fmt.Sprintf("partition %d's leader", p), func() bool { return proc.Leader() != nil })
	return proc
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
