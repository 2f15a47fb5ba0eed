package server

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metrics"
)

// storeAction is what a Store request leads to once the rules have been applied.
type storeAction uint8

const (
	storeReply          storeAction = iota // answer with the verdict's status now
	storeAccept                            // write the records, answer once durable
	storeAwaitDuplicate                    // already accepted: wait until durable, then check
	storeAwaitSeal                         // a seal is in flight: wait for it, answer Sealed
)

type storeVerdict struct {
	action storeAction
	status wire.Status // for storeReply
	reason string      // why a store was refused, for the debug log
	// from is where storeAccept starts writing: the store's first offset, or the staging
	// tail when the store's beginning was accepted already.
	from bifrost.Offset
}

func reply(status wire.Status, reason string) storeVerdict {
	return storeVerdict{action: storeReply, status: status, reason: reason}
}

// malformedStore says why a Store is malformed, or "". A malformed store changes nothing,
// not even the known global tail.
func malformedStore(req *wire.Store) string {
	switch {
	case len(req.Payloads) == 0:
		return "no payloads"
	case req.FirstOffset == 0:
		return "first offset 0"
	case uint64(req.FirstOffset) > math.MaxUint64-uint64(len(req.Payloads)):
		return "offsets overflow"
	case req.Flags&^wire.FlagIgnoreSeal != 0:
		return "unknown flags"
	case req.Sequencer.Name == "":
		return "no sequencer"
	}
	return ""
}

// decideStore applies the acceptance rules of BIFROST.md §2, in that order, to a
// well-formed Store (malformedStore returned ""). It only reads l (mu held); the caller
// acts on the verdict.
func (l *loglet) decideStore(req *wire.Store, now time.Time, storageFailed bool) storeVerdict {
	repair := req.Flags&wire.FlagIgnoreSeal != 0
	first := req.FirstOffset
	last := first + bifrost.Offset(len(req.Payloads)) - 1
	if l.sealed && !repair {
		return reply(wire.StatusSealed, "sealed")
	}
	if storageFailed {
		return reply(wire.StatusDisabled, "storage failed")
	}
	if l.sequencer != nil && *l.sequencer != req.Sequencer {
		return reply(wire.StatusSequencerMismatch, "pinned sequencer is "+l.sequencer.String())
	}
	nextOK := max(l.staging, l.globalTail)
	// A store from the pinned sequencer that starts below next_ok but reaches past the
	// staging tail is a retry whose answer was lost, merged with newer records (or a store
	// into a hole below the global tail): its part at and above the staging tail is new and
	// is written; the part below was accepted before. Refusing it would leave the sequencer
	// retrying the same range forever. A store entirely below the staging tail is a pure
	// duplicate, checked below.
	from := first
	if !repair && first < nextOK && last >= l.staging {
		from = max(first, l.staging)
	}
	// Strictly in order, but a server may jump to the global tail, leaving a hole below it
	// that is committed on other servers.
	if first > nextOK {
		return reply(wire.StatusOutOfBounds, "ahead of next_ok")
	}
	if req.TimeoutAt != 0 && now.UnixMilli() >= req.TimeoutAt {
		return reply(wire.StatusDropped, "deadline passed")
	}
	if !repair && first < nextOK && last < l.staging {
		return storeVerdict{action: storeAwaitDuplicate}
	}
	if l.sealing {
		// A repair store must not overtake the seal (it would land above the sealed local
		// tail the seal answers with); it retries. A normal store would be refused once
		// the seal is durable anyway: it waits and learns so.
		if repair {
			return reply(wire.StatusSealing, "seal in flight")
		}
		return storeVerdict{action: storeAwaitSeal}
	}
	return storeVerdict{action: storeAccept, from: from}
}

// Store stores records once the acceptance rules allow it and answers once they are
// durable; the writer commits them, so a caller that gives up is answered at once.
func (s *Server) Store(ctx context.Context, req *wire.Store) (*wire.Stored, error) {
	wait, _ := s.StartStore(req, false)
	return wait(ctx)
}

// StartStore applies the acceptance rules to req and queues its records; wait waits for
// the answer. Stores started in the order they arrived on a stream are accepted in that
// order, so a sequencer may keep several stores to this server in flight
// (wire.StoreStarter). With commit, the records are committed on the calling goroutine
// (with whatever else is queued) unless another goroutine is committing already, and ready
// is true once they are durable: a stream's reader then answers at once, without handing
// the store to the writer and back. Without, the writer commits them.
func (s *Server) StartStore(req *wire.Store, commit bool) (wait func(context.Context) (*wire.Stored, error), ready bool) {
	w := s.startStore(req)
	s.store.CommitQueued(commit)
	return func(ctx context.Context) (*wire.Stored, error) {
		resp, err := w.wait(ctx)
		status := "error"
		if err == nil {
			status = resp.Status.String()
		}
		storesTotal.WithLabelValues(status).Inc()
		return resp, err
	}, w.ready()
}

var storesTotal = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
	Name: "restate_log_server_stores_total",
	Help: "Store requests answered by log servers in this process, by answer status (error: no answer, e.g. the caller went away).",
}, []string{"status"})

// pendingStore waits for a store's answer; ready reports that wait would not block.
type pendingStore struct {
	wait  func(context.Context) (*wire.Stored, error)
	ready func() bool
}

