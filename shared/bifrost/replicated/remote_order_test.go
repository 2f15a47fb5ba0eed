package replicated

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// failNthAppend fails the n-th Append (1-based) it forwards, once released.
type failNthAppend struct {
	wire.Sequencer
	calls   atomic.Int32
	failNth int32
	arrived chan struct{}
	release chan struct{}
}

func (f *failNthAppend) Append(ctx context.Context, req *wire.Append) (*wire.Appended, error) {
	if f.calls.Add(1) == f.failNth {
		close(f.arrived)
		<-f.release
		return nil, errors.New("injected: request lost")
	}
	return f.Sequencer.Append(ctx, req)
}

// A remote append that fails must not let the batch queued behind it commit first: the
// virtual log re-appends the failed batch, and it would then land after the later one.
// Both for a plain log (the same segment is tried again) and for a writer log (the
// segment is sealed and the chain extended).
func TestFailedRemoteAppendKeepsTheOrderOfLaterBatches(t *testing.T) {
	for _, writer := range []bool{false, true} {
		name := "plain log"
		if writer {
			name = "writer log"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			c := newCluster(t, 3, 2, 7)
			p1 := c.provider("w1", 1, nil)
			p2 := c.provider("w2", 1, nil)
			gate := &failNthAppend{Sequencer: p1.SequencerService(), failNth: 2, arrived: make(chan struct{}), release: make(chan struct{})}
			c.net.SetSequencer("w1", gate)

			seg := metadata.Segment{
				BaseLSN: 1, Provider: bifrost.ProviderReplicated, LogletID: bifrost.LogletID(1, 0), Index: 0,
				Replicated: &metadata.ReplicatedParams{Sequencer: metadata.NodeID{Name: "w1", Generation: 1}, Replication: 2, Nodeset: c.names},
			}
			c.open(p1, seg)
			meta, err := metadata.OpenLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { meta.Close() })
			b, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{1: {seg}}})
			if _, err := meta.Put(ctx, metadata.KeyLogs, b, 0); err != nil {
				t.Fatal(err)
			}
			opts := bifrost.Options{Meta: meta, Registry: bifrost.Registry{bifrost.ProviderReplicated: p2}, Logger: hclog.NewNullLogger(),
				RetryInterval: 5 * time.Millisecond, RefusedRetryInterval: 50 * time.Millisecond}
			if writer {
				opts.Reconfigure = func(_ context.Context, _ uint32, _ metadata.Segment, _ bifrost.LSN) (metadata.Segment, error) {
					return metadata.Segment{Provider: bifrost.ProviderReplicated, Replicated: &metadata.ReplicatedParams{
						Sequencer: metadata.NodeID{Name: "w2", Generation: 1}, Replication: 2, Nodeset: c.names}}, nil
				}
			}
			bf := bifrost.New(opts)
			t.Cleanup(func() { bf.Close() })
			log := bf.Log(1)
			if writer {
				log = bf.WriterLog(1)
			}
			if _, err := log.Append(ctx, [][]byte{[]byte("p0")}); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			got := map[string]bifrost.LSN{}
			var wg sync.WaitGroup
			wg.Add(2)
			record := func(name string) func(bifrost.LSN, error) {
				return func(lsn bifrost.LSN, err error) {
					defer wg.Done()
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
					mu.Lock()
					got[name] = lsn
					mu.Unlock()
				}
			}
			log.AppendAsync([][]byte{[]byte("p1")}, record("p1"))
			<-gate.arrived // p1's Append is out alone
			log.AppendAsync([][]byte{[]byte("p2")}, record("p2"))
			close(gate.release)
			all := make(chan struct{})
			go func() { wg.Wait(); close(all) }()
			select {
			case <-all:
			case <-ctx.Done():
				t.Fatal("p1 and p2 were not decided")
			}
			t.Logf("p1 at LSN %d, p2 at LSN %d", got["p1"], got["p2"])
			if got["p1"] >= got["p2"] {
				t.Fatalf("p1 was enqueued before p2 but committed at LSN %d, p2 at %d", got["p1"], got["p2"])
			}

			// The plain log went on with the same segment: later appends still work.
			if _, err := log.Append(ctx, [][]byte{[]byte("p3")}); err != nil {
				t.Fatalf("append after the failure: %v", err)
			}
		})
	}
}
