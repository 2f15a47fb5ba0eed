package workerd

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

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
	w := &Worker{cfg: cfg, meta: meta, log: hclog.NewNullLogger(), bifrost: bf, db: db, procs: map[uint32]*running{}}
	w.snapshots = snapshotter{w: w, parts: map[uint32]*partitionSnapshots{}}
	return w
}
