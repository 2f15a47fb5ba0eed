package localloglet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"gorestate.dev/shared/bifrost"
)

// pos locates one durable record: segment id, offset of its header and payload length.
type pos struct {
	seg uint32
	off uint32
	n   uint32
}

// Loglet is one log of a Store (one per partition). It implements bifrost.Loglet.
type Loglet struct {
	s  *Store
	id uint64

	appendMu sync.Mutex // serializes LSN assignment with enqueueing
	next     bifrost.LSN

	mu      sync.RWMutex
	durable bifrost.LSN // LSN after the last durable record
	trim    bifrost.LSN // records <= trim are unreadable; changed only under Store.trimMu
	// idx holds the positions of LSNs [durable-len(idx), durable), which is always
	// [trim+1, durable).
	idx []pos
	// cache holds the payloads of LSNs [durable-len(cache), durable): the newest ones,
	// so it is a suffix of idx. Payloads alias the frames that were written.
	cache  [][]byte
	waitCh chan struct{} // closed when durable advances; nil if nobody waits

	tail atomic.Uint64 // durable, for a lock-free Tail
}

var _ bifrost.Loglet = (*Loglet)(nil)

func newLoglet(s *Store, id uint64, trim, tail bifrost.LSN) *Loglet {
	l := &Loglet{s: s, id: id, next: tail, durable: tail, trim: trim}
	l.tail.Store(uint64(tail))
	return l
}

// ID returns the loglet's id.
func (l *Loglet) ID() uint64 { return l.id }

// Tail returns the LSN after the last durable record: every LSN below it is durable and
// readable unless trimmed. With appends in flight (enqueued, not yet fsynced) the next
// append gets a higher LSN; see LastAssigned.
func (l *Loglet) Tail() bifrost.LSN { return bifrost.LSN(l.tail.Load()) }

// LastAssigned returns the highest LSN handed out to an append, durable or not (0 if none).
func (l *Loglet) LastAssigned() bifrost.LSN {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.next - 1
}

// TrimPoint returns the highest trimmed LSN (0 if none): reads must start above it.
func (l *Loglet) TrimPoint() bifrost.LSN {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.trim
}

// setDurable advances the durable tail and wakes blocked readers. Callers hold l.mu.
func (l *Loglet) setDurable(tail bifrost.LSN) {
	l.durable = tail
	l.tail.Store(uint64(tail))
	if l.waitCh != nil {
		close(l.waitCh)
		l.waitCh = nil
	}
}

// Append stores payloads durably and returns the LSN of the first one. If ctx ends first
// it returns ctx's error, but the records may still become durable.
func (l *Loglet) Append(ctx context.Context, payloads [][]byte) (bifrost.LSN, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("append to loglet %d: %w", l.id, err)
	}
	type result struct {
		first bifrost.LSN
		err   error
	}
	ch := make(chan result, 1)
	l.AppendAsync(payloads, func(first bifrost.LSN, err error) { ch <- result{first, err} })
	select {
	case r := <-ch:
		return r.first, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("append to loglet %d: %w", l.id, ctx.Err())
	}
}

// AppendAsync assigns LSNs to payloads at once (so calls from one goroutine are stored in
// call order), and calls done from the writer goroutine once they are durable or failed.
// Calls are completed in enqueue order. The payloads are copied; done must not block.
func (l *Loglet) AppendAsync(payloads [][]byte, done func(first bifrost.LSN, err error)) {
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
	first := l.next
	frame := make([]byte, 0, size)
	for i, p := range payloads {
		frame = appendRecord(frame, l.id, first+bifrost.LSN(i), p)
	}
	rejected, callDone := l.s.enqueue(appendReq{l: l, first: first, n: len(payloads), frame: frame, done: done})
	if rejected == nil {
		l.next += bifrost.LSN(len(payloads))
	}
	l.appendMu.Unlock()
	if callDone {
		done(0, fmt.Errorf("append to loglet %d: %w", l.id, rejected))
	}
}

// Read returns up to max durable entries with LSN >= from (from 0 reads from 1), blocking
// until at least one is durable, ctx ends or the store closes or fails. Reading at or below
// the trim point returns bifrost.ErrTrimmed. Returned payloads are shared with the store's
// cache and other readers: they must not be modified.
func (l *Loglet) Read(ctx context.Context, from bifrost.LSN, max int) ([]bifrost.Entry, error) {
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
			return nil, fmt.Errorf("read loglet %d from %d (trimmed to %d): %w", l.id, from, trim, bifrost.ErrTrimmed)
		}
		if from < l.durable {
			ents, disk := l.collect(from, max)
			l.mu.RUnlock()
			if err := l.s.readRecords(l.id, ents[:len(disk)], disk); err != nil {
				return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, err)
			}
			return ents, nil
		}
		l.mu.RUnlock()
		if storeFailed {
			return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, l.s.failure())
		}

		l.mu.Lock()
		if from < l.durable || from <= l.trim {
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

// collect returns entries [from, min(durable, from+max)) with the payloads of cached ones
// filled in, and the positions of the leading uncached ones. Callers hold l.mu (read).
func (l *Loglet) collect(from bifrost.LSN, max int) ([]bifrost.Entry, []pos) {
	end := l.durable
	if bifrost.LSN(max) < end-from {
		end = from + bifrost.LSN(max)
	}
	ents := make([]bifrost.Entry, 0, end-from)
	cacheStart := l.durable - bifrost.LSN(len(l.cache))
	idxStart := l.durable - bifrost.LSN(len(l.idx))
	var disk []pos
	if from < cacheStart {
		disk = make([]pos, 0, min(end, cacheStart)-from)
	}
	for lsn := from; lsn < end; lsn++ {
		if lsn >= cacheStart {
			ents = append(ents, bifrost.Entry{LSN: lsn, Payload: l.cache[lsn-cacheStart]})
		} else {
			ents = append(ents, bifrost.Entry{LSN: lsn})
			disk = append(disk, l.idx[lsn-idxStart])
		}
	}
	return ents, disk
}
