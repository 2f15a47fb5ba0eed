package replicated

import (
	"fmt"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
)

// seqCore is the sequencer's protocol state (BIFROST.md §3) without I/O or clock: the
// shell (sequencer.go, sender.go) feeds it enqueues, store answers and the current time,
// and sends what it returns. Every method must be called with the shell's lock held.
//
// Rules it implements:
//   - offsets are assigned at enqueue; records stay in the cache until committed;
//   - per server, up to maxStores stores in flight, each starting where the one before it
//     ended (the first at the server's acknowledged end), or at the known global tail if
//     that is further; a store merges every queued record up to the store bounds. After a
//     failed store nothing more is sent to that server until its stores in flight have
//     answered; then it starts again from its acknowledged end;
//   - write quorum first: with standby servers configured (all but r of the nodeset), new
//     records go only to the r others while those are usable. A standby is quiet then: it
//     gets the committed records it lacks in batches, every lazyDelay, off the commit
//     path. It takes new records at once (is eager) while a preferred server is failing or
//     sealed, while one has maxStores stores in flight (new records would queue behind
//     them: under load every server takes every store, as with flooding), or once the
//     oldest pending batch or the oldest unanswered store to a preferred server is
//     hedgeDelay old (a slow server); like any lagging server it skips to the global tail
//     then.
//   - gathering: behind a store in flight, new records for a server (a preferred one, or
//     a standby while eager because the preferred ones are saturated) wait a third of its
//     round trip after the later of its last send and its last answer, unless they would
//     fill a store; the store in flight answering ends the wait (see gatherUntil).
//   - the commit rule: global tail = max(global, r-th largest acknowledged end), and the
//     batches below it complete in the same step;
//   - sealed answers from an f-majority fail the pending batches with *SealedError; fewer
//     than r usable servers for too long fail them with ErrReconfigurationNeeded.
type seqCore struct {
	cfg     coreConfig
	q       quorum
	servers []serverState

	next   bifrost.Offset // next offset to assign
	global bifrost.Offset // known global tail: every offset below it is committed
	state  seqState
	// exhausted is set once an append did not fit below cfg.maxOffset.
	exhausted bool

	batches  []*batch // uncommitted, in offset order; batches[bhead:] are live
	bhead    int
	inflight int   // records in uncommitted batches
	inBytes  int64 // their payload bytes
	cache    recordCache

	lastCommit       time.Time
	unavailableSince time.Time // zero while at least r servers are usable

	completions []completion // to deliver, in order, outside the lock
	backoff     *backoff
}

type coreConfig struct {
	maxOffset          bifrost.Offset
	maxInflightRecords int
	maxInflightBytes   int64
	maxStoreRecords    int
	maxStoreBytes      int64
	maxStores          int // stores in flight per server
	cacheBytes         int64
	writeUnavailable   time.Duration
	tailPushDelay      time.Duration
	checkSealInterval  time.Duration
	// standby marks the servers kept off the commit path while the others are usable
	// (nil: every server gets every store at once).
	standby    []bool
	hedgeDelay time.Duration
	lazyDelay  time.Duration
	// gather: new records for a server with a store in flight wait a third of its round
	// trip after the later of its last send and its last answer (see gatherUntil).
	gather bool
}

// seqState is the life cycle of a sequencer. It only moves forward.
type seqState uint8

const (
	// seqOpen: appends are taken.
	seqOpen seqState = iota
	// seqDraining: a local seal refuses new appends; in-flight ones may still commit.
	seqDraining
	// seqFrozen: the global tail is final and every uncommitted batch has failed; the
	// log servers are being sealed.
	seqFrozen
	// seqSealed: an f-majority of log servers is sealed; the global tail is the sealed tail.
	seqSealed
	// seqFailed: write-unavailable for too long; the loglet must be reconfigured. The
	// global tail is final as well.
	seqFailed
	// seqClosed: the provider shut down.
	seqClosed
)

var seqStateNames = [...]string{"open", "draining", "frozen", "sealed", "failed", "closed"}

func (s seqState) String() string { return seqStateNames[s] }

// acceptsCommits says whether store answers may still advance the global tail.
func (s seqState) acceptsCommits() bool { return s == seqOpen || s == seqDraining }

