package replicated

import (
	"context"
	"fmt"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// Trim lets the log servers drop records with offset <= upTo, clipped to the global tail
// − 1 (a trim never reaches uncommitted records). It succeeds once a write quorum trimmed:
// every f-majority then includes one of them, so TrimPoint sees the trim.
func (l *Loglet) Trim(ctx context.Context, upTo bifrost.Offset) error {
	tail := l.watch.current()
	if l.seq == nil && upTo >= tail.Offset {
		// The known tail may be stale on this node.
		if t, err := l.findTail(ctx, true); err == nil {
			tail = t
		}
	}
	if upTo >= tail.Offset {
		upTo = tail.Offset - 1
	}
	if upTo == 0 || upTo <= l.knownTrimPoint() {
		return nil
	}
	// A server that answers data-loss holds none of the loglet's records (it lost its disk
	// after the loglet began): there is nothing to trim there, so it counts. Reads of the
	// trim point never count it, so they still meet a server that recorded this trim.
	done := func(r *wire.Trimmed) bool {
		return r.Status == wire.StatusOK || r.Status == wire.StatusSealed || r.Status == wire.StatusDataLoss
	}
	trimmed := 0
	err := scatter(ctx, l, 3,
		func(ctx context.Context, _ int, srv wire.LogServer) (*wire.Trimmed, error) {
			return srv.Trim(ctx, &wire.Trim{Header: wire.Header{LogletID: l.id, KnownGlobalTail: tail.Offset}, TrimPoint: upTo})
		},
		func(r *wire.Trimmed, err error) bool { return err != nil || !done(r) },
		func(_ int, r *wire.Trimmed, err error) bool {
			if err == nil && done(r) {
				trimmed++
			}
			return trimmed >= l.q.r
		})
	if err != nil {
		return fmt.Errorf("trim loglet %d to %d: %w", l.id, upTo, err)
	}
	l.raiseTrimPoint(upTo)
	return nil
}

// TrimPoint returns the highest trim point among an f-majority of log servers (at least
// the highest this node knows).
func (l *Loglet) TrimPoint(ctx context.Context) (bifrost.Offset, error) {
	answered := 0
	var tp bifrost.Offset
	err := scatter(ctx, l, 3,
		func(ctx context.Context, _ int, srv wire.LogServer) (*wire.LogletInfo, error) {
			return srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: l.id, KnownGlobalTail: l.watch.current().Offset}})
		},
		func(r *wire.LogletInfo, err error) bool {
			return err != nil || r.Status != wire.StatusOK && r.Status != wire.StatusSealed && r.Status != wire.StatusDataLoss
		},
		func(_ int, r *wire.LogletInfo, err error) bool {
			if err == nil && (r.Status == wire.StatusOK || r.Status == wire.StatusSealed) {
				answered++
				tp = max(tp, r.TrimPoint)
				l.learnGlobal(r.KnownGlobalTail)
			}
			return answered >= l.q.f
		})
	if err != nil {
		return 0, fmt.Errorf("trim point of loglet %d: %w", l.id, err)
	}
	l.raiseTrimPoint(tp)
	return l.knownTrimPoint(), nil
}

// raiseTrimPoint records a trim point and drops the trimmed records held in memory.
func (l *Loglet) raiseTrimPoint(tp bifrost.Offset) {
	l.mu.Lock()
	if tp > l.trimPoint {
		l.trimPoint = tp
	}
	tp = l.trimPoint
	l.readAhead.evictBelow(tp + 1)
	l.mu.Unlock()
	if l.seq != nil {
		l.seq.evictBelow(tp + 1)
	}
}
