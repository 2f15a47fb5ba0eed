package processor

import (
	"bytes"
	"context"
	"time"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

// expiryPoll is how often the leader looks for completed invocations whose retention ended.
// Expiry is housekeeping: a second of lateness costs nothing, and polling the first key of an
// index is cheap.
var expiryPoll = time.Second // a variable for tests only

// runExpiry appends an Expire record whenever the expiry index has due entries, and waits
// for it to be applied before looking again, so that a backlog is worked off one bounded
// batch at a time and never floods the log.
func (l *Leader) runExpiry(ctx context.Context) {
	t := time.NewTicker(expiryPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var last *store.Expiry
		for ctx.Err() == nil {
			next, ok, err := l.Store().NextExpiry()
			if err != nil {
				l.p.log.Error("read expiry index", "error", err)
				break
			}
			if !ok || next.At > nowMs() {
				break
			}
			if last != nil && next.At == last.At && next.Kind == last.Kind && bytes.Equal(next.ID, last.ID) {
				// The last record removed nothing (it could not be applied): wait for the
				// next tick instead of appending in a tight loop.
				l.p.log.Warn("expiry made no progress; retrying later", "due", next.At)
				break
			}
			last = &next
			lsn, err := l.appendRecord(ctx, &logrecord.Record{Kind: logrecord.KindExpire})
			if err == nil {
				err = l.WaitApplied(ctx, lsn)
			}
			if err != nil {
				if ctx.Err() == nil {
					l.p.log.Error("expire completed invocations", "error", err)
				}
				break
			}
		}
	}
}