type serverState struct {
	acked  bifrost.Offset // end of the acknowledged stores: holds [joined, acked)
	stores int            // stores in flight
	sent   bifrost.Offset // end of the last store sent, while stores > 0
	// sentMax is the highest end of any store sent, answered or not. A quiet standby's
	// batches start there: a range below it may be a hole the server skipped over (its
	// answer lost), which the server would refuse as a mismatched duplicate forever.
	sentMax bifrost.Offset
	// resync: a request failed; no new store until the ones in flight have answered.
	resync     bool
	info       bool // an info request is in flight
	sealed     bool
	failures   int       // consecutive failures; 0 = usable
	retryAt    time.Time // no request before this after a failure
	sentGlobal bifrost.Offset
	lastReply  time.Time
	lazyAt     time.Time   // a quiet standby's next batch of committed records is due then
	sentAt     []time.Time // when the stores in flight were sent, oldest first
	// rtt is a moving average of the round trips of the server's Ok stores (0: none yet).
	rtt time.Duration
}

type batch struct {
	first bifrost.Offset
	n     int
	bytes int64
	done  func(bifrost.Offset, error)
	at    time.Time // enqueued
}

func (b *batch) end() bifrost.Offset { return b.first + bifrost.Offset(b.n) }

type completion struct {
	done  func(bifrost.Offset, error)
	first bifrost.Offset
	err   error
}

// storeReq is a Store the shell must send to one server.
type storeReq struct {
	first, end bifrost.Offset
	global     bifrost.Offset
	payloads   [][]byte
}

func newSeqCore(cfg coreConfig, q quorum, bo *backoff, now time.Time) *seqCore {
	servers := make([]serverState, q.n)
	for i := range servers {
		// Counts as contact, so the first check-seal round is due only after an idle interval.
		servers[i].lastReply = now
		servers[i].lazyAt = now
	}
	return &seqCore{
		cfg:        cfg,
		q:          q,
		servers:    servers,
		next:       1,
		global:     1,
		cache:      recordCache{base: 1},
		backoff:    bo,
		lastCommit: now,
	}
}

// refusal is the error an append gets in the current state, nil when it is open.
func (c *seqCore) refusal() error {
	switch c.state {
	case seqOpen:
		if c.exhausted {
			return fmt.Errorf("offsets exhausted: %w", bifrost.ErrReconfigurationNeeded)
		}
		return nil
	case seqDraining, seqFrozen, seqSealed:
		return &bifrost.SealedError{}
	case seqFailed:
		return fmt.Errorf("too few log servers usable: %w", bifrost.ErrReconfigurationNeeded)
	default:
		return bifrost.ErrClosed
	}
}

// admit says whether a batch of n records and size bytes may be enqueued now: ok, or an
// error to fail it with, or neither (wait for permits).
func (c *seqCore) admit(n int, size int64) (ok bool, err error) {
	if err := c.refusal(); err != nil {
		return false, err
	}
	if uint64(c.next)+uint64(n)-1 > uint64(c.cfg.maxOffset) {
		// Upstream demands reconfiguration past i32::MAX; a fresh loglet starts at 1.
		c.exhausted = true
		return false, c.refusal()
	}
	if c.inflight > 0 && (c.inflight+n > c.cfg.maxInflightRecords || c.inBytes+size > c.cfg.maxInflightBytes) {
		return false, nil
	}
	return true, nil
}

// enqueue assigns offsets to an admitted batch and keeps its records until committed.
func (c *seqCore) enqueue(payloads [][]byte, size int64, done func(bifrost.Offset, error), now time.Time) bifrost.Offset {
	first := c.next
	c.next += bifrost.Offset(len(payloads))
	c.cache.put(first, payloads)
	c.batches = append(c.batches, &batch{first: first, n: len(payloads), bytes: size, done: done, at: now})
	c.inflight += len(payloads)
	c.inBytes += size
	return first
}

// reject queues a failed completion for a batch that got no offset, behind every earlier
// completion, so one goroutine's done calls stay in order.
func (c *seqCore) reject(done func(bifrost.Offset, error), err error) {
	c.completions = append(c.completions, completion{done: done, err: err})
}

func (c *seqCore) pending() int { return len(c.batches) - c.bhead }

// takeCompletions hands the queued completions to the caller, who runs them in order
// outside the lock.
func (c *seqCore) takeCompletions() []completion {
	out := c.completions
	c.completions = nil
	return out
}

