package localloglet

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"gorestate.dev/shared/bifrost"
)

// Store is one node's durable log: every local loglet of the node shares its files and its
// writer goroutine. It is safe for concurrent use.
//
// Lock order: Loglet.appendMu → Store.qmu; Store.trimMu → Store.sealMu → Loglet.mu and
// Store.segMu → segment.mu. The writer goroutine takes at most one Loglet.mu at a time.
type Store struct {
	dir  string
	opts Options
	lock *os.File

	mu      sync.Mutex // guards loglets
	loglets map[uint64]*Loglet

	qmu          sync.Mutex // guards the fields below up to kick
	queue        []appendReq
	closing      bool
	failErr      error
	writerIdle   bool
	writerExited bool
	kick         chan struct{}

	failed     chan struct{} // closed when failErr is set
	closed     chan struct{} // closed once Close has drained the writer
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	segMu  sync.RWMutex // guards segs and active
	segs   map[uint32]*segment
	active *segment

	trimMu sync.Mutex // serializes trims; guards trims
	trims  map[uint64]bifrost.Offset

	sealMu sync.Mutex // serializes seal persistence; guards seals
	seals  map[uint64]bifrost.Offset

	// Owned by the writer goroutine (and by Open before it starts).
	writeSeq uint64 // sequence number of the last commit record
	buf      []byte
	spare    []appendReq
	cache    cacheFIFO
	rolled   []*segment // segments rolled away from in the current batch

	syncs, batches, records, bytes, diskReads, summaryErrors atomic.Uint64
}

// Stats are cumulative counters of a store since Open.
type Stats struct {
	Syncs   uint64 // fsync calls on segment files
	Batches uint64 // group commits: one write call (and fsync) each, two when rolling over
	Records uint64 // records made durable
	Bytes   uint64 // encoded bytes made durable
	// DiskReads counts ReadAt calls by readers: reads the payload cache could not serve.
	DiskReads uint64
	// SummaryErrors counts segment summaries that could not be written (each costs the
	// next Open a scan of that segment).
	SummaryErrors uint64
}

// Open opens (creating it if needed) the store in dir and recovers its contents.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	trims, err := trimFile.load(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	seals, err := sealFile.load(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{
		dir:        dir,
		opts:       opts,
		lock:       lock,
		loglets:    make(map[uint64]*Loglet),
		kick:       make(chan struct{}, 1),
		failed:     make(chan struct{}),
		closed:     make(chan struct{}),
		writerDone: make(chan struct{}),
		segs:       make(map[uint32]*segment),
		trims:      trims,
		seals:      seals,
	}
	if err := s.recover(); err != nil {
		for _, sg := range s.segs {
			sg.close(segmentClosed)
		}
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	go s.runWriter()
	return s, nil
}

// Loglet returns the loglet with the given id, creating it on first use. Every call with
// the same id returns the same *Loglet.
func (s *Store) Loglet(id uint64) *Loglet {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.loglets[id]
	if !ok {
		l = newLoglet(s, id, 0, 1)
		s.loglets[id] = l
	}
	return l
}

// Holds reports whether the store has durable records of loglet id (trimmed ones
// included), without creating the loglet.
func (s *Store) Holds(id uint64) bool {
	s.mu.Lock()
	l, ok := s.loglets[id]
	s.mu.Unlock()
	return ok && l.Tail() > 1
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Syncs:         s.syncs.Load(),
		Batches:       s.batches.Load(),
		Records:       s.records.Load(),
		Bytes:         s.bytes.Load(),
		DiskReads:     s.diskReads.Load(),
		SummaryErrors: s.summaryErrors.Load(),
	}
}

// Close waits for every append enqueued before it to be committed (or failed), then closes
// the files. Later operations fail with bifrost.ErrClosed; blocked reads return it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.closing = true
		wake := s.writerIdle
		s.writerIdle = false
		s.qmu.Unlock()
		if wake {
			s.wakeWriter()
		}
		<-s.writerDone
		close(s.closed)

		s.trimMu.Lock()
		defer s.trimMu.Unlock()
		s.sealMu.Lock() // no seal file written once the lock is released
		defer s.sealMu.Unlock()
		s.segMu.Lock()
		defer s.segMu.Unlock()
		var errs []error
		for _, sg := range s.segs {
			errs = append(errs, sg.close(segmentClosed))
		}
		errs = append(errs, s.lock.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// isClosed reports whether Close has drained the writer.
func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// failure returns the error that made the store unusable, or nil.
func (s *Store) failure() error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.failErr
}