func always() bool { return true }
func never() bool  { return false }

func (s *Server) startStore(req *wire.Store) pendingStore {
	if s.lostLoglet(req.LogletID) {
		return answer(dataLossHeader)
	}
	if reason := malformedStore(req); reason != "" {
		s.logger.Debug("malformed store", "loglet", req.LogletID, "first", req.FirstOffset, "reason", reason)
		return answer(wire.ResponseHeader{Status: wire.StatusMalformed})
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return answer(disabledHeader)
	}
	defer l.mu.Unlock()
	l.raiseGlobal(req.KnownGlobalTail)
	v := l.decideStore(req, s.opts.Now(), s.storeFailed())
	switch v.action {
	case storeAccept:
		if v.from > req.FirstOffset {
			cut := *req
			cut.Payloads = req.Payloads[v.from-req.FirstOffset:]
			cut.FirstOffset = v.from
			req = &cut
		}
		return s.acceptStore(l, req)
	case storeAwaitDuplicate:
		return pendingStore{wait: func(ctx context.Context) (*wire.Stored, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			return s.awaitDuplicate(ctx, l, req)
		}, ready: never}
	case storeAwaitSeal:
		return pendingStore{wait: func(ctx context.Context) (*wire.Stored, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if err := s.wait(ctx, l, func() bool { return l.sealed || !l.sealing }); err != nil {
				return nil, err
			}
			if l.sealed {
				return &wire.Stored{ResponseHeader: l.header(wire.StatusSealed)}, nil
			}
			return &wire.Stored{ResponseHeader: l.header(wire.StatusDisabled)}, nil
		}, ready: never}
	}
	if v.status != wire.StatusOK {
		s.logger.Trace("store refused", "loglet", l.id, "first", req.FirstOffset, "n", len(req.Payloads),
			"status", v.status, "reason", v.reason, "staging", l.staging, "global_tail", l.globalTail)
	}
	return answer(l.header(v.status))
}

// answer is a store's answer that is known at once.
func answer(h wire.ResponseHeader) pendingStore {
	return pendingStore{
		wait:  func(context.Context) (*wire.Stored, error) { return &wire.Stored{ResponseHeader: h}, nil },
		ready: always,
	}
}

// acceptStore enqueues the records (pinning the sequencer on the first store) and returns
// what waits until they are durable. Called with l.mu held, so it leaves the commit to the
// caller (logstore.Store.CommitQueued): the done callback takes l.mu.
func (s *Server) acceptStore(l *loglet, req *wire.Store) pendingStore {
	last := req.FirstOffset + bifrost.Offset(len(req.Payloads)) - 1
	w := logstore.Write{Loglet: l.id, First: req.FirstOffset, Payloads: req.Payloads}
	if l.sequencer == nil {
		seq := req.Sequencer
		l.sequencer, w.Sequencer = &seq, &seq
	}
	done := make(chan error, 1)
	err := s.store.EnqueueDeferred(w, func(err error) {
		l.mu.Lock()
		if err == nil {
			l.localTail = max(l.localTail, last+1)
		}
		l.broadcast()
		l.mu.Unlock()
		done <- err
	})
	if err != nil {
		if w.Sequencer != nil {
			l.sequencer = nil // never written
		}
		return answer(l.header(wire.StatusDisabled))
	}
	l.staging = max(l.staging, last+1)
	return pendingStore{wait: func(ctx context.Context) (*wire.Stored, error) {
		select {
		case err = <-done:
		case <-ctx.Done():
			// The write completes regardless; only the answer is lost.
			return nil, ctx.Err()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			return &wire.Stored{ResponseHeader: l.header(wire.StatusDisabled)}, nil
		}
		return &wire.Stored{ResponseHeader: l.header(wire.StatusOK)}, nil
	}, ready: func() bool { return len(done) > 0 }}
}

// awaitDuplicate answers a store of a range this server already accepted: once the range
// is durable, Ok if the records are the ones stored (or trimmed since), SequencerMismatch
// if they differ or the range was skipped as a hole. Called with l.mu held; returns with it
// held.
func (s *Server) awaitDuplicate(ctx context.Context, l *loglet, req *wire.Store) (*wire.Stored, error) {
	last := req.FirstOffset + bifrost.Offset(len(req.Payloads)) - 1
	if err := s.wait(ctx, l, func() bool { return l.localTail > last || s.storeFailed() }); err != nil {
		return nil, err
	}
	if l.localTail <= last {
		return &wire.Stored{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	}
	trim := l.trimPoint
	l.mu.Unlock()
	held, err := s.store.Holds(l.id, req.FirstOffset, req.Payloads, trim)
	l.mu.Lock()
	switch {
	case err != nil:
		s.logger.Error("check duplicate store", "loglet", l.id, "first", req.FirstOffset, "error", err)
		return &wire.Stored{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	case !held:
		return &wire.Stored{ResponseHeader: l.header(wire.StatusSequencerMismatch)}, nil
	}
	return &wire.Stored{ResponseHeader: l.header(wire.StatusOK)}, nil
}

var (
	dataLossHeader = wire.ResponseHeader{Status: wire.StatusDataLoss}
	disabledHeader = wire.ResponseHeader{Status: wire.StatusDisabled}
)
