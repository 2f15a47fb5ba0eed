package bifrost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"gorestate.dev/shared/metadata"
)

// TrimGapError is a virtual-log read at or below the log's trim point. It matches
// ErrTrimmed; readers may resume at TrimPoint+1.
type TrimGapError struct {
	LogID     uint32
	TrimPoint LSN // highest trimmed LSN
}

func (e *TrimGapError) Error() string {
	return fmt.Sprintf("bifrost: log %d trimmed up to lsn %d", e.LogID, e.TrimPoint)
}

// Is makes errors.Is(err, ErrTrimmed) true.
func (e *TrimGapError) Is(target error) bool { return target == ErrTrimmed }

// virtualLog is one log as a chain of segments. The plain and the writer-mode Log of a log
// id are two of them; they differ in what their appender does when a segment refuses.
type virtualLog struct {
	b      *Bifrost
	id     uint32
	writer bool
	app    appender

	known atomic.Uint64 // an LSN below which everything is known committed

	trimMu  sync.Mutex
	trimmed map[logletKey]Offset // trims already done per segment, to skip them next time
}

var _ Log = (*virtualLog)(nil)

// toLSN maps an offset of seg to its LSN.
func toLSN(seg metadata.Segment, off Offset) LSN { return LSN(seg.BaseLSN) + LSN(off) - 1 }

// noteTail raises the known committed tail.
func (v *virtualLog) noteTail(tail LSN) {
	for {
		cur := v.known.Load()
		if uint64(tail) <= cur || v.known.CompareAndSwap(cur, uint64(tail)) {
			return
		}
	}
}

// Tail returns the LSN after the last record known committed: the highest tail seen by
// this node's appends, reads and FindTail, and at least the base of the tail segment.
func (v *virtualLog) Tail() LSN {
	tail := LSN(max(v.known.Load(), 1))
	if cs := v.b.chains.Load(); cs != nil {
		if chain := cs.chain(v.id); len(chain) > 0 {
			tail = max(tail, LSN(chain[len(chain)-1].BaseLSN))
		}
	}
	return tail
}

// FindTail asks the tail segment's loglet for its committed tail. A log without segments
// has tail 1.
func (v *virtualLog) FindTail(ctx context.Context) (LSN, error) {
	cs, err := v.b.current(ctx)
	if err != nil {
		return 0, fmt.Errorf("find tail of log %d: %w", v.id, err)
	}
	chain := cs.chain(v.id)
	if len(chain) == 0 {
		return 1, nil
	}
	seg := chain[len(chain)-1]
	l, err := v.b.open(ctx, seg)
	if err != nil {
		return 0, fmt.Errorf("find tail of log %d: %w", v.id, err)
	}
	ts, err := l.FindTail(ctx)
	if err != nil {
		return 0, fmt.Errorf("find tail of log %d segment %d: %w", v.id, seg.Index, err)
	}
	tail := toLSN(seg, ts.Offset)
	v.noteTail(tail)
	return tail, nil
}

// segmentAt returns the index in chain of the segment holding lsn: the last one whose base
// is at or below it (earlier ones with the same base are empty).
func segmentAt(chain []metadata.Segment, lsn LSN) int {
	i := len(chain) - 1
	for i > 0 && LSN(chain[i].BaseLSN) > lsn {
		i--
	}
	return i
}

