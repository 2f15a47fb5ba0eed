package processor

import (
	"context"
	"sync"
)

// DefaultAppendWindow is how many bytes of a leader's records may wait to become durable
// before further appends wait.
const DefaultAppendWindow = 8 << 20

// appendWindow bounds the bytes of a leader's appends that are not durable yet. When the
// log falls behind, appends beyond it wait: the invoker stops reading from its
// deployments (HTTP/2 flow control then holds them back), ingress requests, timers and the
// shuffler slow down, instead of the log writer's queue growing without bound.
type appendWindow struct {
	mu    sync.Mutex
	limit int
	used  int
	freed chan struct{} // closed when used drops; nil until someone waits
}

func newAppendWindow(limit int) *appendWindow {
	if limit <= 0 {
		limit = DefaultAppendWindow
	}
	return &appendWindow{limit: limit}
}

// acquire waits until n more bytes fit (a record larger than the window waits until it is
// empty) and returns what it took, to be given back to release. It fails only when ctx
// ends while it waits.
func (w *appendWindow) acquire(ctx context.Context, n int) (int, error) {
	n = min(max(n, 1), w.limit)
	for {
		w.mu.Lock()
		if w.used+n <= w.limit {
			w.used += n
			w.mu.Unlock()
			return n, nil
		}
		if w.freed == nil {
			w.freed = make(chan struct{})
		}
		freed := w.freed
		w.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (w *appendWindow) release(n int) {
	w.mu.Lock()
	w.used -= n
	if w.freed != nil {
		close(w.freed)
		w.freed = nil
	}
	w.mu.Unlock()
}
