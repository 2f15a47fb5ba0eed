package bifrost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorestate.dev/shared/metadata"
)

// appender hands a virtual log's batches to the loglet of its tail segment, in enqueue
// order, and re-drives them when that segment refuses them (sealed, or in need of
// reconfiguration).
//
// While a target segment is known and healthy, AppendAsync submits straight to its loglet.
// The first refusal clears the target: later batches are held, and a driver goroutine
// (owned by the Bifrost) gets the chain past the refusing segment (writer logs seal and
// extend it, plain logs wait for someone else to), waits for every batch still in flight
// on old segments to resolve, then settles each refused batch against the sealed tail
// (committed after all, or re-appended whole, or re-appended from the sealed tail on)
// and submits, in order, everything that must go to the new tail segment.
type appender struct {
	v *virtualLog

	// submitMu serializes submissions to loglets, so that they happen in enqueue order.
	// It is never held while waiting for a batch, only while handing batches over.
	submitMu sync.Mutex

	mu        sync.Mutex // guards the fields below; never held while calling out
	queue     []*pending // undelivered batches, in enqueue order
	target    *target    // where new batches go; nil while none is usable
	refusedBy *metadata.Segment
	driving   bool          // a driver goroutine runs
	progress  chan struct{} // closed and replaced whenever a batch resolves
	// delivering is set while one goroutine runs done callbacks, so they run in order.
	delivering bool
}

type target struct {
	seg    metadata.Segment
	loglet Loglet
}

type pendingState int

const (
	held     pendingState = iota // not handed to any loglet yet
	inFlight                     // handed to the loglet of seg
	refused                      // seg refused it (sealed or needs reconfiguration)
	resolved                     // lsn or err is final; done may run
)

// pending is one batch of a virtual log.
type pending struct {
	payloads [][]byte
	done     func(LSN, error)
	state    pendingState
	seg      metadata.Segment // where it went (inFlight, refused)
	first    Offset           // the offset seg had assigned to it when refused, if any
	sealed   bool             // refused because seg is sealed (else: needs reconfiguration)
	// lead is the LSN of the batch's first record when a prefix of it was committed on an
	// earlier segment and only the rest (payloads) is re-appended.
	lead LSN
	lsn  LSN
	err  error
}

// enqueue queues a batch and hands it to the tail segment's loglet if one is known.
func (a *appender) enqueue(payloads [][]byte, done func(LSN, error)) {
	p := &pending{payloads: payloads, done: done}
	a.submitMu.Lock()
	defer a.submitMu.Unlock()
	a.mu.Lock()
	a.queue = append(a.queue, p)
	t := a.target
	if t != nil {
		p.state, p.seg = inFlight, t.seg
	} else {
		a.driveLocked()
	}
	a.mu.Unlock()
	if t != nil {
		a.submit(t, p)
	} else {
		a.deliver() // failed at once if the Bifrost is closed
	}
}

// submit hands p to t's loglet. Callers hold submitMu.
func (a *appender) submit(t *target, p *pending) {
	t.loglet.AppendAsync(p.payloads, func(first Offset, err error) { a.complete(p, t.seg, first, err) })
}

// complete records a loglet's answer for p.
func (a *appender) complete(p *pending, seg metadata.Segment, first Offset, err error) {
	a.mu.Lock()
	switch {
	case err == nil:
		p.state, p.lsn = resolved, toLSN(seg, first)
		a.v.noteTail(p.lsn + LSN(len(p.payloads)))
		if p.lead != 0 {
			p.lsn = p.lead
		}
	case errors.Is(err, ErrSealed) || errors.Is(err, ErrReconfigurationNeeded):
		p.state, p.seg, p.first, p.sealed = refused, seg, 0, errors.Is(err, ErrSealed)
		var se *SealedError
		if errors.As(err, &se) {
			p.first = se.First
		}
		a.refusedLocked(seg)
	default:
		p.state, p.err = resolved, fmt.Errorf("append to log %d: %w", a.v.id, a.v.b.errClosedOr(err))
	}
	a.signalLocked()
	a.mu.Unlock()
	a.deliver()
}

// refused reports that seg refused work (an append, or a read at its sealed tail).
func (a *appender) refused(seg metadata.Segment) {
	a.mu.Lock()
	a.refusedLocked(seg)
	a.mu.Unlock()
	a.deliver()
}

// refusedLocked stops submissions to seg and gets a driver to move past it, unless one is
// already moving past it. Callers hold a.mu.
func (a *appender) refusedLocked(seg metadata.Segment) {
	// A target at or before seg in the chain is unusable: the chain only grows past
	// sealed segments.
	if a.target != nil && a.target.seg.Index <= seg.Index {
		a.target = nil
	}
	if a.target == nil && (a.refusedBy == nil || a.refusedBy.Index < seg.Index) {
		a.refusedBy = &seg
	}
	if a.target == nil {
		a.driveLocked()
	}
}

