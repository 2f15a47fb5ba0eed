// Package storetest is the conformance suite of metadata.Store: every implementation (the
// local store, the HTTP client, the Raft-replicated store) must pass it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/metadata"
)

// Timeout bounds every blocking call of the suite, so a bug fails instead of hanging.
const Timeout = 10 * time.Second

// Ctx is a context that ends with the test or after Timeout.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// CompareAndSet walks key through CAS steps: create, update, stale writes refused, and
// reads see exactly the last accepted version.
func CompareAndSet(t *testing.T, s metadata.Store, key string) {
	t.Helper()
	ctx := Ctx(t)
	if _, err := s.Get(ctx, key); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("Get of absent key: %v, want ErrNotFound", err)
	}
	steps := []struct {
		value       string
		expected    uint64
		wantVersion uint64
		wantErr     error
	}{
		{"a", 1, 0, metadata.ErrVersionMismatch}, // the key does not exist yet
		{"a", 0, 1, nil},
		{"b", 0, 0, metadata.ErrVersionMismatch},
		{"b", 1, 2, nil},
		{"c", 1, 0, metadata.ErrVersionMismatch},
		{"c", 5, 0, metadata.ErrVersionMismatch},
		{"", 2, 3, nil}, // an empty value is a value
	}
	want := metadata.Versioned{}
	for i, st := range steps {
		got, err := s.Put(ctx, key, []byte(st.value), st.expected)
		if !errors.Is(err, st.wantErr) || got != st.wantVersion || (st.wantErr == nil) != (err == nil) {
			t.Fatalf("step %d: Put(%q, expected %d) = %d, %v; want %d, %v", i, st.value, st.expected, got, err, st.wantVersion, st.wantErr)
		}
		if err == nil {
			want = metadata.Versioned{Version: got, Value: []byte(st.value)}
		}
		v, err := s.Get(ctx, key)
		if want.Version == 0 {
			if !errors.Is(err, metadata.ErrNotFound) {
				t.Fatalf("step %d: Get = %d, %v; want ErrNotFound", i, v.Version, err)
			}
			continue
		}
		if err != nil || v.Version != want.Version || string(v.Value) != string(want.Value) {
			t.Fatalf("step %d: Get = %d %q, %v; want %d %q", i, v.Version, v.Value, err, want.Version, want.Value)
		}
	}
	if _, err := s.Get(ctx, key+"-other"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("Get of another key: %v, want ErrNotFound", err)
	}
}

// ConcurrentWritersOneWins races writers on the same expected version: exactly one wins.
func ConcurrentWritersOneWins(t *testing.T, s metadata.Store, key string) {
	t.Helper()
	ctx := Ctx(t)
	const writers = 8
	for round, expected := range []uint64{0, 1} {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			errs    []error
		)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				val := fmt.Sprintf("round %d writer %d", round, i)
				_, err := s.Put(ctx, key, []byte(val), expected)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					winners = append(winners, val)
				} else if !errors.Is(err, metadata.ErrVersionMismatch) {
					errs = append(errs, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: unexpected errors: %v", round, errs)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1: %q", round, len(winners), winners)
		}
		v, err := s.Get(ctx, key)
		if err != nil || v.Version != expected+1 || string(v.Value) != winners[0] {
			t.Fatalf("round %d: Get = %d %q, %v; want %d %q", round, v.Version, v.Value, err, expected+1, winners[0])
		}
	}
}

// WaitNewer checks that WaitNewer returns newer versions and respects its context.
func WaitNewer(t *testing.T, s metadata.Store, key string) {
	t.Helper()
	ctx := Ctx(t)

	// A waiter on an absent key is woken by the first Put.
	got := make(chan metadata.Versioned, 1)
	errc := make(chan error, 1)
	go func() {
		v, err := s.WaitNewer(ctx, key, 0)
		errc <- err
		got <- v
	}()
	if _, err := s.Put(ctx, key, []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("WaitNewer: %v", err)
	}
	if v := <-got; v.Version != 1 || string(v.Value) != "one" {
		t.Fatalf("WaitNewer = %d %q, want 1 \"one\"", v.Version, v.Value)
	}

	// An already newer version is returned at once.
	v, err := s.WaitNewer(ctx, key, 0)
	if err != nil || v.Version != 1 {
		t.Fatalf("WaitNewer(0) after a write = %d, %v", v.Version, err)
	}

	// Several waiters on the current version are all woken by one Put.
	const waiters = 4
	results := make(chan metadata.Versioned, waiters)
	for range waiters {
		go func() {
			v, err := s.WaitNewer(ctx, key, 1)
			if err != nil {
				t.Errorf("WaitNewer(1): %v", err)
			}
			results <- v
		}()
	}
	if _, err := s.Put(ctx, key, []byte("two"), 1); err != nil {
		t.Fatal(err)
	}
	for range waiters {
		if v := <-results; v.Version != 2 || string(v.Value) != "two" {
			t.Errorf("woken waiter got %d %q, want 2 \"two\"", v.Version, v.Value)
		}
	}

	// Nothing newer: the waiter ends with its context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitNewer(short, key, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitNewer with nothing newer: %v, want DeadlineExceeded", err)
	}
}