// Read returns up to max committed entries from one segment, starting at from. At the end
// of a non-tail segment the next call continues in the next one. At a sealed tail segment
// it waits for the chain to be extended (a writer log extends it itself).
func (v *virtualLog) Read(ctx context.Context, from LSN, max int) ([]Entry, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read log %d: max %d is not positive", v.id, max)
	}
	from = later(from, 1)
	for {
		cs, err := v.b.current(ctx)
		if err != nil {
			return nil, fmt.Errorf("read log %d from %d: %w", v.id, from, err)
		}
		chain := cs.chain(v.id)
		if len(chain) == 0 {
			if _, err := v.b.waitNewer(ctx, cs.version); err != nil {
				return nil, fmt.Errorf("read log %d from %d: %w", v.id, from, err)
			}
			continue
		}
		if base := LSN(chain[0].BaseLSN); from < base {
			return nil, fmt.Errorf("read log %d from %d: %w", v.id, from, &TrimGapError{LogID: v.id, TrimPoint: base - 1})
		}
		i := segmentAt(chain, from)
		seg, isTail := chain[i], i == len(chain)-1
		n := max
		if !isTail {
			n = int(min(LSN(n), LSN(chain[i+1].BaseLSN)-from))
		}
		l, err := v.b.open(ctx, seg)
		if err != nil {
			return nil, fmt.Errorf("read log %d from %d: %w", v.id, from, err)
		}
		if !isTail && seg.Provider == ProviderLocal {
			if err := v.checkLocalSealed(ctx, l, seg, LSN(chain[i+1].BaseLSN)); err != nil {
				return nil, fmt.Errorf("read log %d from %d: %w", v.id, from, err)
			}
		}
		if ca, ok := l.(chainAware); ok && !isTail {
			// The chain's sealed tail is authoritative: a loglet that computed a lower one
			// (another sealer saw fewer servers) must still read up to it.
			ca.AdoptSealedTail(Offset(LSN(chain[i+1].BaseLSN) - LSN(seg.BaseLSN) + 1))
		}
		recs, err := l.Read(ctx, Offset(from-LSN(seg.BaseLSN)+1), n)
		if ca, ok := l.(chainAware); ok && err == nil && isTail && ca.KnownTail().Sealed {
			// Records read from a sealed tail segment before the chain says where it
			// ends may lie at or above the tail the chain will record (sealers on
			// different nodes can disagree, BIFROST.md §4): deliver nothing until the
			// chain is extended, then read within its bound. Records read while the
			// loglet was open are committed and below every sealed tail.
			err = ErrSealed
		}
		var te *TrimmedError
		switch {
		case err == nil:
			out := make([]Entry, len(recs))
			for k, r := range recs {
				out[k] = Entry{LSN: toLSN(seg, r.Offset), Payload: r.Payload}
			}
			v.noteTail(out[len(out)-1].LSN + 1)
			return out, nil
		case errors.As(err, &te):
			return nil, fmt.Errorf("read log %d from %d: %w", v.id, from, &TrimGapError{LogID: v.id, TrimPoint: toLSN(seg, te.TrimPoint)})
		case errors.Is(err, ErrSealed) && isTail:
			// The chain will get a successor; a writer log sees to it.
			if v.writer {
				v.app.refused(seg)
			}
			if _, err := v.b.waitNewer(ctx, cs.version); err != nil {
				return nil, fmt.Errorf("read log %d from %d: wait for the chain after segment %d: %w", v.id, from, seg.Index, err)
			}
		default:
			return nil, fmt.Errorf("read log %d from %d (segment %d): %w", v.id, from, seg.Index, v.b.errClosedOr(err))
		}
	}
}

// chainAware is implemented by loglets whose sealed tail may differ between the nodes that
// sealed them (the replicated loglet): the tail written into the chain is authoritative.
type chainAware interface {
	// KnownTail is this node's view of the loglet's tail, without asking anyone.
	KnownTail() TailState
	// AdoptSealedTail makes the loglet treat tail as its sealed tail.
	AdoptSealedTail(tail Offset)
}

// checkLocalSealed returns an error if the local loglet l of seg, sealed in the chain (the
// next segment starts at end), does not know its seal. Only this node writes a local loglet,
// and SealAndExtend seals it before the chain moves past it, so a loglet without the seal
// is a new, empty one: the records were lost with this node's data directory, and a read
// would wait for them forever. The error is a trim gap at the segment's end, which only a
// snapshot can cross.
func (v *virtualLog) checkLocalSealed(ctx context.Context, l Loglet, seg metadata.Segment, end LSN) error {
	ts, err := l.FindTail(ctx)
	if err != nil || ts.Sealed {
		return err
	}
	return fmt.Errorf("segment %d is a local loglet of node %q that the chain says ends at LSN %d, but this node's copy has no seal and ends at LSN %d: its records were lost with the node's data directory: %w",
		seg.Index, seg.Node, end-1, toLSN(seg, ts.Offset)-1, &TrimGapError{LogID: v.id, TrimPoint: end - 1})
}

