package replicated

import (
	"context"
	"fmt"
	"sync"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// remoteAppender forwards the appends of a loglet whose sequencer runs on another node
// (BIFROST.md §3 "Remote appends"). One goroutine sends one Append at a time, merging every
// batch queued meanwhile: over a transport that may reorder concurrent requests this is
// what keeps one goroutine's batches in offset order, and merging keeps throughput.
// Failures never make this node take the sequencer over: an unreachable sequencer or one
// that no longer runs the loglet fails the appends with ErrReconfigurationNeeded, and the
// virtual log reconfigures the chain or tries the loglet again.
//
// Such a failure fails every batch queued behind the failed Append too, and every later
// one until ResumeAppends: the virtual log re-appends a refused batch, so a batch behind
// it that went on and committed would end up before it in the log (and a partition
// processor that deduplicates by sequence number would then drop the re-appended one).
type remoteAppender struct {
	l *Loglet

	mu          sync.Mutex
	queue       []*remoteBatch // waiting or in flight, in order
	records     int            // records in queue
	bytes       int64
	changed     chan struct{} // closed and replaced when room frees up or on close
	completions []completion  // decided, not yet handed to done
	done        *completer
	closed      bool
	// broken is set when an Append failed for want of reconfiguration; it refuses every
	// batch until ResumeAppends.
	broken error

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type remoteBatch struct {
	payloads [][]byte
	bytes    int64
	done     func(bifrost.Offset, error)
}

func newRemoteAppender(l *Loglet) *remoteAppender {
	r := &remoteAppender{l: l, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
	r.done = newCompleter(func(err error) error { return fmt.Errorf("append to loglet %d: %w", l.id, err) })
	r.ctx, r.cancel = context.WithCancel(l.ctx)
	return r
}

func (r *remoteAppender) start() {
	r.wg.Add(1)
	go r.run()
}

func (r *remoteAppender) close() {
	r.mu.Lock()
	r.closed = true
	r.failLocked(len(r.queue), func(int) error { return bifrost.ErrClosed })
	r.handoffLocked()
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.flush()
}

// refusal is the error an append gets before it is queued, nil if it may be queued.
func (r *remoteAppender) refusal() error {
	switch {
	case r.closed:
		return bifrost.ErrClosed
	case r.broken != nil:
		return r.broken
	case r.l.watch.current().Sealed:
		return &bifrost.SealedError{}
	case r.l.sequencerGone():
		return fmt.Errorf("sequencer %s is gone: %w", r.l.params.Sequencer, bifrost.ErrReconfigurationNeeded)
	}
	return nil
}

func (r *remoteAppender) appendAsync(ctx context.Context, payloads [][]byte, done func(bifrost.Offset, error)) {
	var owned [][]byte
	var size int64
	if len(payloads) > 0 {
		owned, size = copyPayloads(payloads)
	}
	o := &r.l.p.opts
	r.mu.Lock()
	for {
		err := r.refusal()
		if err == nil && len(payloads) == 0 {
			err = ErrEmptyBatch
		}
		if err == nil && r.records > 0 && (r.records+len(owned) > o.MaxInflightRecords || r.bytes+size > o.MaxInflightBytes) {
			ch := r.changed
			r.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			}
			r.mu.Lock()
			if err == nil {
				continue
			}
		}
		if err != nil {
			r.completions = append(r.completions, completion{done: done, err: err})
			r.handoffLocked()
			r.mu.Unlock()
			r.flush()
			return
		}
		break
	}
	r.queue = append(r.queue, &remoteBatch{payloads: owned, bytes: size, done: done})
	r.records += len(owned)
	r.bytes += size
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// failLocked fails the first n queued batches with errFor(i).
func (r *remoteAppender) failLocked(n int, errFor func(i int) error) {
	for i, b := range r.queue[:n] {
		r.completions = append(r.completions, completion{done: b.done, err: errFor(i)})
	}
	r.dequeueLocked(n)
}

func (r *remoteAppender) dequeueLocked(n int) {
	for _, b := range r.queue[:n] {
		r.records -= len(b.payloads)
		r.bytes -= b.bytes
	}
	clear(r.queue[:n])
	r.queue = r.queue[n:]
	close(r.changed)
	r.changed = make(chan struct{})
}

// handoffLocked passes the decided completions to the completer, in order.
func (r *remoteAppender) handoffLocked() {
	r.done.push(r.completions)
	r.completions = nil
}

// flush delivers the queued completions on this goroutine; not on the one that sends
// (run). Called without r.mu.
func (r *remoteAppender) flush() { r.done.deliver() }

func (r *remoteAppender) run() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		n, payloads := r.nextLocked()
		if n > 0 {
			if err := r.refusal(); err != nil {
				r.failLocked(len(r.queue), func(int) error { return err })
				n = 0
			}
		}
		// A sealed loglet refuses every new append before queueing it, so once the queue
		// is empty there is nothing left to send: end, and let refusals run on their
		// callers' goroutines.
		ended := len(r.queue) == 0 && r.l.watch.current().Sealed
		r.handoffLocked()
		r.mu.Unlock()
		r.done.deliverAsync(&r.wg) // this goroutine sends: a callback must not block it
		if ended {
			return
		}
		if n == 0 {
			_, moved := r.l.watch.get()
			select {
			case <-r.ctx.Done():
				return
			case <-r.wake:
			case <-moved: // maybe sealed
			}
			continue
		}
		r.send(n, payloads)
	}
}

// nextLocked picks the queued batches the next Append carries: at least one, then as many
// as fit the store bounds and the sequencer's in-flight window (a merged batch larger
// than the window would wait for the sequencer to drain).
func (r *remoteAppender) nextLocked() (int, [][]byte) {
	o := &r.l.p.opts
	maxRecords := min(o.MaxStoreRecords, o.MaxInflightRecords)
	var payloads [][]byte
	var size int64
	n := 0
	for _, b := range r.queue {
		if n > 0 && (len(payloads)+len(b.payloads) > maxRecords || size+b.bytes > o.MaxStoreBytes) {
			break
		}
		payloads = append(payloads, b.payloads...)
		size += b.bytes
		n++
	}
	return n, payloads
}

// send forwards the first n queued batches as one Append and completes them.
func (r *remoteAppender) send(n int, payloads [][]byte) {
	l := r.l
	seq := l.params.Sequencer
	var resp *wire.Appended
	api, err := l.p.net.Sequencer(seq.Name)
	if err == nil {
		ctx, cancel := context.WithTimeout(r.ctx, l.p.opts.RemoteAppendTimeout)
		resp, err = api.Append(ctx, &wire.Append{
			LogID:        uint32(l.id >> 32),
			SegmentIndex: l.seg.Index,
			LogletID:     l.id,
			Payloads:     payloads,
		})
		cancel()
	}
	r.mu.Lock()
	defer func() {
		r.handoffLocked()
		r.mu.Unlock()
		r.done.deliverAsync(&r.wg)
	}()
	if r.closed {
		return // close() failed the queue
	}
	batches := r.queue[:n]
	if err != nil {
		// The append may have been committed anyway; the caller cannot tell, as with any
		// failed append.
		l.log.Debug("remote append failed", "sequencer", seq.String(), "error", err)
		r.breakLocked(fmt.Errorf("sequencer %s unreachable (%v): %w", seq, err, bifrost.ErrReconfigurationNeeded))
		return
	}
	firsts := make([]bifrost.Offset, n)
	if resp.FirstOffset != 0 {
		o := resp.FirstOffset
		for i, b := range batches {
			firsts[i] = o
			o += bifrost.Offset(len(b.payloads))
		}
	}
	switch resp.Status {
	case wire.StatusOK:
		l.watch.raise(max(resp.KnownGlobalTail, resp.FirstOffset+bifrost.Offset(len(payloads))))
		for i, b := range batches {
			r.completions = append(r.completions, completion{done: b.done, first: firsts[i]})
		}
		r.dequeueLocked(n)
	case wire.StatusSealed:
		if resp.Sealed {
			l.watch.seal(resp.KnownGlobalTail)
		}
		r.failLocked(n, func(i int) error { return &bifrost.SealedError{First: firsts[i]} })
	case wire.StatusMalformed:
		r.failLocked(n, func(int) error { return fmt.Errorf("sequencer %s: malformed append", seq) })
	default:
		l.log.Debug("remote append refused", "sequencer", seq.String(), "status", resp.Status)
		r.breakLocked(fmt.Errorf("sequencer %s answered %s: %w", seq, resp.Status, bifrost.ErrReconfigurationNeeded))
	}
}

// breakLocked fails every queued batch with err, and every later one until ResumeAppends.
func (r *remoteAppender) breakLocked(err error) {
	r.broken = err
	r.failLocked(len(r.queue), func(int) error { return err })
}

// resume lets appends through again after a failure (bifrost.Resumer).
func (r *remoteAppender) resume() {
	r.mu.Lock()
	r.broken = nil
	r.mu.Unlock()
}