// nextStore returns the store to send to server i now, if any, and marks it in flight.
func (c *seqCore) nextStore(i int, now time.Time) (storeReq, bool) {
	s := &c.servers[i]
	if !c.state.acceptsCommits() || s.info || s.sealed || now.Before(s.retryAt) ||
		c.full(i) || (s.stores > 0 && s.resync) {
		return storeReq{}, false
	}
	from := s.acked
	if s.stores > 0 {
		from = s.sent
	}
	// A lagging or restarted server skips to the global tail: everything below it is on a
	// write quorum already, so the hole it leaves is harmless (BIFROST.md §3).
	first, limit := max(from, c.global), c.next
	if c.quiet(i) && (c.lazy(i, now) || first >= limit) {
		// Committed records only (also for a hedged standby with no pending record to
		// take), from where it stopped, skipping what the cache no longer holds: a hole
		// below the global tail. In batches.
		first, limit = max(from, s.sentMax, c.cache.start()), c.global
		if first >= limit || (now.Before(s.lazyAt) && limit-first < bifrost.Offset(c.cfg.maxStoreRecords)) {
			return storeReq{}, false
		}
		s.lazyAt = now.Add(c.cfg.lazyDelay)
	} else if !c.gatherUntil(i, now).IsZero() {
		return storeReq{}, false
	}
	if first >= limit {
		return storeReq{}, false
	}
	end := min(limit, first+bifrost.Offset(c.cfg.maxStoreRecords))
	payloads := c.cache.slice(first, end)
	var size int64
	for j, p := range payloads {
		size += int64(len(p))
		if size > c.cfg.maxStoreBytes && j > 0 {
			payloads = payloads[:j]
			break
		}
	}
	end = first + bifrost.Offset(len(payloads))
	s.stores++
	s.sent = end
	s.sentMax = max(s.sentMax, end)
	s.sentAt = append(s.sentAt, now)
	return storeReq{first: first, end: end, global: c.global, payloads: payloads}, true
}

// onStored feeds the answer (or transport error) of a store to server i. An Ok store
// acknowledges everything below its end, also when a store before it failed: the server
// accepts a store only at or below its next_ok (BIFROST.md §2), so it holds what came
// before, or that lies below the global tail.
func (c *seqCore) onStored(i int, req storeReq, resp *wire.Stored, err error, now time.Time) {
	s := &c.servers[i]
	s.stores--
	if len(s.sentAt) > 0 {
		if rtt := now.Sub(s.sentAt[0]); err == nil && resp != nil && resp.Status == wire.StatusOK && rtt > 0 {
			s.rtt = movingAverage(s.rtt, rtt)
		}
		// Answers come in the order the stores were sent where the network keeps order;
		// elsewhere this is close enough for hedging.
		s.sentAt = append(s.sentAt[:0], s.sentAt[1:]...)
	}
	if s.stores == 0 {
		s.resync = false
	}
	if err != nil || resp == nil {
		c.failed(i, now)
		return
	}
	s.lastReply = now
	switch resp.Status {
	case wire.StatusOK:
		s.acked = max(s.acked, req.end)
		s.sentGlobal = max(s.sentGlobal, req.global)
		s.failures, s.retryAt = 0, time.Time{}
		c.commit(now)
	case wire.StatusSealed, wire.StatusSealing:
		s.sealed = true
		c.checkSealed()
	case wire.StatusOutOfBounds:
		// The server holds less than it acknowledged (it lost data): trust its answer and
		// resend from max(its tail, global tail).
		s.acked = resp.LocalTail
		c.failed(i, now)
	default:
		c.failed(i, now)
	}
	c.updateAvailability(now)
}

// movingAverage weighs a new round trip by 1/8 (the first one counts in full).
func movingAverage(avg, sample time.Duration) time.Duration {
	if avg == 0 {
		return sample
	}
	return avg + (sample-avg)/8
}

// gatherUntil returns until when the new records for server i wait (zero: they go now,
// or wait for something else). While a store is in flight to a server, the server is
// committing it (or the one before), and a store sent behind it waits there for that fsync
// to end before its own starts. Sent a third of a round trip after the later of the last
// send and the last answer, it still arrives before that fsync ends, and it carries every
// record appended meanwhile (under load, the burst of appends that the last commit let
// go): fewer, larger stores, so fewer fsyncs, socket writes and wake-ups per record on
// both sides. The hold never outlasts the store in flight: its answer leaves none in
// flight, and the records go at once. A store that would be full goes at once too, and so
// do batches to a quiet standby (they have timers of their own) and stores to a server
// whose round trip is not known yet.
func (c *seqCore) gatherUntil(i int, now time.Time) time.Time {
	s := &c.servers[i]
	if !c.cfg.gather || s.stores == 0 || s.rtt == 0 || len(s.sentAt) == 0 || !c.state.acceptsCommits() ||
		s.info || s.sealed || s.resync || now.Before(s.retryAt) || c.full(i) || (c.quiet(i) && !c.saturated()) {
		return time.Time{}
	}
	if first := max(s.sent, c.global); first >= c.next || c.fills(first) {
		return time.Time{}
	}
	at := later(s.sentAt[len(s.sentAt)-1], s.lastReply).Add(s.rtt / 3)
	if !now.Before(at) {
		return time.Time{}
	}
	return at
}

