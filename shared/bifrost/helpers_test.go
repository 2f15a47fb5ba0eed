package bifrost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/bifrost/loglettest"
	"gorestate.dev/shared/bifrost/memloglet"
	"gorestate.dev/shared/metadata"
)

const testTimeout = loglettest.Timeout

func testCtx(t testing.TB) context.Context { return loglettest.Ctx(t) }

// cluster is a metadata store and an in-memory provider shared by the nodes (Bifrosts) of
// a test, as log servers and the metadata service are shared by a real cluster's nodes.
type cluster struct {
	meta     *metadata.LocalStore
	provider *memloglet.Provider
	// kind and registry are the provider of new segments; memory unless set otherwise.
	kind     string
	registry bifrost.Registry
	// reconfigured records the Reconfigure calls: (prev index or -1, sealed tail).
	mu           sync.Mutex
	reconfigured []string
}

func newCluster(t *testing.T, chains map[uint32][]metadata.Segment) *cluster {
	t.Helper()
	meta, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	if chains != nil {
		b, _ := json.Marshal(metadata.Logs{Chains: chains})
		if _, err := meta.Put(context.Background(), metadata.KeyLogs, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	p := memloglet.NewProvider()
	return &cluster{meta: meta, provider: p, kind: memloglet.Kind, registry: bifrost.Registry{memloglet.Kind: p}}
}

// newLocalCluster is a cluster whose segments are local loglets of one store (one node).
func newLocalCluster(t *testing.T, chains map[uint32][]metadata.Segment) *cluster {
	t.Helper()
	c := newCluster(t, chains)
	s, err := localloglet.Open(t.TempDir(), localloglet.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c.kind = bifrost.ProviderLocal
	c.registry = bifrost.Registry{bifrost.ProviderLocal: localloglet.NewProvider(s, "n1")}
	return c
}

// firstSeg is the first segment of logID with the cluster's provider.
func (c *cluster) firstSeg(logID uint32) metadata.Segment {
	return metadata.Segment{BaseLSN: 1, Provider: c.kind, LogletID: bifrost.LogletID(logID, 0)}
}

// memSeg is a first in-memory segment of logID.
func memSeg(logID uint32) metadata.Segment {
	return metadata.Segment{BaseLSN: 1, Provider: memloglet.Kind, LogletID: bifrost.LogletID(logID, 0)}
}

// reconfigure is a Reconfigure hook that always builds an in-memory segment.
func (c *cluster) reconfigure(_ context.Context, logID uint32, prev metadata.Segment, sealed bifrost.LSN) (metadata.Segment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := "none"
	if prev.Provider != "" {
		idx = fmt.Sprint(prev.Index)
	}
	c.reconfigured = append(c.reconfigured, fmt.Sprintf("log %d after %s at %d", logID, idx, sealed))
	return metadata.Segment{Provider: c.kind}, nil
}

func (c *cluster) reconfigurations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reconfigured...)
}

// node starts a Bifrost on the cluster; writer nodes get the Reconfigure hook.
func (c *cluster) node(t *testing.T, writer bool) *bifrost.Bifrost {
	t.Helper()
	opts := bifrost.Options{
		Meta:          c.meta,
		Registry:      c.registry,
		Logger:        hclog.NewNullLogger(),
		RetryInterval: 5 * time.Millisecond,
	}
	if writer {
		opts.Reconfigure = c.reconfigure
	}
	b := bifrost.New(opts)
	t.Cleanup(func() { b.Close() })
	return b
}

// chain reads a log's chain from the store.
func (c *cluster) chain(t *testing.T, logID uint32) []metadata.Segment {
	t.Helper()
	v, err := c.meta.Get(context.Background(), metadata.KeyLogs)
	if err != nil {
		t.Fatal(err)
	}
	var logs metadata.Logs
	if err := json.Unmarshal(v.Value, &logs); err != nil {
		t.Fatal(err)
	}
	return logs.Chains[logID]
}

// loglet returns the in-memory loglet of a segment.
func (c *cluster) loglet(seg metadata.Segment) *memloglet.Loglet {
	return c.provider.Loglet(seg.LogletID)
}

// next builds a successor segment with the cluster's provider.
func (c *cluster) next(bifrost.LSN, metadata.Segment) (metadata.Segment, error) {
	return metadata.Segment{Provider: c.kind}, nil
}

// memNext builds an in-memory successor segment.
func memNext(bifrost.LSN, metadata.Segment) (metadata.Segment, error) {
	return metadata.Segment{Provider: memloglet.Kind}, nil
}

// appendRecords appends one-record batches "<prefix><i>" for i in [0, n) and checks their
// LSNs follow from first.
func appendRecords(t *testing.T, l bifrost.Log, prefix string, n int, first bifrost.LSN) {
	t.Helper()
	ctx := testCtx(t)
	for i := range n {
		lsn, err := l.Append(ctx, [][]byte{fmt.Appendf(nil, "%s%d", prefix, i)})
		if err != nil {
			t.Fatalf("append %s%d: %v", prefix, i, err)
		}
		if want := first + bifrost.LSN(i); lsn != want {
			t.Fatalf("append %s%d got lsn %d, want %d", prefix, i, lsn, want)
		}
	}
}

// readRange reads [from, to) and fails unless the LSNs are exactly those, in order.
func readRange(t *testing.T, l bifrost.Log, from, to bifrost.LSN) []bifrost.Entry {
	t.Helper()
	ctx := testCtx(t)
	var out []bifrost.Entry
	for next := from; next < to; {
		ents, err := l.Read(ctx, next, 100)
		if err != nil {
			t.Fatalf("read from %d: %v", next, err)
		}
		for _, e := range ents {
			if e.LSN != next {
				t.Fatalf("read from %d: got lsn %d, want %d", from, e.LSN, next)
			}
			next++
		}
		out = append(out, ents...)
	}
	return out
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func isMismatch(err error) bool { return errors.Is(err, bifrost.ErrSegmentMismatch) }

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
