package metadata

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// deadAddress returns a base URL on 127.0.0.1 where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestClientFailsOver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(t *testing.T) string
	}{
		{"first address down", deadAddress},
		{"first server unavailable", func(t *testing.T) string { return serve(t, failingStore{ErrClosed}).URL }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			live := serve(t, openLocal(t))
			c := NewClient([]string{tt.first(t), live.URL}, nil)
			if v, err := c.Put(ctx, "k", []byte("v1"), 0); err != nil || v != 1 {
				t.Fatalf("Put = %d, %v", v, err)
			}
			if v, err := c.Get(ctx, "k"); err != nil || string(v.Value) != "v1" {
				t.Fatalf("Get = %q, %v", v.Value, err)
			}
			// A second client, without a remembered value, must long-poll the live server.
			c2 := NewClient([]string{tt.first(t), live.URL}, nil)
			if v, err := c2.WaitNewer(ctx, "k", 0); err != nil || v.Version != 1 {
				t.Fatalf("WaitNewer = %d, %v", v.Version, err)
			}
		})
	}
}

func TestClientAllServersDown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := NewClient([]string{deadAddress(t), deadAddress(t)}, nil)
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get: %v, want ErrUnavailable", err)
	}
	if _, err := c.Put(ctx, "k", nil, 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put: %v, want ErrUnavailable", err)
	}
	if _, err := NewClient(nil, nil).Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get without addresses: %v, want ErrUnavailable", err)
	}
}

// TestClientPutNotRetriedWhenOutcomeUnknown checks that a PUT whose connection broke after it
// was sent is not replayed on the next server, where it could double-apply or report a
// spurious mismatch.
func TestClientPutNotRetriedWhenOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	crashing := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	var puts atomic.Int32
	backup := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	c := NewClient([]string{crashing.URL, backup.URL}, nil)
	_, err := c.Put(ctx, "k", []byte("v"), 0)
	if err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Errorf("Put = %v, want an outcome-unknown error", err)
	}
	if n := puts.Load(); n != 0 {
		t.Errorf("PUT replayed on the backup server %d times", n)
	}
}

func TestClientNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ahead, behind, empty := openLocal(t), openLocal(t), openLocal(t)
	for _, s := range []Store{ahead, behind} {
		if _, err := s.Put(ctx, "k", []byte("v1"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ahead.Put(ctx, "k", []byte("v2"), 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		lagging Store
	}{
		{"lagging server has an older version", behind},
		{"lagging server lacks the key", empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := serve(t, ahead)
			c := NewClient([]string{first.URL, serve(t, tt.lagging).URL}, nil)
			if v, err := c.Get(ctx, "k"); err != nil || v.Version != 2 {
				t.Fatalf("Get from the up-to-date server = %d, %v", v.Version, err)
			}
			first.Close() // from now on only the lagging server answers
			v, err := c.Get(ctx, "k")
			if err != nil || v.Version != 2 || string(v.Value) != "v2" {
				t.Errorf("Get via the lagging server = %d %q, %v; want 2 \"v2\"", v.Version, v.Value, err)
			}
			// The lagging server would block; the client knows of version 2 already.
			if v, err := c.WaitNewer(ctx, "k", 1); err != nil || v.Version != 2 {
				t.Errorf("WaitNewer(1) = %d, %v; want 2 at once", v.Version, err)
			}
		})
	}
}

func TestClientRemembersOwnWrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	leader, follower := openLocal(t), openLocal(t)
	leaderSrv := serve(t, leader)
	c := NewClient([]string{leaderSrv.URL, serve(t, follower).URL}, nil)
	if _, err := c.Put(ctx, "k", []byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	leaderSrv.Close()
	v, err := c.Get(ctx, "k")
	if err != nil || v.Version != 1 || string(v.Value) != "mine" {
		t.Errorf("Get after own write, via a follower without it = %d %q, %v", v.Version, v.Value, err)
	}
}

func TestClientReturnsCopies(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := serve(t, openLocal(t))
	c := NewClient([]string{strings.TrimPrefix(srv.URL, "http://") + "/"}, nil) // no scheme, trailing slash
	val := []byte("abc")
	if _, err := c.Put(ctx, "k", val, 0); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X'
	srv.Close() // force answers from the remembered copy
	v, err := c.Get(ctx, "k")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get with the only server down: %d %q, %v; want ErrUnavailable", v.Version, v.Value, err)
	}
	v, err = c.WaitNewer(ctx, "k", 0)
	if err != nil || string(v.Value) != "abc" {
		t.Fatalf("WaitNewer = %q, %v; want the remembered \"abc\"", v.Value, err)
	}
	v.Value[0] = 'Y'
	if v, _ := c.WaitNewer(ctx, "k", 0); string(v.Value) != "abc" {
		t.Errorf("remembered value changed by a caller: %q", v.Value)
	}
}

func TestClientMapsErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := NewClient([]string{serve(t, openLocal(t)).URL}, nil)
	if _, err := c.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "absent") {
		t.Errorf("Get absent: %v, want ErrNotFound naming the key", err)
	}
	if _, err := c.Put(ctx, "k", nil, 3); !errors.Is(err, ErrVersionMismatch) || !strings.Contains(err.Error(), "version 0, not 3") {
		t.Errorf("Put mismatch: %v, want ErrVersionMismatch with the server's detail", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitNewer(cancelled, "k", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitNewer with a cancelled context: %v", err)
	}
}

// silentAddress returns a base URL on 127.0.0.1 that accepts connections and never answers,
// as a frozen (SIGSTOPped) or cut-off server does.
func silentAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return "http://" + l.Addr().String()
}

// A server that accepts and never answers costs one RequestTimeout; the call then goes to
// the next server. A write it swallowed has an unknown outcome and is not sent elsewhere.
func TestClientFailsOverFromASilentServer(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	live := serve(t, openLocal(t))
	seed := NewClient([]string{live.URL}, nil)
	if _, err := seed.Put(ctx, "k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	c := NewClient([]string{silentAddress(t), live.URL}, nil)
	c.RequestTimeout = 200 * time.Millisecond
	start := time.Now()
	if v, err := c.Get(ctx, "k"); err != nil || string(v.Value) != "v1" {
		t.Fatalf("Get = %q, %v", v.Value, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Get took %v past a silent server", d)
	}
	c2 := NewClient([]string{silentAddress(t), live.URL}, nil)
	c2.RequestTimeout = 200 * time.Millisecond
	if _, err := c2.Put(ctx, "k", []byte("v2"), 1); err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("Put through a silent server = %v, want an unknown outcome", err)
	}
}