// fills reports whether the records from first on (all uncommitted, so in the cache) fill
// a store, by count or by bytes.
func (c *seqCore) fills(first bifrost.Offset) bool {
	if c.next-first >= bifrost.Offset(c.cfg.maxStoreRecords) {
		return true
	}
	if c.inBytes < c.cfg.maxStoreBytes { // every uncommitted record together is smaller
		return false
	}
	var size int64
	for _, p := range c.cache.slice(first, c.next) {
		if size += int64(len(p)); size >= c.cfg.maxStoreBytes {
			return true
		}
	}
	return false
}

// full reports whether server i has as many stores in flight as allowed.
func (c *seqCore) full(i int) bool { return c.servers[i].stores >= max(c.cfg.maxStores, 1) }

// preferred reports whether server i is one of the write quorum that gets new records
// first (with standbys configured).
func (c *seqCore) preferred(i int) bool { return c.cfg.standby != nil && !c.cfg.standby[i] }

// quiet reports whether server i is a standby kept off the commit path by time alone:
// the preferred servers (a write quorum) are all usable.
func (c *seqCore) quiet(i int) bool {
	if c.cfg.standby == nil || !c.cfg.standby[i] {
		return false
	}
	for j := range c.servers {
		if s := &c.servers[j]; c.preferred(j) && (s.sealed || s.failures > 0) {
			return false
		}
	}
	return true
}

// hedgeAt is when the standbys turn eager by time alone: hedgeDelay after the oldest
// pending batch was enqueued, or after the oldest unanswered store to a preferred server
// was sent (zero: neither exists).
func (c *seqCore) hedgeAt() time.Time {
	var at time.Time
	if c.pending() > 0 {
		at = c.batches[c.bhead].at
	}
	for j := range c.servers {
		if s := &c.servers[j]; c.preferred(j) && len(s.sentAt) > 0 {
			at = earliest(at, s.sentAt[0])
		}
	}
	if at.IsZero() {
		return at
	}
	return at.Add(c.cfg.hedgeDelay)
}

// saturated reports whether a preferred server has as many stores in flight as allowed:
// new records would queue behind them, so the standbys take them too (a commit is then the
// faster r of all servers, as with flooding).
func (c *seqCore) saturated() bool {
	for j := range c.servers {
		if c.fullPreferred(j) {
			return true
		}
	}
	return false
}

// fullPreferred reports whether server j is a preferred server with as many stores in
// flight as allowed. The shell wakes the standbys when a store fills one: the records it
// carries are then theirs too.
func (c *seqCore) fullPreferred(j int) bool {
	return c.preferred(j) && c.full(j)
}

// lazy reports whether server i gets only committed records now (see quiet, saturated and
// hedgeAt).
func (c *seqCore) lazy(i int, now time.Time) bool {
	if !c.quiet(i) || c.saturated() {
		return false
	}
	h := c.hedgeAt()
	return h.IsZero() || now.Before(h)
}

// wakeOnAppend reports whether the sender of server i, armed until armed (zero: asleep
// until woken, or running), must be woken for a batch just enqueued: not while it has as
// many stores in flight as allowed (their answers wake it), nor while it gathers with its
// timer armed by the gather deadline, nor when it is a quiet standby whose timer fires by
// the batches' hedge deadline anyway.
func (c *seqCore) wakeOnAppend(i int, armed, now time.Time) bool {
	if c.full(i) {
		return false
	}
	if g := c.gatherUntil(i, now); !g.IsZero() && !armed.IsZero() && !armed.After(g) {
		return false // its timer fires when the records it gathers are due
	}
	if !c.quiet(i) || c.saturated() {
		return true
	}
	return armed.IsZero() || armed.After(c.hedgeAt())
}

// failed puts server i in backoff; it counts as unusable until a request succeeds.
func (c *seqCore) failed(i int, now time.Time) {
	s := &c.servers[i]
	s.failures++
	s.retryAt = now.Add(c.backoff.delay(s.failures))
	s.resync = s.stores > 0
	c.updateAvailability(now)
}

