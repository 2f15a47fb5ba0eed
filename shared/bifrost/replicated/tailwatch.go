package replicated

import (
	"sync"

	"gorestate.dev/shared/bifrost"
)

// tailWatch is a loglet's known global tail on this node: Open(o) or Sealed(o). It only
// moves up and the seal bit is sticky (BIFROST.md §1): an offset once reported committed
// is never reported lower, and a sealed tail never changes. Waiters get a channel that is
// closed on the next change.
type tailWatch struct {
	mu   sync.Mutex
	tail bifrost.TailState
	ch   chan struct{}
}

func newTailWatch() *tailWatch {
	return &tailWatch{tail: bifrost.TailState{Offset: 1}, ch: make(chan struct{})}
}

// get returns the current tail and a channel closed when it changes.
func (w *tailWatch) get() (bifrost.TailState, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tail, w.ch
}

func (w *tailWatch) current() bifrost.TailState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tail
}

func (w *tailWatch) changed() {
	close(w.ch)
	w.ch = make(chan struct{})
}

// raise moves an open tail up to o. A sealed tail does not move: offsets learned after a
// seal come from stores that were never acknowledged.
func (w *tailWatch) raise(o bifrost.Offset) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tail.Sealed || o <= w.tail.Offset {
		return
	}
	w.tail.Offset = o
	w.changed()
}

// seal marks the tail sealed at o and returns the resulting state. The first seal wins:
// different nodes may compute different sealed tails (the one written into the chain is
// authoritative), but this node never changes its mind. A seal below the open tail keeps
// the open tail, which is committed (it only happens if the caller's view is stale).
func (w *tailWatch) seal(o bifrost.Offset) bifrost.TailState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tail.Sealed {
		return w.tail
	}
	w.tail = bifrost.TailState{Offset: max(o, w.tail.Offset), Sealed: true}
	w.changed()
	return w.tail
}

// adopt raises a sealed tail to o (or seals at o). Used when the chain's sealed tail,
// which is authoritative, is higher than what this node computed.
func (w *tailWatch) adopt(o bifrost.Offset) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tail.Sealed && o <= w.tail.Offset {
		return
	}
	w.tail = bifrost.TailState{Offset: max(o, w.tail.Offset), Sealed: true}
	w.changed()
}
