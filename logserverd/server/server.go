// Package server owns a log server's loglets: the per-loglet state (local tail, staging
// tail, known global tail, seal, pinned sequencer, trim point) and the acceptance rules of
// BIFROST.md §2 that every request goes through. It implements wire.LogServer on top of a
// logstore.Store; replies to writes are sent only once the store has synced them.
//
// Each loglet's state is guarded by its own mutex, so requests for one loglet are
// serialized while different loglets proceed in parallel; the only blocking steps (waiting
// for the disk, for a tail, for a seal) happen with the mutex released.
package server

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Limits of one answer.
const (
	// maxReadBytes bounds the payload of one GetRecords answer whatever the caller asks.
	maxReadBytes = 32 << 20
	// maxItems bounds the records of a GetRecords answer and the runs of a digest; one
	// item is kept for the leading trim gap.
	maxItems = wire.MaxItems - 1
)

// Options tune a Server; zero values take the defaults.
type Options struct {
	Logger hclog.Logger
	// DataLoss makes the server answer every request with StatusDataLoss: its storage was
	// lost, so it must never be counted as a replica (an empty store would claim "open,
	// tail 1" for every loglet).
	DataLoss bool
	// Lost, if set, names loglets whose records this server lost (its disk was wiped while
	// they existed): it answers StatusDataLoss for them alone and serves the loglets
	// created after it came back as any server does.
	Lost func(loglet uint64) bool
	// GlobalTailInterval is how often known global tails are written to the store (10s):
	// best-effort, recovery only needs them to be no higher than the truth.
	GlobalTailInterval time.Duration
	// Now is the clock Store deadlines are checked against (time.Now).
	Now func() time.Time
}

// Server is one node's log server. It is safe for concurrent use.
type Server struct {
	store  *logstore.Store
	opts   Options
	logger hclog.Logger

	mu      sync.Mutex // guards loglets
	loglets map[uint64]*loglet

	closeOnce sync.Once
	closed    chan struct{} // releases every waiting request
	bgDone    chan struct{}
}

var _ wire.LogServer = (*Server)(nil)

// New returns a server over store; the caller keeps owning store and closes it after
// Close.
func New(store *logstore.Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.GlobalTailInterval <= 0 {
		opts.GlobalTailInterval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		store:   store,
		opts:    opts,
		logger:  opts.Logger,
		loglets: map[uint64]*loglet{},
		closed:  make(chan struct{}),
		bgDone:  make(chan struct{}),
	}
	go s.persistGlobalTails()
	return s
}

// Close answers every waiting request with bifrost.ErrClosed and writes the known global
// tails one last time. Requests still running may complete.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		<-s.bgDone
		s.flushGlobalTails(true)
	})
	return nil
}

// loglet is one loglet's state. Durable fields only move once the store has synced them;
// the others are this process's view.
type loglet struct {
	id uint64
	mu sync.Mutex

	loaded bool
	// Durable.
	localTail       bifrost.Offset // 1 + highest durable offset (may jump over holes)
	sealed          bool
	trimDurable     bifrost.Offset
	globalPersisted bifrost.Offset
	// Volatile.
	staging    bifrost.Offset // 1 + highest offset accepted (enqueued), >= localTail
	globalTail bifrost.Offset
	// sequencer is pinned by the first store (in memory at once, on disk with that
	// store's records).
	sequencer *metadata.NodeID
	sealing   bool           // a seal is enqueued, not yet durable
	trimPoint bifrost.Offset // highest accepted trim point; reads clamp to it at once

	changed chan struct{} // closed and replaced on every change, to wake waiters
}

// broadcast wakes everyone waiting on the loglet. Called with mu held.
func (l *loglet) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// raiseGlobal raises the known global tail. Called with mu held.
func (l *loglet) raiseGlobal(t bifrost.Offset) {
	if t > l.globalTail {
		l.globalTail = t
		l.broadcast()
	}
}

// header is the response header for status. Called with mu held.
func (l *loglet) header(status wire.Status) wire.ResponseHeader {
	return wire.ResponseHeader{Status: status, LocalTail: l.localTail, KnownGlobalTail: l.globalTail, Sealed: l.sealed}
}

// lock returns the loglet locked, loading its state from the store on first use.
func (s *Server) lock(id uint64) (*loglet, error) {
	s.mu.Lock()
	l, ok := s.loglets[id]
	if !ok {
		l = &loglet{id: id, changed: make(chan struct{})}
		s.loglets[id] = l
	}
	s.mu.Unlock()
	l.mu.Lock()
	if l.loaded {
		return l, nil
	}
	st, err := s.store.LoadLoglet(id)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	l.loaded = true
	l.localTail, l.staging = st.LocalTail, st.LocalTail
	l.sealed = st.Sealed
	l.trimPoint, l.trimDurable = st.TrimPoint, st.TrimPoint
	l.globalTail, l.globalPersisted = st.GlobalTail, st.GlobalTail
	l.sequencer = st.Sequencer
	return l, nil
}

// wait blocks until cond holds, ctx ends, the server closes or the store fails (cond sees
// the failure through storeFailed). It is called with l.mu held and returns with it held.
func (s *Server) wait(ctx context.Context, l *loglet, cond func() bool) error {
	failed := s.store.Failed()
	for !cond() {
		ch := l.changed
		l.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-failed:
			failed = nil // cond decides what a failure means; wake once
		case <-ctx.Done():
			err = ctx.Err()
		case <-s.closed:
			err = bifrost.ErrClosed
		}
		l.mu.Lock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) storeFailed() bool { return s.store.Err() != nil }

// persistGlobalTails writes the known global tails every GlobalTailInterval until Close.
func (s *Server) persistGlobalTails() {
	defer close(s.bgDone)
	t := time.NewTicker(s.opts.GlobalTailInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flushGlobalTails(false)
		case <-s.closed:
			return
		}
	}
}

// lostLoglet reports whether requests about loglet get StatusDataLoss.
func (s *Server) lostLoglet(loglet uint64) bool {
	return s.opts.DataLoss || (s.opts.Lost != nil && s.opts.Lost(loglet))
}

// flushGlobalTails enqueues the global tail of every loglet whose tail moved since it was
// last written; with wait it waits for them (bounded) so that a clean shutdown keeps them.
func (s *Server) flushGlobalTails(wait bool) {
	if s.opts.DataLoss {
		return
	}
	s.mu.Lock()
	ls := make([]*loglet, 0, len(s.loglets))
	for _, l := range s.loglets {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		l.mu.Lock()
		if l.loaded && l.globalTail > l.globalPersisted {
			tail := l.globalTail
			wg.Add(1)
			err := s.store.Enqueue(logstore.Write{Loglet: l.id, GlobalTail: tail}, func(err error) {
				defer wg.Done()
				if err != nil {
					return
				}
				l.mu.Lock()
				l.globalPersisted = max(l.globalPersisted, tail)
				l.mu.Unlock()
			})
			if err != nil {
				wg.Done()
			}
		}
		l.mu.Unlock()
	}
	if wait {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.logger.Warn("global tails not written within 5s of close")
		}
	}
}
