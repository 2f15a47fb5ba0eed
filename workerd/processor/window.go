package processor

import (
	"context"
	"slices"
	"sync"

	"gorestate.dev/shared/rpc"
)

// DefaultAppendWindow is how many bytes of a leader's records may wait to become durable
// before further appends wait.
const DefaultAppendWindow = 8 << 20

// appendWindow bounds the bytes of a leader's appends that are not durable yet. When the
// log falls behind, appends beyond it wait: the invoker stops reading from its
// deployments (HTTP/2 flow control then holds them back), ingress requests, timers and the
// shuffler slow down, instead of the log writer's queue growing without bound. Waiters are
// served in arrival order, so a large record is not starved by a stream of small ones.
type appendWindow struct {
	mu      sync.Mutex
	limit   int
	used    int
	waiters []*windowWaiter // in arrival order
}

type windowWaiter struct {
	n     int
	ready chan struct{} // closed once n bytes are granted
}

func newAppendWindow(limit int) *appendWindow {
	if limit <= 0 {
		limit = DefaultAppendWindow
	}
	return &appendWindow{limit: limit}
}

// acquire waits until n more bytes fit behind every earlier waiter (a record larger than
// the window waits until it is empty) and returns what it took, to be given back to
// release. It fails only when ctx ends, or stop is closed, while it waits.
func (w *appendWindow) acquire(ctx context.Context, stop <-chan struct{}, n int) (int, error) {
	n = min(max(n, 1), w.limit)
	w.mu.Lock()
	if len(w.waiters) == 0 && w.used+n <= w.limit {
		w.used += n
		w.mu.Unlock()
		return n, nil
	}
	me := &windowWaiter{n: n, ready: make(chan struct{})}
	w.waiters = append(w.waiters, me)
	w.mu.Unlock()
	var err error
	select {
	case <-me.ready:
		return n, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = rpc.ErrNotLeader // the leadership ended: callers retry elsewhere
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-me.ready:
		return n, nil // granted meanwhile: the caller holds it and appends
	default:
	}
	w.waiters = slices.DeleteFunc(w.waiters, func(x *windowWaiter) bool { return x == me })
	w.grantLocked() // the waiters behind this one may fit now
	return 0, err
}

func (w *appendWindow) release(n int) {
	w.mu.Lock()
	w.used -= n
	w.grantLocked()
	w.mu.Unlock()
}

// grantLocked admits waiters from the front while they fit.
func (w *appendWindow) grantLocked() {
	for len(w.waiters) > 0 && w.used+w.waiters[0].n <= w.limit {
		next := w.waiters[0]
		w.waiters[0] = nil
		w.waiters = w.waiters[1:]
		w.used += next.n
		close(next.ready)
	}
}
