package replicated

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
)

// sequencer is the I/O shell around seqCore for a loglet whose sequencer runs on this
// node: it admits appends (blocking for permits), runs one sender goroutine per log
// server (sender.go) and a supervisor that fails appends when the nodeset stays
// write-unavailable, and delivers completions in order outside its lock (completer).
type sequencer struct {
	l *Loglet

	mu   sync.Mutex
	core *seqCore
	// changed is closed and replaced whenever permits are released, the tail moves or the
	// state changes: blocked appends and drains wait on it.
	changed    chan struct{}
	lastGlobal bifrost.Offset
	lastState  seqState
	lastFlight int
	done       *completer
	finishing  bool // a partial seal was seen and is being finished

	wake []chan struct{} // per server: something to send may have appeared
	// armed is when each sender's timer fires (zero: it waits to be woken); a sender is
	// running while its entry is zero too.
	armed []time.Time
	kick  chan struct{} // supervisor: appends are pending
	// watching is set while the supervisor's timer runs (appends were pending at its last
	// look): an append then needs no kick, which would cost a wake-up per append.
	watching bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newSequencer(l *Loglet) *sequencer {
	o := &l.p.opts
	cfg := coreConfig{
		maxOffset:          o.MaxOffset,
		maxInflightRecords: o.MaxInflightRecords,
		maxInflightBytes:   o.MaxInflightBytes,
		maxStoreRecords:    o.MaxStoreRecords,
		maxStoreBytes:      o.MaxStoreBytes,
		maxStores:          o.MaxStoresInFlight,
		cacheBytes:         o.CacheBytes,
		writeUnavailable:   o.WriteUnavailableTimeout,
		tailPushDelay:      o.TailPushDelay,
		checkSealInterval:  o.CheckSealInterval,
		hedgeDelay:         o.HedgeDelay,
		lazyDelay:          o.StandbyDelay,
		gather:             !o.NoGather,
	}
	if !o.FloodStores {
		// Readers try the servers in read order: the preferred ones, which have the newest
		// records first, are the first r of it (this node's own log server among them).
		cfg.standby = make([]bool, l.q.n)
		for _, i := range l.readOrder[l.q.r:] {
			cfg.standby[i] = true
		}
	}
	s := &sequencer{
		l:       l,
		core:    newSeqCore(cfg, l.q, newBackoff(o.RetryMin, o.RetryMax, o.Seed^l.id), time.Now()),
		changed: make(chan struct{}),
		wake:    make([]chan struct{}, l.q.n),
		armed:   make([]time.Time, l.q.n),
		kick:    make(chan struct{}, 1),
	}
	s.done = newCompleter(func(err error) error { return fmt.Errorf("append to loglet %d: %w", l.id, err) })
	s.lastGlobal, s.lastState = s.core.global, s.core.state
	for i := range s.wake {
		s.wake[i] = make(chan struct{}, 1)
	}
	s.ctx, s.cancel = context.WithCancel(l.ctx)
	return s
}

func (s *sequencer) start() {
	s.wg.Add(1 + len(s.wake))
	go s.runSupervisor()
	for i := range s.wake {
		go s.runSender(i)
	}
}

// close fails pending appends with ErrClosed and stops the goroutines.
func (s *sequencer) close() {
	s.mu.Lock()
	if s.core.state != seqClosed {
		s.core.close()
		s.settle()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.flush()
}

// settle publishes what a core call changed: completions to the completer (in decision
// order; the caller delivers them after unlocking), the tail watch, waiters and senders.
// Called with s.mu held after every core mutation.
func (s *sequencer) settle() {
	c := s.core
	s.done.push(c.takeCompletions())
	if c.state == seqOpen && !s.finishing && c.anySealed() {
		// A seal started elsewhere (its sealer may have died): finish it, draining first,
		// rather than run on with fewer servers (BIFROST.md §4 check-seal).
		s.finishing = true
		s.wg.Add(1)
		go s.finishSeal()
	}
	if c.global == s.lastGlobal && c.state == s.lastState && c.inflight >= s.lastFlight {
		s.lastFlight = c.inflight
		return
	}
	if c.state != s.lastState {
		select { // the supervisor ends with the open state
		case s.kick <- struct{}{}:
		default:
		}
		s.l.log.Debug("sequencer state", "state", c.state.String(), "global_tail", c.global)
		if c.state == seqFailed {
			s.l.log.Warn("loglet write-unavailable, appends need a reconfiguration", "global_tail", c.global)
		}
	}
	s.l.watch.raise(c.global)
	if c.state == seqSealed {
		s.l.watch.seal(c.global)
		// Nothing can be pending any more: release what only appends need. Readers of
		// the sealed segment read from the log servers.
		c.cache.evictOver(0, c.global)
	}
	stateChanged := c.state != s.lastState
	s.lastGlobal, s.lastState, s.lastFlight = c.global, c.state, c.inflight
	close(s.changed)
	s.changed = make(chan struct{})
	if stateChanged {
		s.wakeAll()
		return
	}
	// A commit alone gives a sender nothing to do at once: one with stores in flight is
	// woken by their answers, and the tail push is due only once commits stop. Only a
	// sender asleep for longer than that must be woken to rearm (waking all of them cost
	// three wake-ups per commit).
	for i, at := range s.armed {
		if c.needsWake(at) {
			s.wakeOne(i)
		}
	}
}

func (s *sequencer) wakeOne(i int) {
	select {
	case s.wake[i] <- struct{}{}:
	default:
	}
}

func (s *sequencer) wakeAll() {
	for i := range s.wake {
		s.wakeOne(i)
	}
}

// flush delivers the queued completions on this goroutine. Called without s.mu, and not by
// the goroutines that talk to log servers (they use flushAsync).
func (s *sequencer) flush() { s.done.deliver() }

// flushAsync delivers the queued completions on another goroutine: for senders and the
// supervisor, which a callback must never block.
func (s *sequencer) flushAsync() { s.done.deliverAsync(&s.wg) }

// appendAsync admits a batch (waiting for permits while too much is in flight, or until
// ctx ends) and assigns its offsets. payloads are copied.
func (s *sequencer) appendAsync(ctx context.Context, payloads [][]byte, done func(bifrost.Offset, error)) {
	if len(payloads) == 0 {
		s.mu.Lock()
		s.core.reject(done, ErrEmptyBatch)
		s.settle()
		s.mu.Unlock()
		s.flush()
		return
	}
	owned, size := copyPayloads(payloads)
	s.mu.Lock()
	for {
		ok, err := s.core.admit(len(owned), size)
		if err == nil && !ok {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			}
			s.mu.Lock()
			if err == nil {
				continue
			}
		}
		if err != nil {
			s.core.reject(done, err)
			s.settle()
			s.mu.Unlock()
			s.flush()
			return
		}
		break
	}
	now := time.Now()
	s.core.enqueue(owned, size, done, now)
	s.core.updateAvailability(now)
	s.lastFlight = s.core.inflight
	kick := !s.watching
	s.watching = true
	var wake uint64 // bit i: wake sender i
	for i, at := range s.armed {
		if s.core.wakeOnAppend(i, at, now) {
			wake |= 1 << i
		}
	}
	s.mu.Unlock()
	for i := range s.wake {
		if wake&(1<<i) != 0 {
			s.wakeOne(i)
		}
	}
	if kick {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// copyPayloads copies the caller's payloads into one buffer: the records stay cached and
// are resent until committed, so they must not alias buffers the caller may reuse.
func copyPayloads(payloads [][]byte) ([][]byte, int64) {
	var size int64
	for _, p := range payloads {
		size += int64(len(p))
	}
	buf := make([]byte, 0, size)
	out := make([][]byte, len(payloads))
	for i, p := range payloads {
		start := len(buf)
		buf = append(buf, p...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out, size
}

// tail returns the sequencer's view: authoritative on this node.
func (s *sequencer) tail() (bifrost.TailState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.core.state {
	case seqClosed:
		return bifrost.TailState{}, bifrost.ErrClosed
	case seqSealed:
		return bifrost.TailState{Offset: s.core.global, Sealed: true}, nil
	}
	return bifrost.TailState{Offset: s.core.global}, nil
}

// cached returns committed records [from, to) from the record cache (shortened to what
// is cached).
func (s *sequencer) cached(from, to bifrost.Offset) []bifrost.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	to = min(to, s.core.global)
	ps := s.core.cache.slice(from, to)
	out := make([]bifrost.Record, len(ps))
	for i, p := range ps {
		out[i] = bifrost.Record{Offset: from + bifrost.Offset(i), Payload: p}
	}
	return out
}

// evictBelow drops trimmed records from the cache.
func (s *sequencer) evictBelow(o bifrost.Offset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.core.cache.evictBelow(min(o, s.core.global))
}

// finishSeal seals the loglet after a server reported a seal this sequencer did not make.
func (s *sequencer) finishSeal() {
	defer s.wg.Done()
	s.l.log.Info("log server reports the loglet sealed; finishing the seal")
	if _, err := s.l.Seal(s.ctx); err != nil && s.ctx.Err() == nil {
		s.l.log.Warn("finishing a partial seal failed", "error", err)
	}
}

// runSupervisor checks write availability while appends are pending.
func (s *sequencer) runSupervisor() {
	defer s.wg.Done()
	interval := min(100*time.Millisecond, s.l.p.opts.WriteUnavailableTimeout/4)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		s.mu.Lock()
		s.core.tick(time.Now())
		pending := s.core.pending() > 0
		ended := s.core.state >= seqFrozen // appends are refused for good: nothing can be pending again
		s.watching = pending
		s.settle()
		s.mu.Unlock()
		s.flushAsync()
		if ended {
			return
		}
		if pending {
			t.Reset(interval)
		}
	}
}
