package replicated

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// repairPlan tracks a tail repair over [start, target) (BIFROST.md §4) as a pure state
// machine: which servers hold which offsets (from digests and successful repair stores),
// and how far the range is known to be on a write quorum.
//
// Why start may jump: servers receive a record only once their local tail or the global
// tail reached it, so a server holding offset o also holds everything from the global
// tail up to o. Hence the highest offset held by a write quorum proves every offset below
// it committed.
type repairPlan struct {
	q      quorum
	start  bifrost.Offset // first offset not known to be on a write quorum
	target bifrost.Offset // exclusive: the sealed tail being established
	copies []nodeMask     // copies[o-base]: servers known to hold o
	base   bifrost.Offset
	heard  nodeMask // servers whose digest arrived
}

type offsetRange struct{ from, to bifrost.Offset } // [from, to)

func newRepairPlan(q quorum, start, target bifrost.Offset) *repairPlan {
	p := &repairPlan{q: q, start: start, target: target, base: start}
	if target > start {
		p.copies = make([]nodeMask, target-start)
	}
	return p
}

func (p *repairPlan) done() bool { return p.start >= p.target }

func (p *repairPlan) holders(o bifrost.Offset) nodeMask {
	if o < p.base || o >= p.target {
		return 0
	}
	return p.copies[o-p.base]
}

// onDigest records which offsets server i holds. A trimmed run is committed (trims stay
// below the global tail), so the repair skips past it (#2689).
func (p *repairPlan) onDigest(i int, entries []wire.DigestEntry) {
	p.heard = p.heard.with(i)
	for _, e := range entries {
		switch e.Status {
		case wire.DigestTrimmed:
			p.skipTo(e.To + 1)
		case wire.DigestExists:
			for o := max(e.From, p.base); o <= e.To && o < p.target; o++ {
				p.copies[o-p.base] = p.copies[o-p.base].with(i)
			}
		}
	}
}

// stored records that server i now holds [r.from, r.to).
func (p *repairPlan) stored(i int, r offsetRange) {
	for o := max(r.from, p.base); o < r.to && o < p.target; o++ {
		p.copies[o-p.base] = p.copies[o-p.base].with(i)
	}
}

// skipTo moves start up to o: everything below is settled.
func (p *repairPlan) skipTo(o bifrost.Offset) { p.start = min(max(p.start, o), max(p.target, p.start)) }

// advance moves start past the highest offset already on a write quorum. Walking
// backwards, the first such offset o settles all of [start, o], so the next offset to
// repair is o+1, not o (#2615).
func (p *repairPlan) advance() {
	for o := p.target; o > p.start; o-- {
		if p.holders(o-1).count() >= p.q.r {
			p.start = o
			return
		}
	}
}

// ready says whether copying can begin: digests from a write quorum (so the copies can
// be placed) and someone holds start (so it can be read).
func (p *repairPlan) ready() bool {
	return p.done() || p.heard.count() >= p.q.r && p.holders(p.start) != 0
}

// lacking returns the runs of [from, to) that server i (whose digest arrived) does not
// hold, in increasing order.
func (p *repairPlan) lacking(i int, from, to bifrost.Offset) []offsetRange {
	if !p.heard.has(i) {
		return nil
	}
	var out []offsetRange
	for o := from; o < to; o++ {
		if p.holders(o).has(i) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].to == o {
			out[n-1].to = o + 1
		} else {
			out = append(out, offsetRange{o, o + 1})
		}
	}
	return out
}

// heldThroughout says whether every offset of [start, target) has a holder among the
// servers heard, so that the repair can read it.
func (p *repairPlan) heldThroughout() bool {
	for o := p.start; o < p.target; o++ {
		if p.holders(o) == 0 {
			return false
		}
	}
	return true
}

// covered says whether every offset of [from, to) is on a write quorum.
func (p *repairPlan) covered(from, to bifrost.Offset) bool {
	for o := from; o < to; o++ {
		if p.holders(o).count() < p.q.r {
			return false
		}
	}
	return true
}

// errRepair: the repair could not reach a write quorum for some record.
var errRepair = errors.New("replicated: tail repair failed")

// repairMaxBytes bounds one read of records to repair.
const repairMaxBytes = 1 << 20

// repairDigestGrace is how long a repair waits for the digests of the servers beyond an
// f-majority: long enough for any server that answers at all, short against a failover.
const repairDigestGrace = 250 * time.Millisecond

// errDigestGrace ends the wait for digests once repairDigestGrace passed.
var errDigestGrace = errors.New("replicated: enough digests, the rest not waited for")