// commit applies the commit rule and completes every batch below the new global tail in
// the same step: nobody can observe the tail advanced while its batches are unresolved,
// which is what lets a seal drain use the global tail as the sealed tail (#2094).
func (c *seqCore) commit(now time.Time) {
	if !c.state.acceptsCommits() {
		return
	}
	acked := make([]bifrost.Offset, len(c.servers))
	for j := range c.servers {
		acked[j] = c.servers[j].acked
	}
	tail := rthLargest(acked, c.q.r)
	if tail <= c.global {
		return
	}
	c.global = tail
	c.lastCommit = now
	for c.bhead < len(c.batches) {
		b := c.batches[c.bhead]
		if b.end() > c.global {
			break
		}
		c.completions = append(c.completions, completion{done: b.done, first: b.first})
		c.release(b)
	}
	c.cache.evictOver(c.cfg.cacheBytes, c.global)
}

// release forgets the head batch and its permits.
func (c *seqCore) release(b *batch) {
	c.batches[c.bhead] = nil
	c.bhead++
	c.inflight -= b.n
	c.inBytes -= b.bytes
	if c.bhead == len(c.batches) {
		c.batches, c.bhead = c.batches[:0], 0
	} else if c.bhead > 1024 && c.bhead*2 > len(c.batches) {
		n := copy(c.batches, c.batches[c.bhead:])
		clear(c.batches[n:])
		c.batches, c.bhead = c.batches[:n], 0
	}
}

// failPending fails every uncommitted batch, in order.
func (c *seqCore) failPending(errFor func(b *batch) error) {
	for c.bhead < len(c.batches) {
		b := c.batches[c.bhead]
		c.completions = append(c.completions, completion{done: b.done, first: b.first, err: errFor(b)})
		c.release(b)
	}
}

func sealedErr(b *batch) error { return &bifrost.SealedError{First: b.first} }

// checkSealed ends the sequencer once sealed servers form an f-majority: no write quorum
// can form any more, so the pending batches can never commit here.
func (c *seqCore) checkSealed() {
	sealed := 0
	for j := range c.servers {
		if c.servers[j].sealed {
			sealed++
		}
	}
	if sealed < c.q.f || c.state >= seqSealed {
		return
	}
	c.failPending(sealedErr)
	c.state = seqSealed
}

// serverSealed records that server i reported the loglet sealed (outside a store).
func (c *seqCore) serverSealed(i int) {
	c.servers[i].sealed = true
	c.checkSealed()
}

// anySealed reports whether some server reported the loglet sealed: someone started a
// seal, which the sequencer finishes.
func (c *seqCore) anySealed() bool {
	for j := range c.servers {
		if c.servers[j].sealed {
			return true
		}
	}
	return false
}

// usable counts servers that may take stores: not sealed and not failing.
func (c *seqCore) usable() int {
	u := 0
	for j := range c.servers {
		if s := &c.servers[j]; !s.sealed && s.failures == 0 {
			u++
		}
	}
	return u
}

// updateAvailability tracks since when fewer than r servers are usable while appends are
// pending.
func (c *seqCore) updateAvailability(now time.Time) {
	if c.pending() == 0 || c.usable() >= c.q.r || !c.state.acceptsCommits() {
		c.unavailableSince = time.Time{}
		return
	}
	if c.unavailableSince.IsZero() {
		c.unavailableSince = now
	}
}

// tick fails the pending appends once the loglet was write-unavailable for too long. It
// reports whether it did.
func (c *seqCore) tick(now time.Time) bool {
	c.updateAvailability(now)
	if c.unavailableSince.IsZero() || now.Sub(c.unavailableSince) < c.cfg.writeUnavailable {
		return false
	}
	// The pending batches cannot commit later either: their offsets would stay a hole that
	// blocks every later batch, so the whole sequencer is done.
	c.failPending(func(*batch) error {
		return fmt.Errorf("fewer than %d log servers usable for %v: %w", c.q.r, c.cfg.writeUnavailable, bifrost.ErrReconfigurationNeeded)
	})
	c.state = seqFailed
	c.unavailableSince = time.Time{}
	return true
}