func later(a, b LSN) LSN {
	if a > b {
		return a
	}
	return b
}

// TrimPrefix trims every segment that lies entirely at or below upTo, and the one holding
// upTo up to it. Loglets clip trims to their tails.
func (v *virtualLog) TrimPrefix(ctx context.Context, upTo LSN) error {
	cs, err := v.b.current(ctx)
	if err != nil {
		return fmt.Errorf("trim log %d to %d: %w", v.id, upTo, err)
	}
	chain := cs.chain(v.id)
	v.trimMu.Lock()
	defer v.trimMu.Unlock()
	if v.trimmed == nil {
		v.trimmed = map[logletKey]Offset{}
	}
	var errs []error
	for i, seg := range chain {
		if LSN(seg.BaseLSN) > upTo {
			break
		}
		last := upTo
		if i+1 < len(chain) {
			end := LSN(chain[i+1].BaseLSN)
			if end == LSN(seg.BaseLSN) {
				continue // empty
			}
			last = min(last, end-1)
		}
		off := Offset(last - LSN(seg.BaseLSN) + 1)
		key := logletKey{seg.Provider, seg.LogletID}
		if v.trimmed[key] >= off {
			continue
		}
		l, err := v.b.open(ctx, seg)
		if err == nil {
			err = l.Trim(ctx, off)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("trim log %d segment %d to offset %d: %w", v.id, seg.Index, off, err))
			continue
		}
		if i+1 < len(chain) {
			// Only a sealed segment's trim is final; the tail's is clipped to its tail.
			v.trimmed[key] = off
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return v.pruneTrimmed(ctx, upTo)
}

// pruneTrimmed drops from the chain the segments that lie wholly at or below upTo, which
// TrimPrefix has trimmed: a later leader (whose trims are not cached) neither trims them
// again nor asks their log servers for a trim point, and chains do not grow with every
// reconfiguration. The tail segment stays. The base of a chain's first segment then says
// how far the log is trimmed: a read below it is a trim gap. A compare-and-set on the logs
// object, so a concurrent seal-and-extend (which changes only the tail) goes on.
func (v *virtualLog) pruneTrimmed(ctx context.Context, upTo LSN) error {
	var k int
	var first uint64
	changed, err := v.b.updateChain(ctx, v.id, func(chain []metadata.Segment) ([]metadata.Segment, bool) {
		k = 0
		for k+1 < len(chain) && LSN(chain[k+1].BaseLSN) <= upTo+1 {
			k++
		}
		if k == 0 {
			return nil, false
		}
		first = chain[k].BaseLSN
		return chain[k:], true
	})
	if err != nil {
		return fmt.Errorf("prune log %d: %w", v.id, err)
	}
	if changed {
		v.b.log.Info("dropped trimmed segments from the chain", "log", v.id, "segments", k, "first_lsn", first)
	}
	return nil
}

// Append stores payloads and returns the LSN of the first one once all are committed. If
// ctx ends first the batch may still be committed.
func (v *virtualLog) Append(ctx context.Context, payloads [][]byte) (LSN, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("append to log %d: %w", v.id, err)
	}
	type result struct {
		first LSN
		err   error
	}
	ch := make(chan result, 1)
	v.AppendAsync(payloads, func(first LSN, err error) { ch <- result{first, err} })
	select {
	case r := <-ch:
		return r.first, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("append to log %d: %w", v.id, ctx.Err())
	}
}

// AppendAsync enqueues payloads; done runs once they are committed or failed. Batches
// commit, and done runs, in enqueue order, across seals and reconfigurations. done must
// not block; with a loglet whose AppendAsync applies backpressure it must not call
// AppendAsync on the same log either.
func (v *virtualLog) AppendAsync(payloads [][]byte, done func(first LSN, err error)) {
	v.app.enqueue(payloads, done)
}
