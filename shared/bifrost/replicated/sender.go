package replicated

import (
	"context"
	"errors"
	"slices"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metrics"
)

// errNodeDead stands for a request not sent because the failure detector reports the
// server dead: it counts as a failed attempt (backoff, unusable).
var errNodeDead = errors.New("replicated: node reported dead by the failure detector")

// runSender is the one goroutine that sends to log server i for this loglet. It keeps up
// to MaxStoresInFlight stores in flight, sending them one after the other so that they
// reach the server in offset order where the network keeps order; while they are out,
// newly enqueued batches queue up and the next store carries all of them
// (seqCore.nextStore merges them). A failed server is retried with backoff on its own,
// without holding up the senders of the other servers. When there is nothing to store it
// pushes the final global tail after commits stop, and checks the server's seal bit when
// idle.
func (s *sequencer) runSender(i int) {
	defer s.wg.Done()
	name := s.l.params.Nodeset[i]
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		// A sealed sequencer has nothing left to send: its seal carried the final tail.
		closed := s.core.state == seqClosed || s.core.state == seqSealed
		req, isStore := s.core.nextStore(i, now)
		wakeStandbys := false
		if isStore {
			// The cache may compact its slice while the store is in flight.
			req.payloads = slices.Clone(req.payloads)
			wakeStandbys = s.core.fullPreferred(i)
		}
		var global bifrost.Offset
		isInfo := false
		if !isStore && !closed {
			global, isInfo = s.core.nextInfo(i, now)
		}
		var at time.Time
		gathering := false
		if !isStore && !isInfo {
			at, gathering = s.core.sleepUntil(i, now)
		}
		s.armed[i] = at
		s.mu.Unlock()
		if wakeStandbys {
			s.wakeStandbys()
		}

		switch {
		case closed || s.ctx.Err() != nil:
			return
		case isStore:
			s.sendStore(i, name, req)
		case isInfo:
			s.sendInfo(i, name, global)
		default:
			if !at.IsZero() {
				d := time.Until(at)
				if !gathering {
					// Timers are a fallback for everything else: never spin on one.
					d = max(d, time.Millisecond)
				}
				timer.Reset(d)
			}
			select {
			case <-s.ctx.Done():
				return
			case <-s.wake[i]:
			case <-timer.C:
			}
			timer.Stop()
		}
	}
}

// wakeStandbys wakes the senders of the standby servers: a preferred server's stores in
// flight are at the limit, so they take new records too.
func (s *sequencer) wakeStandbys() {
	for j, standby := range s.core.cfg.standby {
		if standby {
			s.wakeOne(j)
		}
	}
}

// sendStore sends a store and returns; the goroutine that reads its answer feeds it to the
// core and wakes the sender.
func (s *sequencer) sendStore(i int, name string, req storeReq) {
	ctx, cancel := context.WithTimeout(s.ctx, s.l.p.opts.RPCTimeout)
	start := time.Now()
	s.wg.Add(1)
	s.l.sendStore(ctx, name, &wire.Store{
		Header:      wire.Header{LogletID: s.l.id, KnownGlobalTail: req.global},
		FirstOffset: req.first,
		Sequencer:   s.l.params.Sequencer,
		Payloads:    req.payloads,
	}, func(resp *wire.Stored, err error) {
		defer s.wg.Done()
		cancel()
		if err != nil {
			s.l.log.Trace("store failed", "server", name, "first", req.first, "error", err)
		} else if resp.Status != wire.StatusOK {
			s.l.log.Debug("store refused", "server", name, "first", req.first, "status", resp.Status.String(), "local_tail", resp.LocalTail)
		} else {
			replicatedCommit.Observe(metrics.Since(start))
		}
		s.mu.Lock()
		s.core.onStored(i, req, resp, err, time.Now())
		s.settle()
		s.mu.Unlock()
		if err != nil || resp.Status != wire.StatusOK {
			s.wakeAll() // a failing preferred server makes the standbys eager
		} else {
			s.wakeOne(i)
		}
		// This runs on the goroutine that reads the server's stream (or on the sender,
		// for a store that failed at once), which must not run callbacks: one that
		// appends again and waits for backpressure would stall the answers that release it.
		s.flushAsync()
	})
}

func (s *sequencer) sendInfo(i int, name string, global bifrost.Offset) {
	var resp *wire.LogletInfo
	err := s.call(name, func(ctx context.Context, srv wire.LogServer) error {
		var err error
		resp, err = srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: s.l.id, KnownGlobalTail: global}})
		return err
	})
	s.mu.Lock()
	s.core.onInfo(i, global, resp, err, time.Now())
	s.settle()
	s.mu.Unlock()
	if err != nil || resp.Status != wire.StatusOK {
		s.wakeAll() // a failing preferred server makes the standbys eager
	}
	s.flushAsync()
}

// call runs one request to a log server under the RPC timeout, unless the failure
// detector reports it dead.
func (s *sequencer) call(name string, f func(context.Context, wire.LogServer) error) error {
	return s.l.callServer(s.ctx, name, s.l.p.opts.RPCTimeout, f)
}
