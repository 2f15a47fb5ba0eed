package processor

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

type nopInvoker struct{ invoked chan []byte }

func (n nopInvoker) Invoke(_ Leadership, id []byte) {
	select {
	case n.invoked <- id:
	default:
	}
}
func (n nopInvoker) Resume(l Leadership, id []byte)                      { n.Invoke(l, id) }
func (nopInvoker) Notify(Leadership, []byte, uint32, store.JournalEntry) {}
func (nopInvoker) StopPartition(uint32)                                  {}
func (nopInvoker) Abort(Leadership, []byte)                              {}
func (nopInvoker) Pause(Leadership, []byte)                              {}
func (nopInvoker) RetryNow(Leadership, []byte)                           {}

// newLog returns partition 0's writer log: one local segment (as provisioned before
// multi-node logs) in a local loglet store, its chain in a local metadata store.
func newLog(t *testing.T) bifrost.Log {
	_, log := newMetaLog(t)
	return log
}

// newMetaLog is newLog that also returns the metadata store.
func newMetaLog(t *testing.T) (metadata.Store, bifrost.Log) {
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
	chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {{BaseLSN: 1, Provider: bifrost.ProviderLocal}}}})
	if _, err := meta.Put(context.Background(), metadata.KeyLogs, chains, 0); err != nil {
		t.Fatal(err)
	}
	b := bifrost.New(bifrost.Options{Meta: meta, Registry: bifrost.Registry{bifrost.ProviderLocal: localloglet.NewProvider(logs, "n1")}})
	t.Cleanup(func() { b.Close() }) // before the stores close (cleanups run last first)
	return meta, b.WriterLog(0)
}

func startProcessor(t *testing.T, log bifrost.Log, db *store.DB, inv nopInvoker) (*Processor, context.CancelFunc) {
	t.Helper()
	p := New(Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: log,
		Logs: func(uint32) (bifrost.Log, error) { return log, nil }, Invoker: inv, Logger: hclog.NewNullLogger(), Role: RoleLeader})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("processor stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("processor not ready")
	}
	return p, cancel
}

// A store that lags behind the log (it is not fsynced) must not make the leader pick an
// epoch that the log already superseded: its own records would all be fenced off.
func TestLeaderEpochIsAboveEveryEpochInTheLog(t *testing.T) {
	log := newLog(t)
	old, _ := logrecord.Encode(&logrecord.Record{Kind: logrecord.KindAnnounceLeader, Epoch: 5, Time: 1, AnnounceLeader: &logrecord.AnnounceLeader{}})
	if _, err := log.Append(context.Background(), [][]byte{old}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir()) // empty store: epoch 0
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	inv := nopInvoker{invoked: make(chan []byte, 1)}
	p, _ := startProcessor(t, log, db, inv)
	l := p.Leader()
	if l.Epoch() != 6 {
		t.Fatalf("leader epoch %d, want 6", l.Epoch())
	}
	id := newID("")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := l.Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Send: true, Target: rpc.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}})
	if err != nil || resp.SendStatus != rpc.SendAccepted {
		t.Fatalf("send: %+v %v", resp, err)
	}
	select {
	case got := <-inv.invoked:
		if string(got) != string(id) {
			t.Fatal("invoked another invocation")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the leader's own Invoke record was not applied")
	}
}

// Timers beyond the in-memory horizon stay in the store and still fire on time once the
// horizon reaches them.
func TestTimerBeyondTheHorizonFires(t *testing.T) {
	// Restored after the processor's cleanup has stopped it (cleanups run last first).
	t.Cleanup(func(h time.Duration) func() { return func() { timerHorizon = h } }(timerHorizon))
	timerHorizon = 200 * time.Millisecond
	log := newLog(t)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	inv := nopInvoker{invoked: make(chan []byte, 1)}
	p, _ := startProcessor(t, log, db, inv)
	id := newID("")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Send: true, ExecutionTime: start.Add(700 * time.Millisecond),
		Target: rpc.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inv.invoked:
		if d := time.Since(start); d < 650*time.Millisecond {
			t.Fatalf("started after %v, before its execution time", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delayed invocation never started")
	}
}

// Timers come into memory a bounded batch at a time: with a batch of 5, 23 delayed
// invocations due a millisecond apart all start on time while the leader never holds more
// than two batches of timers.
func TestTimersLoadInBatches(t *testing.T) {
	t.Cleanup(func(h time.Duration, b int) func() {
		return func() { timerHorizon, timerBatch = h, b }
	}(timerHorizon, timerBatch))
	timerHorizon, timerBatch = 200*time.Millisecond, 5
	log := newLog(t)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	const n = 23
	inv := nopInvoker{invoked: make(chan []byte, n)}
	p, _ := startProcessor(t, log, db, inv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	for i := range n {
		if _, err := p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: newID(""), Send: true,
			ExecutionTime: start.Add(400*time.Millisecond + time.Duration(i)*time.Millisecond),
			Target:        rpc.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case <-inv.invoked:
			if d := time.Since(start); d < 390*time.Millisecond {
				t.Fatalf("invocation %d started after %v, before its execution time", i, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d delayed invocations started", i, n)
		}
	}
	ts := p.Leader().timers
	ts.mu.Lock()
	held := ts.maxHeld
	ts.mu.Unlock()
	if held > 2*timerBatch {
		t.Fatalf("the leader held %d timers at once; want at most %d", held, 2*timerBatch)
	}
	t.Logf("at most %d timers held at once", held)
}
