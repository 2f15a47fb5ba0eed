package workerd

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
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
// starts again at 100ms once the processor ran well (applied records, or ran 10s) before a
// failure. Here: five failures, a healthy run, then one failure, restarted after about
// 100ms. (The pause used to be never reset: after a few failures during earlier faults, a
// processor that had run well since waited 3.2s or more, up to 10s, and a placed leader
// left its partition without a leader that long; the node being alive, the controller did
// not move it.)
func TestProcessorRestartBackoffResetsAfterAHealthyRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fail atomic.Bool
	fail.Store(true)
	var fp *flakyProvider
	w := testWorker(t, 1, "flaky", func(local *localloglet.Provider) bifrost.Registry {
		fp = &flakyProvider{inner: local, fail: &fail}
		return bifrost.Registry{"flaky": fp}
	})
	b := w.bifrost
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
