package admin

import (
	"context"
	"sync"
	"testing"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/schema"
)

// laggingStore is a metadata member whose own copy of one key lags the leader: reads keep
// returning the copy it held until it waits for a newer version, as a raft follower's FSM
// catches up.
type laggingStore struct {
	metadata.Store
	mu    sync.Mutex
	stale map[string]metadata.Versioned
}

func (l *laggingStore) Get(ctx context.Context, key string) (metadata.Versioned, error) {
	l.mu.Lock()
	v, ok := l.stale[key]
	l.mu.Unlock()
	if ok {
		return v, nil
	}
	return l.Store.Get(ctx, key)
}

func (l *laggingStore) WaitNewer(ctx context.Context, key string, version uint64) (metadata.Versioned, error) {
	l.mu.Lock()
	delete(l.stale, key)
	l.mu.Unlock()
	return l.Store.WaitNewer(ctx, key, version)
}

// A registry update on a member whose copy lags (another admin wrote the registry
// meanwhile) succeeds once the copy catches up; it re-read the same stale copy on every
// attempt and gave up with "kept changing" before.
func TestRegistryUpdateOnALaggingMember(t *testing.T) {
	ctx := context.Background()
	backing, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backing.Close() })
	empty, _ := schema.Decode(nil)
	b, err := empty.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backing.Put(ctx, metadata.KeySchema, b, 0); err != nil {
		t.Fatal(err)
	}
	v1, err := backing.Get(ctx, metadata.KeySchema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backing.Put(ctx, metadata.KeySchema, b, v1.Version); err != nil { // another admin's write
		t.Fatal(err)
	}
	lagging := &laggingStore{Store: backing, stale: map[string]metadata.Versioned{metadata.KeySchema: v1}}
	attempts := 0
	_, err = updateRegistry(ctx, lagging, schema.BuiltinDefaults(), false, func(*schema.Registry) (bool, error) {
		attempts++
		return true, nil
	})
	if err != nil {
		t.Fatalf("update on a lagging member after %d attempts: %v", attempts, err)
	}
	if attempts != 2 {
		t.Fatalf("%d attempts, want 2 (one on the stale copy, one after it caught up)", attempts)
	}
}
