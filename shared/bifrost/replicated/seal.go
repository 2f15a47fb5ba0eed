package replicated

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// Seal stops the loglet and returns its sealed tail (BIFROST.md §4). On the sequencer's
// node the sequencer is drained first (#2094): it stops taking appends, lets in-flight
// ones commit for up to DrainTimeout and fails the rest, so its known global tail is final
// and becomes the sealed tail; only then are the log servers sealed. Elsewhere the log
// servers are sealed and the tail is found afterwards (from the sequencer if it answers,
// else from an f-majority of log servers, with repair). Done once an f-majority of the
// nodeset is sealed: at most r−1 servers then accept stores, so no write quorum can form.
func (l *Loglet) Seal(ctx context.Context) (bifrost.Offset, error) {
	if t := l.watch.current(); t.Sealed {
		return t.Offset, nil
	}
	var (
		tail bifrost.Offset
		err  error
	)
	if l.seq != nil {
		tail, err = l.sealAsSequencer(ctx)
	} else {
		tail, err = l.sealRemote(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("seal loglet %d: %w", l.id, err)
	}
	l.log.Info("sealed", "tail", tail)
	return tail, nil
}

func (l *Loglet) sealAsSequencer(ctx context.Context) (bifrost.Offset, error) {
	tail, err := l.seq.drain(ctx)
	if err != nil {
		return 0, fmt.Errorf("drain sequencer: %w", err)
	}
	if err := l.sealServers(ctx, tail); err != nil {
		return 0, fmt.Errorf("seal log servers at %d: %w", tail, err)
	}
	l.seq.markSealed()
	return tail, nil
}

func (l *Loglet) sealRemote(ctx context.Context) (bifrost.Offset, error) {
	if err := l.sealServers(ctx, l.watch.current().Offset); err != nil {
		return 0, fmt.Errorf("seal log servers: %w", err)
	}
	// A live sequencer notices the seal when asked (GetSequencerState checks the seal
	// bits) and answers with its drained tail; give it a few chances before deciding from
	// the log servers alone, which may include records it never acknowledged.
	for attempt := 1; ; attempt++ {
		t, err := l.findTail(ctx, attempt <= 3)
		if err != nil {
			return 0, err
		}
		if t.Sealed {
			return t.Offset, nil
		}
		if err := l.sleep(ctx, l.retryDelay(attempt)); err != nil {
			return 0, err
		}
	}
}

// sealAccepted says whether a Seal answer counts toward the f-majority. A server that lost
// its data (DataLoss) counts: it takes no stores, so it cannot be part of a new write
// quorum, even though it never counts when a tail is chosen.
func sealAccepted(st wire.Status) bool {
	return st == wire.StatusOK || st == wire.StatusSealed || st == wire.StatusDataLoss
}

// sealServers sends Seal (carrying global as the known global tail) to every log server
// of the nodeset, retrying each until an f-majority has sealed or ctx ends.
func (l *Loglet) sealServers(ctx context.Context, global bifrost.Offset) error {
	sealed := 0
	return scatter(ctx, l, 0,
		func(ctx context.Context, _ int, srv wire.LogServer) (*wire.Sealed, error) {
			return srv.Seal(ctx, &wire.Seal{
				Header:    wire.Header{LogletID: l.id, KnownGlobalTail: global},
				Sequencer: l.params.Sequencer,
			})
		},
		func(r *wire.Sealed, err error) bool { return err != nil || !sealAccepted(r.Status) },
		func(_ int, r *wire.Sealed, err error) bool {
			if err == nil && sealAccepted(r.Status) {
				sealed++
				if r.Status != wire.StatusDataLoss {
					l.learnGlobal(r.KnownGlobalTail)
				}
			}
			return sealed >= l.q.f
		})
}

// drain stops the sequencer for a seal and returns its final global tail: new appends are
// refused at once, in-flight ones get up to DrainTimeout to commit, the rest fail with a
// *SealedError. Nothing at or above the returned tail is ever acknowledged. If ctx ends
// first, appends stay refused and a later Seal finishes the drain.
func (s *sequencer) drain(ctx context.Context) (bifrost.Offset, error) {
	timer := time.NewTimer(s.l.p.opts.DrainTimeout)
	defer timer.Stop()
	s.mu.Lock()
	s.core.startDrain()
	s.settle()
	for expired := false; !expired && s.core.state == seqDraining && s.core.pending() > 0; {
		ch := s.changed
		s.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-timer.C:
			expired = true
		case <-ctx.Done():
			err = ctx.Err()
		}
		s.mu.Lock()
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
	}
	if s.core.state == seqClosed {
		s.mu.Unlock()
		return 0, bifrost.ErrClosed
	}
	tail := s.core.freeze()
	s.settle()
	s.mu.Unlock()
	s.flush()
	return tail, nil
}

// markSealed records that an f-majority of log servers is sealed at the frozen tail.
func (s *sequencer) markSealed() {
	s.mu.Lock()
	s.core.markSealed()
	s.settle()
	s.mu.Unlock()
	s.flush()
}

// checkSeal is the sequencer's answer to GetSequencerState: its tail, after one round of
// GetLogletInfo that detects a seal made by another node. An f-majority sealed freezes the
// sequencer at once (sealed servers take no stores, so nothing pending can commit any
// more); fewer sealed servers start finishing the seal in the background (settle). A
// server that lost its data counts as sealed here, as in Seal: it takes no stores.
func (s *sequencer) checkSeal(ctx context.Context) (bifrost.TailState, error) {
	t, err := s.tail()
	if err != nil || t.Sealed {
		return t, err
	}
	o := &s.l.p.opts
	cctx, cancel := context.WithTimeout(ctx, min(o.RPCTimeout, o.SequencerQueryTimeout/2))
	defer cancel()
	sealed, open := 0, 0
	err = scatter(cctx, s.l, 0,
		func(ctx context.Context, _ int, srv wire.LogServer) (*wire.LogletInfo, error) {
			return srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: s.l.id, KnownGlobalTail: t.Offset}})
		},
		func(_ *wire.LogletInfo, err error) bool { return err != nil },
		func(i int, r *wire.LogletInfo, err error) bool {
			switch {
			case err != nil:
			case r.Sealed || r.Status == wire.StatusSealed:
				sealed++
				s.mu.Lock()
				s.core.serverSealed(i)
				s.settle()
				s.mu.Unlock()
			case r.Status == wire.StatusDataLoss:
				sealed++
			case r.Status == wire.StatusOK:
				open++
			}
			return sealed >= s.l.q.f || open >= s.l.q.r
		})
	s.flush()
	if err != nil && ctx.Err() != nil {
		return bifrost.TailState{}, ctx.Err()
	}
	if err != nil && !errors.Is(err, errNoQuorum) && !errors.Is(err, context.DeadlineExceeded) {
		return bifrost.TailState{}, err
	}
	if sealed >= s.l.q.f {
		s.mu.Lock()
		tail := s.core.freeze()
		s.core.markSealed()
		s.settle()
		s.mu.Unlock()
		s.flush()
		s.l.log.Info("loglet sealed by another node; sequencer stopped", "tail", tail)
	}
	return s.tail()
}
