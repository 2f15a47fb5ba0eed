package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// flakyStore fails the first failures calls of Get and WaitNewer, then delegates.
type flakyStore struct {
	Store
	failures atomic.Int32
}

var errFlaky = errors.New("flaky: server unreachable")

func (f *flakyStore) fail() bool { return f.failures.Add(-1) >= 0 }

func (f *flakyStore) Get(ctx context.Context, key string) (Versioned, error) {
	if f.fail() {
		return Versioned{}, errFlaky
	}
	return f.Store.Get(ctx, key)
}

func (f *flakyStore) WaitNewer(ctx context.Context, key string, version uint64) (Versioned, error) {
	if f.fail() {
		return Versioned{}, errFlaky
	}
	return f.Store.WaitNewer(ctx, key, version)
}

func TestWatcherFollowsVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		initial  int // versions written before Watch starts
		failures int32
	}{
		{"key absent at start", 0, 0},
		{"key present at start", 2, 0},
		{"store errors are retried", 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			local := openLocal(t)
			put := func(v uint64) {
				t.Helper()
				if _, err := local.Put(ctx, KeySchema, fmt.Appendf(nil, "v%d", v), v-1); err != nil {
					t.Fatal(err)
				}
			}
			for v := 1; v <= tt.initial; v++ {
				put(uint64(v))
			}
			store := &flakyStore{Store: local}
			store.failures.Store(tt.failures)
			var errorsSeen atomic.Int32
			w := Watcher{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
				OnError: func(error) { errorsSeen.Add(1) }}
			changes := make(chan Versioned)
			done := make(chan error, 1)
			go func() { done <- w.Watch(ctx, store, KeySchema, func(v Versioned) { changes <- v }) }()

			next := uint64(1)
			if tt.initial > 0 {
				next = uint64(tt.initial)
			}
			for ; next <= uint64(tt.initial)+3; next++ {
				if next > uint64(tt.initial) {
					put(next)
				}
				v := <-changes
				if v.Version != next || string(v.Value) != fmt.Sprintf("v%d", next) {
					t.Fatalf("onChange(%d %q), want version %d", v.Version, v.Value, next)
				}
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Watch returned %v, want context.Canceled", err)
			}
			if got := errorsSeen.Load(); got != tt.failures {
				t.Errorf("OnError called %d times, want %d", got, tt.failures)
			}
		})
	}
}

func TestWatchOverHTTP(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	local := openLocal(t)
	c := NewClient([]string{serve(t, local).URL}, nil)
	changes := make(chan Versioned)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, c, KeyPartitionTable, func(v Versioned) { changes <- v }) }()
	for v := uint64(1); v <= 3; v++ {
		if _, err := local.Put(ctx, KeyPartitionTable, []byte{byte(v)}, v-1); err != nil {
			t.Fatal(err)
		}
		if got := <-changes; got.Version != v {
			t.Fatalf("onChange version %d, want %d", got.Version, v)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v", err)
	}
}
