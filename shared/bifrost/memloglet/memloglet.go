// Package memloglet is an in-memory bifrost.Loglet and bifrost.Provider for tests. It keeps
// the contract of a durable loglet (offsets from 1, in-order completions, seal, trim) and
// adds hooks that let a test reproduce what a replicated loglet can do: hold appends in
// flight (Hold), seal at a tail that includes some of them while their writers are told
// the loglet was sealed (SealAt), and refuse appends with ErrReconfigurationNeeded
// (FailAppends).
package memloglet

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"gorestate.dev/shared/bifrost"
)

// Kind is the provider name of in-memory segments (metadata.Segment.Provider).
const Kind = "memory"

// ErrBadSealTail is returned by SealAt for a tail below the committed tail or above the
// offsets handed out.
var ErrBadSealTail = errors.New("memloglet: seal tail out of range")

// batch is an append that got offsets but is not committed yet (Hold).
type batch struct {
	first    bifrost.Offset
	payloads [][]byte
	done     func(bifrost.Offset, error)
}

// completion is one done call waiting to be delivered.
type completion struct {
	done  func(bifrost.Offset, error)
	first bifrost.Offset
	err   error
}

// Loglet is an in-memory loglet. It is safe for concurrent use.
type Loglet struct {
	id uint64

	mu      sync.Mutex
	recs    [][]byte       // payload of offset i+1 at recs[i]; nil once trimmed
	next    bifrost.Offset // next offset to hand out (above held batches)
	held    []batch        // in offset order
	hold    bool
	sealed  bool
	trim    bifrost.Offset
	failErr error
	waitCh  chan struct{} // closed when records commit or the loglet is sealed

	// Completions are delivered in the order they were queued, by one goroutine at a time,
	// so that done calls keep the enqueue order whichever goroutine completes a batch.
	compl      []completion
	delivering bool
}

var _ bifrost.Loglet = (*Loglet)(nil)

// New returns an empty loglet.
func New(id uint64) *Loglet { return &Loglet{id: id, next: 1} }

// ID returns the loglet's id.
func (l *Loglet) ID() uint64 { return l.id }

// committed is the offset after the last committed record. Callers hold l.mu.
func (l *Loglet) committed() bifrost.Offset { return bifrost.Offset(len(l.recs)) + 1 }

// wake wakes blocked readers. Callers hold l.mu.
func (l *Loglet) wake() {
	if l.waitCh != nil {
		close(l.waitCh)
		l.waitCh = nil
	}
}

// queue adds a completion. Callers hold l.mu and call deliver after unlocking.
func (l *Loglet) queue(done func(bifrost.Offset, error), first bifrost.Offset, err error) {
	if done != nil {
		l.compl = append(l.compl, completion{done: done, first: first, err: err})
	}
}

// deliver runs queued completions unless another goroutine already does.
func (l *Loglet) deliver() {
	l.mu.Lock()
	if l.delivering {
		l.mu.Unlock()
		return
	}
	l.delivering = true
	for len(l.compl) > 0 {
		cs := l.compl
		l.compl = nil
		l.mu.Unlock()
		for _, c := range cs {
			c.done(c.first, c.err)
		}
		l.mu.Lock()
	}
	l.delivering = false
	l.mu.Unlock()
}

// Append stores payloads and returns the offset of the first one once committed.
func (l *Loglet) Append(ctx context.Context, payloads [][]byte) (bifrost.Offset, error) {
	return bifrost.AwaitAppend(ctx, "memory loglet", l.id, l.AppendAsync, payloads)
}

// AppendAsync commits payloads at once, or holds them in flight while Hold is on.
func (l *Loglet) AppendAsync(payloads [][]byte, done func(bifrost.Offset, error)) {
	l.mu.Lock()
	switch {
	case len(payloads) == 0:
		l.queue(done, 0, fmt.Errorf("append to memory loglet %d: empty batch", l.id))
	case l.sealed:
		l.queue(done, 0, fmt.Errorf("append to memory loglet %d: %w", l.id, &bifrost.SealedError{}))
	case l.failErr != nil:
		l.queue(done, 0, fmt.Errorf("append to memory loglet %d: %w", l.id, l.failErr))
	default:
		b := batch{first: l.next, payloads: make([][]byte, len(payloads)), done: done}
		for i, p := range payloads {
			b.payloads[i] = append([]byte(nil), p...)
		}
		l.next += bifrost.Offset(len(payloads))
		if l.hold {
			l.held = append(l.held, b)
		} else {
			l.commit(b, len(b.payloads))
			l.queue(done, b.first, nil)
		}
	}
	l.mu.Unlock()
	l.deliver()
}

// commit stores the first n records of b. Callers hold l.mu.
func (l *Loglet) commit(b batch, n int) {
	l.recs = append(l.recs, b.payloads[:n]...)
	l.wake()
}

// Hold makes later appends get offsets without being committed, until Release or a seal.
func (l *Loglet) Hold() {
	l.mu.Lock()
	l.hold = true
	l.mu.Unlock()
}

