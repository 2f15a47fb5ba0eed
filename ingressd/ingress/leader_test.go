package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// invokerFunc adapts a function to rpc.Invoker.
type invokerFunc func(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error)

func (f invokerFunc) Invoke(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
	return f(ctx, req)
}

func TestRoutingFailures(t *testing.T) {
	t.Parallel()
	ok := invokerFunc(func(_ context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
		return &rpc.InvokeResponse{InvocationID: req.InvocationID, Output: []byte(`"ok"`)}, nil
	})
	tests := []struct {
		name          string
		partitions    uint32
		route         func(attempt int) (rpc.Worker, error)
		invoke        func(attempt int) error // nil error = success
		wantStatus    int
		wantMsgPrefix string
		wantRoutes    int
	}{
		{
			name: "not leader, then leader", partitions: 4,
			route: func(a int) (rpc.Worker, error) {
				if a < 3 {
					return nil, fmt.Errorf("partition moved: %w", rpc.ErrNotLeader)
				}
				return ok, nil
			},
			wantStatus: 200, wantRoutes: 3,
		},
		{
			name: "node says not leader, then leader", partitions: 4,
			route: func(int) (rpc.Worker, error) { return ok, nil },
			invoke: func(a int) error {
				if a < 2 {
					return rpc.ErrNotLeader
				}
				return nil
			},
			wantStatus: 200, wantRoutes: 2,
		},
		{
			name: "never a leader", partitions: 4,
			route:      func(int) (rpc.Worker, error) { return nil, rpc.ErrNotLeader },
			wantStatus: 503, wantMsgPrefix: "partition ", wantRoutes: defaultLeaderAttempts,
		},
		{
			name: "routing broken", partitions: 4,
			route:      func(int) (rpc.Worker, error) { return nil, errors.New("no nodes configuration") },
			wantStatus: 503, wantMsgPrefix: "cannot route to partition ", wantRoutes: 1,
		},
		{
			name: "route without invoker", partitions: 4,
			route:      func(int) (rpc.Worker, error) { return nil, nil },
			wantStatus: 503, wantMsgPrefix: "cannot route to partition ", wantRoutes: 1,
		},
		{
			name: "worker unreachable", partitions: 4,
			route: func(int) (rpc.Worker, error) { return ok, nil },
			invoke: func(int) error {
				return fmt.Errorf("invoke: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")})
			},
			wantStatus: 503, wantMsgPrefix: "partition ", wantRoutes: defaultLeaderAttempts,
		},
		{
			name: "worker unreachable, then the new leader", partitions: 4,
			route: func(int) (rpc.Worker, error) { return ok, nil },
			invoke: func(a int) error {
				if a < 3 {
					return fmt.Errorf("invoke: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")})
				}
				return nil
			},
			wantStatus: 200, wantRoutes: 3,
		},
		{
			name: "worker failed", partitions: 4,
			route:      func(int) (rpc.Worker, error) { return ok, nil },
			invoke:     func(int) error { return errors.New("store corrupted") },
			wantStatus: 500, wantMsgPrefix: "invocation failed on partition ", wantRoutes: 1,
		},
		{
			name: "not provisioned", partitions: 0,
			route:      func(int) (rpc.Worker, error) { return ok, nil },
			wantStatus: 503, wantMsgPrefix: "the cluster has no partitions yet", wantRoutes: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var routes, invokes atomic.Int32
			reg := testRegistry()
			h := newHandler(Options{
				Schema:        func() *schema.Registry { return reg },
				NumPartitions: func() uint32 { return tt.partitions },
				Route: func(p uint32) (rpc.Worker, error) {
					if p >= tt.partitions {
						t.Errorf("routed to partition %d of %d", p, tt.partitions)
					}
					inv, err := tt.route(int(routes.Add(1)))
					if inv == nil || tt.invoke == nil {
						return inv, err
					}
					return invokerFunc(func(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
						if err := tt.invoke(int(invokes.Add(1))); err != nil {
							return nil, err
						}
						return inv.Invoke(ctx, req)
					}), err
				},
			})
			h.leaderBackoff = time.Millisecond
			r := httptest.NewRequest(http.MethodPost, "/Greeter/Greet", strings.NewReader(`"x"`))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus >= 500 {
				checkIngressError(t, rec, tt.wantStatus, tt.wantMsgPrefix, true)
			}
			if got := int(routes.Load()); got != tt.wantRoutes {
				t.Errorf("%d routing attempts, want %d", got, tt.wantRoutes)
			}
		})
	}
}

// TestClientGoneCancelsInvocation checks that a client disconnecting cancels the context the
// invoker waits on, over a real HTTP connection.
func TestClientGoneCancelsInvocation(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	reg := testRegistry()
	h := NewHandler(Options{
		Schema:        func() *schema.Registry { return reg },
		NumPartitions: func() uint32 { return 1 },
		Route: func(uint32) (rpc.Worker, error) {
			return invokerFunc(func(ctx context.Context, _ *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
				close(started)
				<-ctx.Done()
				cancelled <- ctx.Err()
				return nil, ctx.Err()
			}), nil
		},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/Greeter/Greet", strings.NewReader(`"x"`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()

	deadline := time.After(10 * time.Second)
	select {
	case <-started:
	case <-deadline:
		t.Fatal("the invocation never started")
	}
	cancel()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("invoker context ended with %v, want context.Canceled", err)
		}
	case <-deadline:
		t.Fatal("the invoker's context was not cancelled when the client went away")
	}
	if err := <-done; err == nil {
		t.Fatal("the cancelled client got an answer")
	}
}

// TestLeaderMovedEndsTheWait: an invocation waiting on a leader that never answers (its node
// is cut off by the network) is sent, with the same invocation id, to the new leader as soon
// as the partition table places the partition elsewhere.
func TestLeaderMovedEndsTheWait(t *testing.T) {
	t.Parallel()
	var (
		leader  atomic.Value // node name
		changed = make(chan struct{})
		ids     = make(chan []byte, 2)
	)
	leader.Store("n1")
	silent := invokerFunc(func(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
		ids <- req.InvocationID
		<-ctx.Done() // never answers
		return nil, ctx.Err()
	})
	answers := invokerFunc(func(_ context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
		ids <- req.InvocationID
		return &rpc.InvokeResponse{InvocationID: req.InvocationID, Output: []byte(`"ok"`)}, nil
	})
	reg := testRegistry()
	h := newHandler(Options{
		Schema:        func() *schema.Registry { return reg },
		NumPartitions: func() uint32 { return 1 },
		Route: func(uint32) (rpc.Worker, error) {
			if leader.Load() == "n1" {
				return silent, nil
			}
			return answers, nil
		},
		LeaderOf:     func(uint32) string { return leader.Load().(string) },
		TableChanged: func() <-chan struct{} { return changed },
	})
	h.leaderBackoff = time.Millisecond
	go func() {
		first := <-ids
		ids <- first
		leader.Store("n2")
		close(changed) // the controller placed the partition on n2
	}()
	r := httptest.NewRequest(http.MethodPost, "/Greeter/Greet", strings.NewReader(`"x"`))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	first, second := <-ids, <-ids
	if string(first) != string(second) {
		t.Fatalf("the retry carried invocation id %x, the first attempt %x", second, first)
	}
	t.Logf("answered by the new leader %v after the first attempt", time.Since(start).Round(time.Millisecond))
}
