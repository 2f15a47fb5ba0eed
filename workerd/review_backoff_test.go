package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
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

var errInjectedRead = errors.New("injected read failure")

// flakyProvider opens local loglets whose reads fail while fail is set, and notes when.
type flakyProvider struct {
	inner    *localloglet.Provider
	fail     *atomic.Bool
	mu       sync.Mutex
	failures []time.Time
}

func (f *flakyProvider) Kind() string { return "flaky" }
func (f *flakyProvider) Open(ctx context.Context, seg metadata.Segment) (bifrost.Loglet, error) {
	seg.Provider = bifrost.ProviderLocal
	l, err := f.inner.Open(ctx, seg)
	if err != nil {
		return nil, err
	}
	return &flakyLoglet{Loglet: l, f: f}, nil
}

func (f *flakyProvider) failed() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.failures...)
}

type flakyLoglet struct {
	bifrost.Loglet
	f *flakyProvider
}

func (l *flakyLoglet) Read(ctx context.Context, from bifrost.Offset, max int) ([]bifrost.Record, error) {
	fail := func() ([]bifrost.Record, error) {
		l.f.mu.Lock()
		l.f.failures = append(l.f.failures, time.Now())
		l.f.mu.Unlock()
		return nil, errInjectedRead
	}
	if l.f.fail.Load() {
		return fail()
	}
	recs, err := l.Loglet.Read(ctx, from, max)
	if err == nil && l.f.fail.Load() {
		return fail()
	}
	return recs, err
}

// A processor that fails is restarted after a pause that doubles up to 10s, and the pause
// is never reset: after a few failures during earlier faults (each chaos fault can fail a
// read or two), a processor that has run well since (hours, in production) waits 10s before
// it runs again after its next failure. If it is the partition's placed leader, the
// partition has no leader that long, and the controller does not move it (the node is
// alive). Here: five failures, a healthy run, then one failure; the restart takes 3.2s
// instead of the 100ms a first failure gets.
func TestProcessorRestartBackoffResetsAfterAHealthyRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {{BaseLSN: 1, Provider: "flaky"}}}})
	if _, err := meta.Put(ctx, metadata.KeyLogs, chains, 0); err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	fail.Store(true)
	fp := &flakyProvider{inner: localloglet.NewProvider(logs, "n1"), fail: &fail}
	b := bifrost.New(bifrost.Options{Meta: meta, Registry: bifrost.Registry{"flaky": fp}})
	t.Cleanup(func() { b.Close() })
	db, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.NodeName = "n1"
	w := &Worker{cfg: cfg, meta: meta, log: hclog.NewNullLogger(), bifrost: b, db: db}
	w.snapshots = snapshotter{w: w, parts: map[uint32]*partitionSnapshots{}}
	tbl := &metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "n2", Followers: []string{"n1"}}}}
	w.placed.Store(tbl)
	w.procsMu.Lock()
	r := w.startProcessor(ctx, tbl, 0, processor.RoleFollower)
	w.procsMu.Unlock()
	defer func() { cancel(); <-r.done }()

	waitFailures := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for len(fp.failed()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %d read failures (have %d)", n, len(fp.failed()))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFailures(5)
	fail.Store(false)
	// Healthy: it applies what is appended.
	lsn, err := b.Log(0).Append(ctx, [][]byte{logrecord.FormatMarker()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := r.proc.WaitApplied(wctx, uint64(lsn)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	// One more failure: the blocked read returns with the next record and fails.
	fail.Store(true)
	if _, err := b.Log(0).Append(ctx, [][]byte{logrecord.FormatMarker()}); err != nil {
		t.Fatal(err)
	}
	waitFailures(7) // the failure, then the first read of the restarted processor
	fs := fp.failed()
	if gap := fs[6].Sub(fs[5]); gap > time.Second {
		t.Fatalf("the processor ran well after its earlier failures, yet its next failure kept it stopped for %v "+
			"(the restart pause is never reset)", gap.Round(10*time.Millisecond))
	}
}
