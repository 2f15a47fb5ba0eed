package replicated

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// tailFinder is the find-tail decision of a non-sequencer node (BIFROST.md §4 steps 2–5)
// as a pure state machine: feed it the log servers' answers (observe) and ask what to do
// (decide). Only authoritative answers count: a server reporting data loss is never used
// to choose a tail.
type tailFinder struct {
	q      quorum
	nodes  []nodeTail
	global bifrost.Offset // known global tail: every offset below it is committed
}

type nodeTail struct {
	known    bool // answered with its tail
	dataLoss bool
	sealed   bool
	local    bifrost.Offset
}

type tailAction uint8

const (
	// actWait: not enough answers yet.
	actWait tailAction = iota
	// actSealed: the loglet is sealed at tail.
	actSealed
	// actOpen: the loglet is open; tail is committed.
	actOpen
	// actRepair: sealed; copy [from, tail) to a write quorum, then it is sealed at tail.
	actRepair
	// actSeal: seal the loglet (partially sealed, or its sequencer is gone), then start over.
	actSeal
	// actWaitTail: unsealed servers hold records above the known global tail; wait for
	// the global tail to reach tail (WaitForTail) and decide again.
	actWaitTail
	// actRestart: the answers contradict the known global tail; start over.
	actRestart
)

var tailActionNames = [...]string{"wait", "sealed", "open", "repair", "seal", "wait-tail", "restart"}

func (a tailAction) String() string { return tailActionNames[a] }

type tailDecision struct {
	act        tailAction
	from, tail bifrost.Offset
}

func newTailFinder(q quorum, global bifrost.Offset) *tailFinder {
	return &tailFinder{q: q, nodes: make([]nodeTail, q.n), global: max(global, 1)}
}

// observe merges a server's response header (and trim point, if the response carries
// one) and reports whether anything moved, which counts as progress of the loglet.
func (t *tailFinder) observe(i int, h wire.ResponseHeader, trimPoint bifrost.Offset) bool {
	moved := false
	// A trimmed prefix is committed (trims are clipped below the global tail), so a fully
	// trimmed loglet whose servers forgot the global tail needs no repair (#2689).
	if g := max(h.KnownGlobalTail, trimPoint+1); g > t.global {
		t.global, moved = g, true
	}
	n := &t.nodes[i]
	switch h.Status {
	case wire.StatusOK, wire.StatusSealed:
		sealed := h.Sealed || h.Status == wire.StatusSealed
		if !n.known || h.LocalTail > n.local || sealed && !n.sealed {
			moved = true
		}
		n.known, n.dataLoss = true, false
		n.local = max(n.local, h.LocalTail)
		n.sealed = n.sealed || sealed
	case wire.StatusDataLoss:
		n.dataLoss = true
	}
	return moved
}

// atLeast counts answering servers whose local tail reached o (unsealed ones only if
// unsealedOnly).
func (t *tailFinder) atLeast(o bifrost.Offset, unsealedOnly bool) int {
	c := 0
	for _, n := range t.nodes {
		if n.known && n.local >= o && !(unsealedOnly && n.sealed) {
			c++
		}
	}
	return c
}

