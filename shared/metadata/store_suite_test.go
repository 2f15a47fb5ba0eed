package metadata

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every blocking call in these tests so a bug fails instead of hanging.
const testTimeout = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func openLocal(t *testing.T) *LocalStore {
	t.Helper()
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serve starts an HTTP metadata server for s on 127.0.0.1.
func serve(t *testing.T, s Store) *httptest.Server {
	t.Helper()
	return serveHandler(t, NewHTTPHandler(s))
}

// serveHandler starts h on 127.0.0.1 (httptest's default listener) until the test ends.
func serveHandler(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// storeImpls are the Store implementations every conformance test runs against.
var storeImpls = []struct {
	name string
	open func(t *testing.T) Store
}{
	{"local", func(t *testing.T) Store { return openLocal(t) }},
	{"http", func(t *testing.T) Store {
		srv := serve(t, openLocal(t))
		return NewClient([]string{srv.URL}, srv.Client())
	}},
}

func forEachStore(t *testing.T, test func(t *testing.T, s Store)) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			test(t, impl.open(t))
		})
	}
}

func TestStoreCompareAndSet(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := testCtx(t)
		if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of absent key: %v, want ErrNotFound", err)
		}
		steps := []struct {
			value       string
			expected    uint64
			wantVersion uint64
			wantErr     error
		}{
			{"a", 1, 0, ErrVersionMismatch}, // the key does not exist yet
			{"a", 0, 1, nil},
			{"b", 0, 0, ErrVersionMismatch},
			{"b", 1, 2, nil},
			{"c", 1, 0, ErrVersionMismatch},
			{"c", 5, 0, ErrVersionMismatch},
			{"", 2, 3, nil}, // an empty value is a value
		}
		want := Versioned{}
		for i, st := range steps {
			got, err := s.Put(ctx, "k", []byte(st.value), st.expected)
			if !errors.Is(err, st.wantErr) || got != st.wantVersion {
				t.Fatalf("step %d: Put(%q, expected %d) = %d, %v; want %d, %v", i, st.value, st.expected, got, err, st.wantVersion, st.wantErr)
			}
			if err == nil {
				want = Versioned{Version: got, Value: []byte(st.value)}
			}
			v, err := s.Get(ctx, "k")
			if want.Version == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("step %d: Get = %d, %v; want ErrNotFound", i, v.Version, err)
				}
				continue
			}
			if err != nil || v.Version != want.Version || string(v.Value) != string(want.Value) {
				t.Fatalf("step %d: Get = %d %q, %v; want %d %q", i, v.Version, v.Value, err, want.Version, want.Value)
			}
		}
		if _, err := s.Get(ctx, "other"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of another key: %v, want ErrNotFound", err)
		}
	})
}

func TestStoreConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := testCtx(t)
		const writers = 16
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
					_, err := s.Put(ctx, "contended", []byte(val), expected)
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						winners = append(winners, val)
					} else if !errors.Is(err, ErrVersionMismatch) {
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
			v, err := s.Get(ctx, "contended")
			if err != nil || v.Version != expected+1 || string(v.Value) != winners[0] {
				t.Fatalf("round %d: Get = %d %q, %v; want %d %q", round, v.Version, v.Value, err, expected+1, winners[0])
			}
		}
	})
}

func TestStoreWaitNewer(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := testCtx(t)

		// A waiter on an absent key is woken by the first Put.
		got := make(chan Versioned, 1)
		errc := make(chan error, 1)
		go func() {
			v, err := s.WaitNewer(ctx, "w", 0)
			errc <- err
			got <- v
		}()
		if _, err := s.Put(ctx, "w", []byte("one"), 0); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("WaitNewer: %v", err)
		}
		if v := <-got; v.Version != 1 || string(v.Value) != "one" {
			t.Fatalf("WaitNewer = %d %q, want 1 \"one\"", v.Version, v.Value)
		}

		// An already newer version is returned at once.
		v, err := s.WaitNewer(ctx, "w", 0)
		if err != nil || v.Version != 1 {
			t.Fatalf("WaitNewer(0) after a write = %d, %v", v.Version, err)
		}

		// Several waiters on the current version are all woken by one Put.
		const waiters = 4
		results := make(chan Versioned, waiters)
		for range waiters {
			go func() {
				v, err := s.WaitNewer(ctx, "w", 1)
				if err != nil {
					t.Errorf("WaitNewer(1): %v", err)
				}
				results <- v
			}()
		}
		if _, err := s.Put(ctx, "w", []byte("two"), 1); err != nil {
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
		if _, err := s.WaitNewer(short, "w", 2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitNewer with nothing newer: %v, want DeadlineExceeded", err)
		}
	})
}
