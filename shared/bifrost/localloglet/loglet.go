package localloglet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/bifrost"
)

// pos locates one durable record: segment id, offset of its header and payload length.
type pos struct {
	seg uint32
	off uint32
	n   uint32
}

// Loglet is one loglet of a Store (one per log segment). It implements bifrost.Loglet.
type Loglet struct {
	s  *Store
	id uint64

	appendMu sync.Mutex // serializes offset assignment with enqueueing
	next     bifrost.Offset
	// sealing is set by the first Seal: from then on appends are refused, so next is the
	// sealed tail. The seal is published (sealed, below) only once it is persisted.
	sealing bool

	mu      sync.RWMutex
	durable bifrost.Offset // offset after the last durable record
	trim    bifrost.Offset // records <= trim are unreadable; changed only under Store.trimMu
	// sealed is set once the seal is persisted; durable is then the sealed tail and never
	// moves again. Changed only under Store.sealMu.
	sealed bool
	// idx holds the positions of offsets [durable-len(idx), durable), which is always
	// [trim+1, durable).
	idx []pos
	// cache holds the payloads of offsets [durable-len(cache), durable): the newest ones,
	// so it is a suffix of idx. Payloads alias the frames that were written.
	cache  [][]byte
	waitCh chan struct{} // closed when durable advances or the loglet is sealed; nil if nobody waits

	tail atomic.Uint64 // durable, for a lock-free Tail
}

var _ bifrost.Loglet = (*Loglet)(nil)

func newLoglet(s *Store, id uint64, trim, tail bifrost.Offset) *Loglet {
	l := &Loglet{s: s, id: id, next: tail, durable: tail, trim: trim}
	l.tail.Store(uint64(tail))
	return l
}

// ID returns the loglet's id.
func (l *Loglet) ID() uint64 { return l.id }

// Tail returns the offset after the last durable record: every offset below it is durable
// and readable unless trimmed. With appends in flight (enqueued, not yet fsynced) the next
// append gets a higher offset; see LastAssigned.
func (l *Loglet) Tail() bifrost.Offset { return bifrost.Offset(l.tail.Load()) }

// LastAssigned returns the highest offset handed out to an append, durable or not (0 if
// none).
func (l *Loglet) LastAssigned() bifrost.Offset {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.next - 1
}

// TrimPoint returns the highest trimmed offset (0 if none): reads must start above it.
func (l *Loglet) TrimPoint(ctx context.Context) (bifrost.Offset, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("trim point of loglet %d: %w", l.id, err)
	}
	return l.trimPoint(), nil
}

func (l *Loglet) trimPoint() bifrost.Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.trim
}

// FindTail returns the durable tail and whether the loglet is sealed. Local state is
// authoritative, so it never blocks.
func (l *Loglet) FindTail(ctx context.Context) (bifrost.TailState, error) {
	if err := ctx.Err(); err != nil {
		return bifrost.TailState{}, fmt.Errorf("find tail of loglet %d: %w", l.id, err)
	}
	if l.s.isClosed() {
		return bifrost.TailState{}, fmt.Errorf("find tail of loglet %d: %w", l.id, bifrost.ErrClosed)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return bifrost.TailState{Offset: l.durable, Sealed: l.sealed}, nil
}

// wake wakes blocked readers. Callers hold l.mu.
func (l *Loglet) wake() {
	if l.waitCh != nil {
		close(l.waitCh)
		l.waitCh = nil
	}
}

// setDurable advances the durable tail and wakes blocked readers. Callers hold l.mu.
func (l *Loglet) setDurable(tail bifrost.Offset) {
	l.durable = tail
	l.tail.Store(uint64(tail))
	l.wake()
}

// Append stores payloads durably and returns the offset of the first one. If ctx ends
// first it returns ctx's error, but the records may still become durable.
func (l *Loglet) Append(ctx context.Context, payloads [][]byte) (bifrost.Offset, error) {
	return bifrost.AwaitAppend(ctx, "loglet", l.id, l.AppendAsync, payloads)
}

// AppendAsync assigns offsets to payloads at once (so calls from one goroutine are stored
// in call order), and calls done from the writer goroutine once they are durable or
// failed. Calls are completed in enqueue order. The payloads are copied; done must not
// block. A sealed loglet refuses with a *bifrost.SealedError without an offset.
func (l *Loglet) AppendAsync(payloads [][]byte, done func(first bifrost.Offset, err error)) {
	size := 0
	var invalid error
	for _, p := range payloads {
		if len(p) > MaxPayloadSize {
			invalid = fmt.Errorf("append to loglet %d: payload of %d bytes: %w", l.id, len(p), ErrTooLarge)
			break
		}
		size += recordSize(len(p))
	}
	switch {
	case invalid != nil:
	case len(payloads) == 0:
		invalid = fmt.Errorf("append to loglet %d: %w", l.id, ErrEmptyBatch)
	case size > MaxBatchSize:
		invalid = fmt.Errorf("append to loglet %d: batch of %d bytes: %w", l.id, size, ErrTooLarge)
	}
	if invalid != nil {
		l.s.reject(done, invalid)
		return
	}

	l.appendMu.Lock()
	if l.sealing {
		l.appendMu.Unlock()
		l.s.reject(done, fmt.Errorf("append to loglet %d: %w", l.id, &bifrost.SealedError{}))
		return
	}
	first := l.next
	frame := make([]byte, 0, size)
	for i, p := range payloads {
		frame = appendRecord(frame, l.id, first+bifrost.Offset(i), p)
	}
	rejected, callDone := l.s.enqueue(appendReq{l: l, first: first, n: len(payloads), frame: frame, done: done, at: time.Now()})
	if rejected == nil {
		l.next += bifrost.Offset(len(payloads))
	}
	l.appendMu.Unlock()
	if callDone {
		done(0, fmt.Errorf("append to loglet %d: %w", l.id, rejected))
	}
}

// Seal stops the loglet from taking appends and returns its sealed tail once the seal is
// durable. Appends enqueued before it are drained first: they become durable below the
// sealed tail, or fail with the store. Blocked readers wake up and get bifrost.ErrSealed.
func (l *Loglet) Seal(ctx context.Context) (bifrost.Offset, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("seal loglet %d: %w", l.id, err)
	}
	l.mu.RLock()
	sealed, tail := l.sealed, l.durable
	l.mu.RUnlock()
	if sealed {
		return tail, nil
	}

	// Refuse every later append, then queue a barrier behind the appends already
	// enqueued: the writer completes it only once all of them are durable (or failed).
	s := l.s
	l.appendMu.Lock()
	l.sealing = true
	tail = l.next
	drained := make(chan error, 1)
	rejected, callDone := s.enqueue(appendReq{l: l, done: func(_ bifrost.Offset, err error) { drained <- err }})
	l.appendMu.Unlock()
	if callDone {
		return 0, fmt.Errorf("seal loglet %d: %w", l.id, rejected)
	}
	select {
	case err := <-drained:
		if err != nil {
			return 0, fmt.Errorf("seal loglet %d: drain appends: %w", l.id, err)
		}
	case <-ctx.Done():
		// Appends stay refused; a later Seal finishes the job.
		return 0, fmt.Errorf("seal loglet %d: %w", l.id, ctx.Err())
	}
	if err := s.persistSeal(l, tail); err != nil {
		return 0, fmt.Errorf("seal loglet %d at %d: %w", l.id, tail, err)
	}
	return tail, nil
}