// decide applies §4 to the answers so far. giveUp says the sequencer is gone, or dead with
// no progress for a while (#3385): then a loglet whose tail cannot be settled otherwise
// is sealed, provided a write quorum answered (so its tail can be repaired).
func (t *tailFinder) decide(giveUp bool) tailDecision {
	known, sealed := 0, 0
	var maxAll, maxSealed bifrost.Offset
	for _, n := range t.nodes {
		if !n.known {
			continue
		}
		known++
		maxAll = max(maxAll, n.local)
		if n.sealed {
			sealed++
			maxSealed = max(maxSealed, n.local)
		}
	}
	if known < t.q.f {
		return tailDecision{act: actWait}
	}
	if sealed >= t.q.f {
		// Sealed. Any committed record is on a write quorum, which intersects these
		// sealed servers, so maxSealed covers every acknowledged record; records in
		// [global, maxSealed) may be on fewer than r servers and are copied first.
		m := maxSealed
		switch {
		case m < t.global:
			return tailDecision{act: actRestart, tail: m}
		case m == t.global || t.atLeast(m, false) >= t.q.r:
			return tailDecision{act: actSealed, tail: m}
		case known >= t.q.r:
			return tailDecision{act: actRepair, from: t.global, tail: m}
		}
		// An f-majority smaller than a write quorum (r > n/2+1): wait for more answers
		// before repairing.
		return tailDecision{act: actWait}
	}
	if sealed > 0 {
		// Partially sealed: finish the seal (the sealer may have died), then decide again.
		return tailDecision{act: actSeal}
	}
	// Open: only the known global tail is committed. Upstream also answers Open(m) once a
	// write quorum of unsealed servers holds m, but records there may never have been
	// acknowledged, and the sequencer's own seal (its drained global tail) can then end
	// the loglet below m: a reader here would have delivered records that the chain
	// leaves out. Records read while a loglet is open must lie below every sealed tail
	// (bifrost's virtual log relies on it), so this waits for the global tail instead.
	m := maxAll
	switch {
	case t.global >= m:
		return tailDecision{act: actOpen, tail: t.global}
	case giveUp && known >= t.q.r:
		return tailDecision{act: actSeal}
	}
	return tailDecision{act: actWaitTail, tail: m}
}

// findTail determines the tail from a non-sequencer node: from the sequencer if it is
// alive and answers (askSequencer), else from the log servers.
func (l *Loglet) findTail(ctx context.Context, askSequencer bool) (bifrost.TailState, error) {
	l.findMu.Lock()
	defer l.findMu.Unlock()
	for {
		if t := l.watch.current(); t.Sealed {
			return t, nil
		}
		if askSequencer {
			if t, ok := l.askSequencer(ctx); ok {
				return t, nil
			}
		}
		t, done, err := l.findTailFromServers(ctx)
		if err != nil || done {
			return t, err
		}
	}
}

// askSequencer asks a live sequencer for its state; its answer is authoritative.
func (l *Loglet) askSequencer(ctx context.Context) (bifrost.TailState, bool) {
	seq := l.params.Sequencer
	if l.sequencerGone() || !l.alive(seq.Name) {
		return bifrost.TailState{}, false
	}
	var resp *wire.SequencerState
	api, err := l.p.net.Sequencer(seq.Name)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, l.p.opts.SequencerQueryTimeout)
		resp, err = api.GetSequencerState(cctx, &wire.GetSequencerState{LogletID: l.id})
		cancel()
	}
	ok := err == nil && resp.Status == wire.StatusOK
	l.mu.Lock()
	l.seqUnreachable = !ok
	l.mu.Unlock()
	if !ok {
		l.log.Debug("sequencer did not answer find-tail", "sequencer", seq.String(), "error", err)
		return bifrost.TailState{}, false
	}
	if resp.Sealed {
		return l.watch.seal(resp.KnownGlobalTail), true
	}
	l.watch.raise(resp.KnownGlobalTail)
	return l.watch.current(), true
}

type tailObservation struct {
	i      int
	h      wire.ResponseHeader
	trim   bifrost.Offset
	waited bool // the answer of a WaitForTail poll (the poll has ended)
}