// kick starts the driver if the appender has no target (a log without segments).
func (a *appender) kick() {
	a.mu.Lock()
	if a.target == nil {
		a.driveLocked()
	}
	a.mu.Unlock()
	a.deliver()
}

func (a *appender) signalLocked() {
	if a.progress != nil {
		close(a.progress)
		a.progress = nil
	}
}

// driveLocked starts the driver unless it runs. Once the Bifrost is closed, it fails every
// batch not handed to a loglet instead. Callers hold a.mu.
func (a *appender) driveLocked() {
	if a.driving {
		return
	}
	a.driving = true
	if !a.v.b.spawn(a.drive) {
		a.driving = false
		a.failLocked(ErrClosed)
	}
}

// failLocked resolves every held and refused batch with err. Callers hold a.mu and call
// deliver after unlocking.
func (a *appender) failLocked(err error) {
	for _, p := range a.queue {
		if p.state == held || p.state == refused {
			p.state, p.err = resolved, fmt.Errorf("append to log %d: %w", a.v.id, err)
		}
	}
	a.signalLocked()
}

// deliver runs the done callbacks of the resolved batches at the head of the queue, unless
// another goroutine is doing so.
func (a *appender) deliver() {
	a.mu.Lock()
	if a.delivering {
		a.mu.Unlock()
		return
	}
	a.delivering = true
	for {
		n := 0
		for n < len(a.queue) && a.queue[n].state == resolved {
			n++
		}
		if n == 0 {
			break
		}
		ready := a.queue[:n:n]
		a.queue = a.queue[n:]
		a.mu.Unlock()
		for _, p := range ready {
			if p.done != nil {
				p.done(p.lsn, p.err)
			}
		}
		a.mu.Lock()
	}
	a.delivering = false
	a.mu.Unlock()
}

// drive runs until the appender has a healthy target again (or the Bifrost closes).
func (a *appender) drive() {
	ctx := a.v.b.ctx
	for attempt := 1; ; attempt++ {
		err := a.redrive(ctx)
		a.mu.Lock()
		if err == nil && a.target != nil {
			a.driving = false
			a.mu.Unlock()
			a.deliver()
			return
		}
		if ctx.Err() != nil {
			a.driving = false
			a.failLocked(ErrClosed)
			a.mu.Unlock()
			a.deliver()
			return
		}
		a.mu.Unlock()
		if err == nil {
			attempt = 0 // the new target refused at once: start over without waiting
			continue
		}
		a.v.b.log.Warn("re-drive appends", "log", a.v.id, "attempt", attempt, "error", err)
		if a.v.b.backoff(ctx, attempt) != nil {
			continue // closed: the next round fails the batches
		}
	}
}