// Release commits the held appends in order and stops holding.
func (l *Loglet) Release() {
	l.mu.Lock()
	l.hold = false
	for _, b := range l.held {
		l.commit(b, len(b.payloads))
		l.queue(b.done, b.first, nil)
	}
	l.held = nil
	l.mu.Unlock()
	l.deliver()
}

// InFlight returns how many appends are held.
func (l *Loglet) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// FailAppends makes later appends fail with err (nil restores them).
func (l *Loglet) FailAppends(err error) {
	l.mu.Lock()
	l.failErr = err
	l.mu.Unlock()
}

// Seal seals the loglet at its committed tail: held appends fail with a *SealedError
// carrying their offsets, which lie at or above the sealed tail.
func (l *Loglet) Seal(ctx context.Context) (bifrost.Offset, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("seal memory loglet %d: %w", l.id, err)
	}
	l.mu.Lock()
	tail := l.committed()
	l.sealLocked(tail)
	l.mu.Unlock()
	l.deliver()
	return tail, nil
}

// SealAt seals the loglet at tail, which may lie among the held appends: records below it
// are committed, as a sealer that found them on enough log servers would, yet every held
// append is refused with a *SealedError carrying its offset, as if its acknowledgement was
// lost. Sealing a sealed loglet is refused unless tail is the sealed tail.
func (l *Loglet) SealAt(tail bifrost.Offset) error {
	l.mu.Lock()
	if l.sealed || tail < l.committed() || tail > l.next {
		cur, sealed := l.committed(), l.sealed
		l.mu.Unlock()
		if sealed && tail == cur {
			return nil
		}
		return fmt.Errorf("%w: %d (committed %d, next %d, sealed %v)", ErrBadSealTail, tail, cur, l.next, sealed)
	}
	for _, b := range l.held {
		if b.first < tail {
			l.commit(b, min(len(b.payloads), int(tail-b.first)))
		}
	}
	l.sealLocked(tail)
	l.mu.Unlock()
	l.deliver()
	return nil
}

// sealLocked marks the loglet sealed at tail (== committed) and fails held appends.
// Callers hold l.mu.
func (l *Loglet) sealLocked(tail bifrost.Offset) {
	if l.sealed {
		return
	}
	l.sealed = true
	for _, b := range l.held {
		l.queue(b.done, 0, fmt.Errorf("append to memory loglet %d: %w", l.id, &bifrost.SealedError{First: b.first}))
	}
	l.held = nil
	l.hold = false
	l.next = tail
	l.wake()
}

// FindTail returns the committed tail and whether the loglet is sealed.
func (l *Loglet) FindTail(ctx context.Context) (bifrost.TailState, error) {
	if err := ctx.Err(); err != nil {
		return bifrost.TailState{}, fmt.Errorf("find tail of memory loglet %d: %w", l.id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return bifrost.TailState{Offset: l.committed(), Sealed: l.sealed}, nil
}

// Read returns up to max committed records from from on, blocking until one is committed.
func (l *Loglet) Read(ctx context.Context, from bifrost.Offset, max int) ([]bifrost.Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read memory loglet %d: max %d is not positive", l.id, max)
	}
	if from == 0 {
		from = 1
	}
	for {
		l.mu.Lock()
		switch tail := l.committed(); {
		case from <= l.trim:
			trim := l.trim
			l.mu.Unlock()
			return nil, fmt.Errorf("read memory loglet %d from %d: %w", l.id, from, &bifrost.TrimmedError{TrimPoint: trim})
		case from < tail:
			end := min(tail, from+bifrost.Offset(max))
			out := make([]bifrost.Record, 0, end-from)
			for off := from; off < end; off++ {
				out = append(out, bifrost.Record{Offset: off, Payload: l.recs[off-1]})
			}
			l.mu.Unlock()
			return out, nil
		case l.sealed:
			l.mu.Unlock()
			return nil, fmt.Errorf("read memory loglet %d from %d (sealed at %d): %w", l.id, from, tail, bifrost.ErrSealed)
		}
		if l.waitCh == nil {
			l.waitCh = make(chan struct{})
		}
		wait := l.waitCh
		l.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("read memory loglet %d from %d: %w", l.id, from, ctx.Err())
		}
	}
}

// Trim drops records with offset <= upTo (clipped to the committed tail).
func (l *Loglet) Trim(ctx context.Context, upTo bifrost.Offset) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("trim memory loglet %d: %w", l.id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	upTo = min(upTo, l.committed()-1)
	for off := l.trim + 1; off <= upTo; off++ {
		l.recs[off-1] = nil
	}
	l.trim = max(l.trim, upTo)
	return nil
}

// TrimPoint returns the highest trimmed offset.
func (l *Loglet) TrimPoint(ctx context.Context) (bifrost.Offset, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("trim point of memory loglet %d: %w", l.id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.trim, nil
}