// repairTail copies the records of [from, target) to a write quorum, so that target can be
// the sealed tail (BIFROST.md §4, tasks/repair_tail.rs). Repair stores carry IgnoreSeal,
// the original sequencer and start as the known global tail; sealed and unsealed servers
// accept them alike (#2682).
func (l *Loglet) repairTail(ctx context.Context, from, target bifrost.Offset) error {
	plan := newRepairPlan(l.q, from, target)
	// Every server's digest saves copies, but an f-majority's is enough: a committed record
	// is on r servers, so at least one of any n−r+1 holds it. Once enough digests are in to
	// place copies (a write quorum too) and to read every record of the range, the rest get
	// repairDigestGrace to answer: a server cut off by the network (connections that hang
	// rather than fail) would otherwise hold the repair, and with it the failover, for two
	// RPC timeouts.
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var graceTimer *time.Timer
	err := scatter(dctx, l, 2,
		func(ctx context.Context, _ int, srv wire.LogServer) (*wire.Digest, error) {
			return srv.GetDigest(ctx, &wire.GetDigest{
				Header: wire.Header{LogletID: l.id, KnownGlobalTail: from},
				From:   from, To: target - 1,
			})
		},
		func(r *wire.Digest, err error) bool {
			return err != nil || r.Status != wire.StatusOK && r.Status != wire.StatusSealed && r.Status != wire.StatusDataLoss
		},
		func(i int, r *wire.Digest, err error) bool {
			if err == nil && (r.Status == wire.StatusOK || r.Status == wire.StatusSealed) {
				plan.onDigest(i, r.Entries)
			}
			if graceTimer == nil && plan.heard.count() >= max(l.q.f, l.q.r) && plan.heldThroughout() {
				graceTimer = time.AfterFunc(repairDigestGrace, func() { cancel(errDigestGrace) })
			}
			return plan.heard.count() == l.q.n
		})
	if graceTimer != nil {
		graceTimer.Stop()
	}
	if err != nil && !errors.Is(err, errNoQuorum) && !(context.Cause(dctx) == errDigestGrace && ctx.Err() == nil) {
		return fmt.Errorf("digests: %w", err)
	}
	plan.advance()
	if !plan.ready() {
		return fmt.Errorf("%w: digests from %d servers (need %d), start %d held by %d", errRepair,
			plan.heard.count(), l.q.r, plan.start, plan.holders(plan.start).count())
	}
	for !plan.done() {
		o := plan.start
		recs, err := l.readForRepair(ctx, plan, o)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue // a trim gap moved start
		}
		end := o + bifrost.Offset(len(recs))
		l.copyRecords(ctx, plan, o, recs)
		if !plan.covered(o, end) {
			return fmt.Errorf("%w: records [%d, %d) not on %d servers", errRepair, o, end, l.q.r)
		}
		plan.skipTo(end)
	}
	return nil
}

// readForRepair reads the contiguous records from o on from a server holding o. A leading
// trim gap moves the plan's start past it and returns no records.
func (l *Loglet) readForRepair(ctx context.Context, plan *repairPlan, o bifrost.Offset) ([][]byte, error) {
	holders := plan.holders(o)
	for i, node := range l.params.Nodeset {
		if !holders.has(i) {
			continue
		}
		var resp *wire.Records
		err := l.callServer(ctx, node, l.p.opts.RPCTimeout, func(ctx context.Context, srv wire.LogServer) error {
			var err error
			resp, err = srv.GetRecords(ctx, &wire.GetRecords{
				Header: wire.Header{LogletID: l.id, KnownGlobalTail: plan.start},
				From:   o, To: plan.target - 1, LimitBytes: repairMaxBytes,
			})
			return err
		})
		if err != nil || resp.Status != wire.StatusOK {
			continue
		}
		var out [][]byte
		next := o
		for _, r := range resp.Records {
			if r.Kind == wire.RecordTrimGap && r.Offset <= next {
				plan.skipTo(r.GapTo + 1)
				return nil, nil
			}
			if r.Kind != wire.RecordData || r.Offset != next || next >= plan.target {
				break
			}
			out = append(out, r.Payload)
			next++
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: no server returned record %d", errRepair, o)
}

// copyRecords stores recs (offsets from first) on every heard server lacking some of
// them, each server's runs in order, the servers in parallel.
func (l *Loglet) copyRecords(ctx context.Context, plan *repairPlan, first bifrost.Offset, recs [][]byte) {
	end := first + bifrost.Offset(len(recs))
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	global := plan.start
	// Decide every server's runs before any store updates the plan.
	runs := make([][]offsetRange, len(l.params.Nodeset))
	for i := range runs {
		runs[i] = plan.lacking(i, first, end)
	}
	for i, node := range l.params.Nodeset {
		if len(runs[i]) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, run := range runs[i] {
				if !l.repairStore(ctx, node, global, run, recs[run.from-first:run.to-first]) {
					return
				}
				mu.Lock()
				plan.stored(i, run)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// repairStore sends one repair store, retrying transport errors and Sealing answers (a
// seal is being written there) a few times.
func (l *Loglet) repairStore(ctx context.Context, node string, global bifrost.Offset, run offsetRange, payloads [][]byte) bool {
	const attempts = 4
	for attempt := 1; attempt <= attempts; attempt++ {
		var resp *wire.Stored
		err := l.callServer(ctx, node, l.p.opts.RPCTimeout, func(ctx context.Context, srv wire.LogServer) error {
			var err error
			resp, err = srv.Store(ctx, &wire.Store{
				Header:      wire.Header{LogletID: l.id, KnownGlobalTail: global},
				Flags:       wire.FlagIgnoreSeal,
				FirstOffset: run.from,
				Sequencer:   l.params.Sequencer,
				Payloads:    payloads,
			})
			return err
		})
		if err == nil && resp.Status == wire.StatusOK {
			return true
		}
		if err == nil && resp.Status != wire.StatusSealing && resp.Status != wire.StatusDropped {
			l.log.Debug("repair store refused", "server", node, "first", run.from, "status", resp.Status.String())
			return false
		}
		if l.sleep(ctx, l.retryDelay(attempt)) != nil {
			return false
		}
	}
	return false
}