// Read returns up to max durable records with offset >= from (from 0 reads from 1),
// blocking until at least one is durable, ctx ends or the store closes or fails. Reading at
// or below the trim point returns a *bifrost.TrimmedError; reading at or past the tail of
// a sealed loglet returns bifrost.ErrSealed. Returned payloads are shared with the store's
// cache and other readers: they must not be modified.
func (l *Loglet) Read(ctx context.Context, from bifrost.Offset, max int) ([]bifrost.Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read loglet %d: max %d is not positive", l.id, max)
	}
	if from == 0 {
		from = 1
	}
	storeFailed := false
	for {
		if l.s.isClosed() {
			return nil, fmt.Errorf("read loglet %d: %w", l.id, bifrost.ErrClosed)
		}
		l.mu.RLock()
		if from <= l.trim {
			trim := l.trim
			l.mu.RUnlock()
			return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, &bifrost.TrimmedError{TrimPoint: trim})
		}
		if from < l.durable {
			ents, disk := l.collect(from, max)
			l.mu.RUnlock()
			err := l.s.readRecords(l.id, ents[:len(disk)], disk)
			if errors.Is(err, bifrost.ErrTrimmed) {
				continue // a trim deleted the segment meanwhile: report the new trim point
			}
			if err != nil {
				return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, err)
			}
			return ents, nil
		}
		if l.sealed {
			tail := l.durable
			l.mu.RUnlock()
			return nil, fmt.Errorf("read loglet %d from %d (sealed at %d): %w", l.id, from, tail, bifrost.ErrSealed)
		}
		l.mu.RUnlock()
		if storeFailed {
			return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, l.s.failure())
		}

		l.mu.Lock()
		if from < l.durable || from <= l.trim || l.sealed {
			l.mu.Unlock()
			continue
		}
		if l.waitCh == nil {
			l.waitCh = make(chan struct{})
		}
		wait := l.waitCh
		l.mu.Unlock()
		select {
		case <-wait:
		case <-l.s.closed:
		case <-l.s.failed:
			// Records published before the failure are still readable: look once more.
			storeFailed = true
		case <-ctx.Done():
			return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, ctx.Err())
		}
	}
}

// collect returns records [from, min(durable, from+max)) with the payloads of cached ones
// filled in, and the positions of the leading uncached ones. Callers hold l.mu (read).
func (l *Loglet) collect(from bifrost.Offset, max int) ([]bifrost.Record, []pos) {
	end := l.durable
	if bifrost.Offset(max) < end-from {
		end = from + bifrost.Offset(max)
	}
	ents := make([]bifrost.Record, 0, end-from)
	cacheStart := l.durable - bifrost.Offset(len(l.cache))
	idxStart := l.durable - bifrost.Offset(len(l.idx))
	var disk []pos
	if from < cacheStart {
		disk = make([]pos, 0, min(end, cacheStart)-from)
	}
	for off := from; off < end; off++ {
		if off >= cacheStart {
			ents = append(ents, bifrost.Record{Offset: off, Payload: l.cache[off-cacheStart]})
		} else {
			ents = append(ents, bifrost.Record{Offset: off})
			disk = append(disk, l.idx[off-idxStart])
		}
	}
	return ents, disk
}