// nextInfo returns the global tail to push to server i with a GetLogletInfo, if one is
// due: after commits stopped for tailPushDelay and the server has not seen the tail, or
// when the server was silent for checkSealInterval (to notice a seal by another node).
func (c *seqCore) nextInfo(i int, now time.Time) (bifrost.Offset, bool) {
	s := &c.servers[i]
	if c.state == seqClosed || s.info || s.stores > 0 || s.sealed || now.Before(s.retryAt) {
		return 0, false
	}
	push := s.sentGlobal < c.global && !now.Before(c.lastCommit.Add(c.cfg.tailPushDelay))
	check := !now.Before(s.lastReply.Add(c.cfg.checkSealInterval))
	if !push && !check {
		return 0, false
	}
	s.info = true
	return c.global, true
}

// onInfo feeds the answer to a GetLogletInfo of nextInfo that carried global. Only a
// delivered push counts: a lost one is retried after the backoff.
func (c *seqCore) onInfo(i int, global bifrost.Offset, resp *wire.LogletInfo, err error, now time.Time) {
	s := &c.servers[i]
	s.info = false
	if err != nil || resp == nil {
		c.failed(i, now)
		return
	}
	s.lastReply = now
	switch {
	case resp.Sealed || resp.Status == wire.StatusSealed:
		s.sealed = true
		c.checkSealed()
	case resp.Status == wire.StatusOK:
		s.sentGlobal = max(s.sentGlobal, global)
		s.failures, s.retryAt = 0, time.Time{}
	default:
		c.failed(i, now)
	}
	c.updateAvailability(now)
}

// wakeAt returns when server i may next have something to send by time alone (zero: not
// by time).
func (c *seqCore) wakeAt(i int) time.Time {
	s := &c.servers[i]
	if c.state == seqClosed || s.sealed || s.info || s.stores > 0 {
		return time.Time{} // an answer or an enqueue wakes the sender
	}
	var lazyAt time.Time // a quiet standby's next batch, or its hedge deadline
	if c.state.acceptsCommits() {
		switch {
		case c.quiet(i):
			if max(s.acked, s.sentMax, c.cache.start()) < c.global { // committed records it lacks
				lazyAt = s.lazyAt
			}
			if max(s.acked, c.global) < c.next { // it would take pending records once eager
				lazyAt = earliest(lazyAt, c.hedgeAt())
			}
		case max(s.acked, c.global) < c.next:
			return s.retryAt
		}
	}
	at := s.lastReply.Add(c.cfg.checkSealInterval)
	if s.sentGlobal < c.global {
		at = c.lastCommit.Add(c.cfg.tailPushDelay)
	}
	at = earliest(at, lazyAt)
	if at.Before(s.retryAt) {
		at = s.retryAt
	}
	return at
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// earliest returns the earlier of a and b, ignoring zero times.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// sleepUntil returns when the idle sender of server i must look again by time alone
// (zero: only when woken), given that it sleeps now: the gather deadline while it gathers
// (then gathering is set), else wakeAt, but no later than one push delay from now while
// records are uncommitted or commits are recent. Such a sender need not be woken by each
// commit to learn when the tail push is due (see needsWake).
func (c *seqCore) sleepUntil(i int, now time.Time) (at time.Time, gathering bool) {
	if at := c.gatherUntil(i, now); !at.IsZero() {
		return at, true
	}
	at = c.wakeAt(i)
	if at.IsZero() {
		return at, false
	}
	if c.next > c.global || now.Before(c.lastCommit.Add(c.cfg.tailPushDelay)) {
		if soon := now.Add(c.cfg.tailPushDelay); soon.Before(at) {
			at = soon
		}
	}
	return at, false
}

// needsWake reports whether the sender of server i, asleep until armed (zero: until
// woken), must be woken after a commit to push the new tail in time.
func (c *seqCore) needsWake(armed time.Time) bool {
	return !armed.IsZero() && armed.After(c.lastCommit.Add(c.cfg.tailPushDelay))
}

// startDrain stops taking appends for a local seal; in-flight ones may still commit.
func (c *seqCore) startDrain() {
	if c.state == seqOpen {
		c.state = seqDraining
	}
}

// freeze ends the sequencer for a local seal: the global tail becomes final and every
// uncommitted batch fails. It returns the final tail.
func (c *seqCore) freeze() bifrost.Offset {
	if c.state <= seqDraining {
		c.failPending(sealedErr)
		c.state = seqFrozen
	}
	return c.global
}

// markSealed records that an f-majority of servers is sealed.
func (c *seqCore) markSealed() {
	if c.state < seqSealed || c.state == seqFailed {
		c.failPending(sealedErr)
		c.state = seqSealed
	}
}

// close fails everything pending with ErrClosed.
func (c *seqCore) close() {
	c.failPending(func(*batch) error { return bifrost.ErrClosed })
	c.state = seqClosed
}