// findTailFromServers runs one round of the log-server procedure. done is false when the
// round ended in a seal, a failed repair or a contradiction and must start over.
func (l *Loglet) findTailFromServers(ctx context.Context) (t bifrost.TailState, done bool, err error) {
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	obs := make(chan tailObservation, 2*l.q.n)
	for i := range l.params.Nodeset {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.pollTail(cctx, i, obs, nil)
		}()
	}
	tf := newTailFinder(l.q, l.watch.current().Offset)
	lastProgress := time.Now()
	// While waiting for tails, each server has at most one WaitForTail poll out, aimed at
	// the newest target: a poll that answers is re-armed at the next decision, and one
	// still out picks up a moved target at its next attempt. (Polls armed once would
	// leave the decision waiting forever when the target moves while they are out.)
	polling := make([]bool, len(l.params.Nodeset))
	var target atomic.Uint64
	grace := l.p.opts.DeadSequencerGrace
	ticker := time.NewTicker(max(min(250*time.Millisecond, grace/4), time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case o := <-obs:
			if o.waited {
				polling[o.i] = false
			}
			if tf.observe(o.i, o.h, o.trim) {
				lastProgress = time.Now()
			}
		case <-ticker.C:
		case <-ctx.Done():
			return t, false, ctx.Err()
		case <-l.ctx.Done():
			return t, false, bifrost.ErrClosed
		}
		l.learnGlobal(tf.global)
		tf.global = max(tf.global, l.watch.current().Offset)
		giveUp := l.sequencerGone() || l.sequencerDead() && time.Since(lastProgress) >= grace
		d := tf.decide(giveUp)
		switch d.act {
		case actWait:
		case actWaitTail:
			target.Store(uint64(d.tail))
			for i := range l.params.Nodeset {
				if polling[i] {
					continue
				}
				polling[i] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					l.pollTail(cctx, i, obs, &target)
				}()
			}
		case actSealed:
			return l.watch.seal(d.tail), true, nil
		case actOpen:
			l.watch.raise(d.tail)
			return l.watch.current(), true, nil
		case actRepair:
			l.log.Info("repairing sealed tail", "from", d.from, "to", d.tail)
			if err := l.repairTail(ctx, d.from, d.tail); err != nil {
				l.log.Warn("tail repair failed, retrying find-tail", "from", d.from, "to", d.tail, "error", err)
				return t, false, l.sleep(ctx, l.p.opts.RepairRetryDelay)
			}
			return l.watch.seal(d.tail), true, nil
		case actSeal:
			l.log.Info("sealing loglet from find-tail", "sequencer_gone", giveUp, "global_tail", tf.global)
			if err := l.sealServers(ctx, tf.global); err != nil {
				return t, false, fmt.Errorf("seal: %w", err)
			}
			return t, false, nil
		case actRestart:
			l.log.Error("log servers hold less than the known global tail, restarting find-tail", "max_sealed_tail", d.tail, "global_tail", tf.global)
			return t, false, l.sleep(ctx, l.p.opts.RepairRetryDelay)
		}
	}
}

// pollTail gets server i's tail: GetLogletInfo, or with waitFor a WaitForTail long poll
// until its known global tail reaches the offset in waitFor (read at every
// attempt, so a moved target is picked up) or it is sealed. It retries until it has an
// answer or ctx ends, then hands the answer over once.
func (l *Loglet) pollTail(ctx context.Context, i int, obs chan<- tailObservation, waitFor *atomic.Uint64) {
	node := l.params.Nodeset[i]
	for attempt := 1; ; attempt++ {
		var o tailObservation
		hdr := wire.Header{LogletID: l.id, KnownGlobalTail: l.watch.current().Offset}
		var err error
		if waitFor == nil {
			err = l.callServer(ctx, node, l.p.opts.RPCTimeout, func(ctx context.Context, srv wire.LogServer) error {
				r, err := srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: hdr})
				if err == nil {
					o = tailObservation{i: i, h: r.ResponseHeader, trim: r.TrimPoint}
				}
				return err
			})
		} else {
			err = l.callServer(ctx, node, l.p.opts.LongPollTimeout, func(ctx context.Context, srv wire.LogServer) error {
				r, err := srv.WaitForTail(ctx, &wire.WaitForTail{Header: hdr, Query: wire.WaitGlobalTail, Offset: bifrost.Offset(waitFor.Load())})
				if err == nil {
					o = tailObservation{i: i, h: r.ResponseHeader, waited: true}
				}
				return err
			})
		}
		if err == nil && (o.h.Status == wire.StatusOK || o.h.Status == wire.StatusSealed || o.h.Status == wire.StatusDataLoss) {
			select {
			case obs <- o:
			case <-ctx.Done():
			}
			return
		}
		if l.sleep(ctx, l.retryDelay(attempt)) != nil {
			return
		}
	}
}
