package bifrost

import (
	"context"
	"fmt"

	"gorestate.dev/shared/metadata"
)

// LogState is a log's open end as this node sees it, for status reports (rpc.LogState).
type LogState struct {
	Segment metadata.Segment // the tail segment
	Tail    LSN              // the LSN the next record will get
	Sealed  bool             // the tail segment takes no more appends: the chain is about to grow
	// TrimPoint is the highest trimmed LSN (0 if none).
	TrimPoint LSN
}

// State asks the loglets of a log for its tail and trim point. ok is false for a log
// without segments.
func (b *Bifrost) State(ctx context.Context, logID uint32) (st LogState, ok bool, err error) {
	cs, err := b.current(ctx)
	if err != nil {
		return LogState{}, false, fmt.Errorf("state of log %d: %w", logID, err)
	}
	chain := cs.chain(logID)
	if len(chain) == 0 {
		return LogState{}, false, nil
	}
	st.Segment = chain[len(chain)-1]
	l, err := b.open(ctx, st.Segment)
	if err != nil {
		return LogState{}, true, fmt.Errorf("state of log %d: %w", logID, err)
	}
	ts, err := l.FindTail(ctx)
	if err != nil {
		return LogState{}, true, fmt.Errorf("state of log %d: find tail: %w", logID, err)
	}
	st.Tail, st.Sealed = toLSN(st.Segment, ts.Offset), ts.Sealed
	// Trims move forward through the chain: the newest segment trimmed at all holds the
	// trim point.
	for i := len(chain) - 1; i >= 0; i-- {
		seg := chain[i]
		if i+1 < len(chain) && chain[i+1].BaseLSN == seg.BaseLSN {
			continue // empty
		}
		l, err := b.open(ctx, seg)
		if err != nil {
			return st, true, fmt.Errorf("state of log %d: %w", logID, err)
		}
		tp, err := l.TrimPoint(ctx)
		if err != nil {
			return st, true, fmt.Errorf("state of log %d: trim point of segment %d: %w", logID, seg.Index, err)
		}
		if tp > 0 {
			st.TrimPoint = toLSN(seg, tp)
			break
		}
	}
	// Segments trimmed wholly are dropped from the chain (pruneTrimmed): the log is trimmed
	// at least up to the first remaining one.
	st.TrimPoint = max(st.TrimPoint, LSN(chain[0].BaseLSN)-1)
	return st, true, nil
}