// redrive gets the chain past the refusing segment, lets the old segments' batches
// resolve, and submits what must go to the new tail.
func (a *appender) redrive(ctx context.Context) error {
	b := a.v.b
	a.mu.Lock()
	var bad *metadata.Segment
	if a.refusedBy != nil {
		s := *a.refusedBy
		bad = &s
	}
	a.mu.Unlock()

	cs, retry, err := a.moveOn(ctx, bad)
	if err != nil {
		return err
	}
	chain := cs.chain(a.v.id)
	tail := chain[len(chain)-1]
	loglet, err := b.open(ctx, tail)
	if err != nil {
		return fmt.Errorf("open tail segment %d: %w", tail.Index, err)
	}

	// Batches in flight on older segments resolve once those are sealed, which they are
	// (a chain is only extended past a sealed segment); their order is needed to settle
	// the refused ones. When the refusing segment is tried again, the batches in flight
	// on it resolve too (it refuses every batch after a refused one), and none may commit
	// after a refused batch goes back.
	for {
		a.mu.Lock()
		busy := false
		for _, p := range a.queue {
			if p.state == inFlight && (retry || p.seg.LogletID != tail.LogletID) {
				busy = true
				break
			}
		}
		if !busy {
			a.mu.Unlock()
			break
		}
		if a.progress == nil {
			a.progress = make(chan struct{})
		}
		ch := a.progress
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	a.submitMu.Lock()
	defer a.submitMu.Unlock()
	// The newest chain settles the refused batches: a segment's sealed tail is where its
	// successor begins.
	if newer := b.chains.Load(); newer != nil && newer.version > cs.version {
		chain = newer.chain(a.v.id)
		if t := chain[len(chain)-1]; t.LogletID != tail.LogletID || t.Provider != tail.Provider {
			return nil // moved on again meanwhile: the driver starts over
		}
	}
	t := &target{seg: tail, loglet: loglet}
	a.mu.Lock()
	if a.refusedBy != nil && a.refusedBy.Index >= tail.Index && !(retry && a.retryableLocked(tail)) {
		a.mu.Unlock()
		return nil // the new tail refused already (a read found it sealed): start over
	}
	var submit []*pending
	for _, p := range a.queue {
		switch p.state {
		case refused:
			if !a.settleLocked(p, chain) {
				continue
			}
		case held:
		default:
			continue
		}
		p.state, p.seg = inFlight, tail
		submit = append(submit, p)
	}
	a.target, a.refusedBy = t, nil
	a.signalLocked()
	a.mu.Unlock()
	if r, ok := loglet.(Resumer); ok && retry {
		r.ResumeAppends()
	}
	for _, p := range submit {
		a.submit(t, p)
	}
	a.deliver()
	return nil
}

// settleLocked decides a refused batch against the end of the segment that refused it:
// committed after all (resolved here), or to be re-appended, whole or from the sealed
// tail on. It reports whether the batch must be re-appended. Callers hold a.mu.
func (a *appender) settleLocked(p *pending, chain []metadata.Segment) bool {
	end := LSN(p.seg.BaseLSN) // a replaced (empty) segment ends where it began
	for i, s := range chain {
		if s.LogletID == p.seg.LogletID && s.Provider == p.seg.Provider && i+1 < len(chain) {
			end = LSN(chain[i+1].BaseLSN)
		}
	}
	if p.first == 0 {
		return true
	}
	start := toLSN(p.seg, p.first)
	n := LSN(len(p.payloads))
	switch {
	case start+n <= end: // committed after all: a re-append would duplicate it
		p.state, p.lsn = resolved, start
		if p.lead != 0 {
			p.lsn = p.lead
		}
		a.v.noteTail(start + n)
		return false
	case start < end:
		// Straddles the sealed tail: keep the committed prefix, re-append the rest. The
		// batch's LSNs are then not contiguous; done reports the first one.
		if p.lead == 0 {
			p.lead = start
		}
		p.payloads = p.payloads[end-start:]
	}
	return true
}

// retryableLocked reports whether the batches that tail refused may be handed to it again:
// it refused them all for want of reconfiguration, none because it is sealed (a sealed
// segment never takes appends again). Callers hold a.mu.
func (a *appender) retryableLocked(tail metadata.Segment) bool {
	if a.refusedBy == nil || a.refusedBy.LogletID != tail.LogletID || a.refusedBy.Provider != tail.Provider {
		return false
	}
	for _, p := range a.queue {
		if p.state == refused && (p.sealed || p.seg.LogletID != tail.LogletID || p.seg.Provider != tail.Provider) {
			return false
		}
	}
	return true
}

// moveOn returns a chain whose tail segment is usable: past bad if set, and with at least
// one segment. A writer log seals and extends the chain itself (Options.Reconfigure);
// otherwise it waits for the chain to change. A plain log waits RefusedRetryInterval at
// most: then it returns the unchanged chain with retry set, and the segment that refused
// is tried again unless it refused because it is sealed. Without that, an append refused
// by a sequencer that was unreachable for a moment, or not yet running on its node, would
// wait forever for a reconfiguration that nobody has a reason to make.
func (a *appender) moveOn(ctx context.Context, bad *metadata.Segment) (*chainState, bool, error) {
	b, id := a.v.b, a.v.id
	var deadline time.Time
	for {
		cs, err := b.current(ctx)
		if err != nil {
			return nil, false, err
		}
		chain := cs.chain(id)
		if len(chain) > 0 && (bad == nil || chain[len(chain)-1].Index > bad.Index) {
			return cs, false, nil
		}
		if !a.v.writer || b.opts.Reconfigure == nil {
			if deadline.IsZero() {
				deadline = time.Now().Add(b.opts.RefusedRetryInterval)
			}
			wctx, cancel := context.WithDeadline(ctx, deadline)
			_, err := b.waitNewer(wctx, cs.version)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
				if len(chain) > 0 {
					return cs, true, nil
				}
				deadline = time.Time{}
			case err != nil:
				return nil, false, err
			}
			continue
		}
		expected := NoSegment
		if len(chain) > 0 {
			expected = chain[len(chain)-1].Index
		}
		actx, cancel := context.WithTimeout(ctx, b.opts.ReconfigureTimeout)
		_, err = b.SealAndExtend(actx, id, expected, func(sealed LSN, prev metadata.Segment) (metadata.Segment, error) {
			return b.opts.Reconfigure(actx, id, prev, sealed)
		})
		cancel()
		if err != nil && !errors.Is(err, ErrSegmentMismatch) {
			return nil, false, fmt.Errorf("seal and extend after segment %s: %w", indexName(expected), err)
		}
		// Won or lost, the cache normally holds a chain past expected now; if the store
		// answered with an older one, wait for the watch rather than spin.
		if errors.Is(err, ErrSegmentMismatch) && b.chains.Load().version == cs.version {
			if _, err := b.waitNewer(ctx, cs.version); err != nil {
				return nil, false, err
			}
		}
	}
}
