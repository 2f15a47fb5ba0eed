package replicated

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// Read returns up to max committed records with offset >= from, in order and without
// gaps (BIFROST.md §5). It never returns an offset at or above the known global tail: it
// waits for the tail to pass from (a seal wakes it too), and at or past a sealed tail it
// returns bifrost.ErrSealed. Reading at or below the trim point returns a
// *bifrost.TrimmedError.
//
// Records come from the sequencer's record cache on its node, else from one log server at
// a time: the reader moves to the next server when the current one lacks the next offset
// (a hole left by a server that skipped to the tail) or fails, and pauses briefly once
// every server was tried. On a non-sequencer node it learns the global tail from the
// servers' responses and waits for it with WaitForTail long polls.
func (l *Loglet) Read(ctx context.Context, from bifrost.Offset, max int) ([]bifrost.Record, error) {
	from = bifrost.Offset(maxOf(uint64(from), 1))
	if max <= 0 {
		max = 1
	}
	for exhausted := 0; ; {
		if err := l.ctx.Err(); err != nil {
			return nil, fmt.Errorf("read loglet %d: %w", l.id, bifrost.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read loglet %d: %w", l.id, err)
		}
		if tp := l.knownTrimPoint(); from <= tp {
			return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, &bifrost.TrimmedError{TrimPoint: tp})
		}
		tail, changed := l.watch.get()
		if from < tail.Offset {
			end := tail.Offset
			if uint64(max) < uint64(tail.Offset-from) {
				end = from + bifrost.Offset(max)
			}
			if recs := l.cachedRecords(from, end); len(recs) > 0 {
				return recs, nil
			}
			recs, err := l.readFromServers(ctx, from, end, tail.Offset)
			if err != nil {
				return nil, fmt.Errorf("read loglet %d from %d: %w", l.id, from, err)
			}
			if len(recs) > 0 {
				return recs, nil
			}
			// Every server lacked the record or failed: pause, then start over.
			exhausted++
			if err := l.sleep(ctx, l.p.opts.ReadRetryDelay*time.Duration(min(exhausted, 10))); err != nil {
				return nil, fmt.Errorf("read loglet %d: %w", l.id, err)
			}
			continue
		}
		if tail.Sealed {
			return nil, fmt.Errorf("read loglet %d at %d (sealed tail %d): %w", l.id, from, tail.Offset, bifrost.ErrSealed)
		}
		if err := l.waitTail(ctx, from, changed); err != nil {
			return nil, fmt.Errorf("read loglet %d: %w", l.id, err)
		}
	}
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// cachedRecords returns committed records [from, end) held in memory on this node.
func (l *Loglet) cachedRecords(from, end bifrost.Offset) []bifrost.Record {
	if l.seq != nil {
		if recs := l.seq.cached(from, end); len(recs) > 0 {
			return recs
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := l.readAhead.slice(from, end)
	out := make([]bifrost.Record, len(ps))
	for i, p := range ps {
		out[i] = bifrost.Record{Offset: from + bifrost.Offset(i), Payload: p}
	}
	return out
}

func (l *Loglet) knownTrimPoint() bifrost.Offset {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.trimPoint
}

// readServer returns the nodeset index of the server readers use now.
func (l *Loglet) readServer() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readOrder[l.readIdx]
}

// nextReadServer moves readers off server i (unless another reader did already).
func (l *Loglet) nextReadServer(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readOrder[l.readIdx] == i {
		l.readIdx = (l.readIdx + 1) % len(l.readOrder)
	}
}

// readFromServers reads [from, end) (end <= tail) trying each server once, starting with
// the current one. It returns no records and no error when none had from.
func (l *Loglet) readFromServers(ctx context.Context, from, end, tail bifrost.Offset) ([]bifrost.Record, error) {
	want := int(end - from)
	// Read ahead past what was asked, never past the known global tail.
	last := min(tail-1, from+bifrost.Offset(want+l.p.opts.ReadAheadRecords)-1)
	for tries := 0; tries < l.q.n; tries++ {
		i := l.readServer()
		node := l.params.Nodeset[i]
		var resp *wire.Records
		err := l.callServer(ctx, node, l.p.opts.RPCTimeout, func(ctx context.Context, srv wire.LogServer) error {
			var err error
			resp, err = srv.GetRecords(ctx, &wire.GetRecords{
				Header: wire.Header{LogletID: l.id, KnownGlobalTail: tail},
				From:   from, To: last, LimitBytes: l.p.opts.ReadBytes,
			})
			return err
		})
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil || resp.Status != wire.StatusOK && resp.Status != wire.StatusSealed {
			l.nextReadServer(i)
			continue
		}
		l.learnGlobal(resp.KnownGlobalTail)
		recs, trim := contiguousRecords(resp.Records, from, last)
		if trim != 0 {
			l.raiseTrimPoint(trim)
			return nil, &bifrost.TrimmedError{TrimPoint: trim}
		}
		if len(recs) == 0 {
			// A hole here: this server skipped past from. Another one has it.
			l.nextReadServer(i)
			continue
		}
		if len(recs) > want {
			l.mu.Lock()
			for _, r := range recs[want:] {
				l.readAhead.put(r.Offset, [][]byte{r.Payload})
			}
			l.mu.Unlock()
			recs = recs[:want]
		}
		return recs, nil
	}
	return nil, nil
}

// contiguousRecords extracts the data records from..last without gaps from a GetRecords
// answer, or the trim point if from is trimmed.
func contiguousRecords(items []wire.LogRecord, from, last bifrost.Offset) ([]bifrost.Record, bifrost.Offset) {
	var out []bifrost.Record
	next := from
	for _, r := range items {
		if r.Kind == wire.RecordTrimGap {
			if r.Offset <= next && r.GapTo >= next {
				if len(out) == 0 {
					return nil, r.GapTo
				}
				break
			}
			continue
		}
		if r.Offset != next || next > last {
			break
		}
		out = append(out, bifrost.Record{Offset: r.Offset, Payload: r.Payload})
		next++
	}
	return out, 0
}

// waitTail waits until the known global tail may have passed from: on the sequencer's
// node for the local watch; elsewhere with a WaitForTail long poll on the current read
// server (cut short if the watch moves for another reason). A server that reports the
// loglet sealed below from triggers a find-tail, which settles the sealed tail.
func (l *Loglet) waitTail(ctx context.Context, from bifrost.Offset, changed <-chan struct{}) error {
	if l.seq != nil {
		select {
		case <-changed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-l.ctx.Done():
			return bifrost.ErrClosed
		}
	}
	i := l.readServer()
	node := l.params.Nodeset[i]
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // owned by this call: ends with wctx
		select {
		case <-changed:
			cancel()
		case <-l.ctx.Done():
			cancel()
		case <-wctx.Done():
		}
	}()
	var resp *wire.TailUpdated
	err := l.callServer(wctx, node, l.p.opts.LongPollTimeout, func(ctx context.Context, srv wire.LogServer) error {
		var err error
		resp, err = srv.WaitForTail(ctx, &wire.WaitForTail{
			Header: wire.Header{LogletID: l.id, KnownGlobalTail: l.watch.current().Offset},
			Query:  wire.WaitGlobalTail, Offset: from + 1,
		})
		return err
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case l.ctx.Err() != nil:
		return bifrost.ErrClosed
	case wctx.Err() != nil:
		return nil // the watch moved
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		// The long poll expired. This server may be cut off from the sequencer and never
		// learn the tail: ask the next one.
		l.nextReadServer(i)
		return nil
	case err != nil || resp.Status != wire.StatusOK && resp.Status != wire.StatusSealed:
		l.nextReadServer(i)
		return l.sleep(ctx, l.retryDelay(1))
	}
	l.learnGlobal(resp.KnownGlobalTail)
	if (resp.Sealed || resp.Status == wire.StatusSealed) && resp.KnownGlobalTail <= from {
		t, err := l.findTail(ctx, true)
		if err != nil {
			return err
		}
		if !t.Sealed && t.Offset <= from {
			// Partially sealed (the sequencer finishes such seals): the sealed server's
			// tail no longer moves, so wait on another one.
			l.nextReadServer(i)
			return l.sleep(ctx, l.p.opts.ReadRetryDelay)
		}
	}
	return nil
}
