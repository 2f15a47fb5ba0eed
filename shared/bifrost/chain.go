package bifrost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/metadata"
)

// Options configure a Bifrost.
type Options struct {
	// Meta holds the logs object (metadata.KeyLogs) with every log's segment chain.
	Meta metadata.Store
	// Registry opens the loglets of the segments.
	Registry Registry
	// Logger is the parent logger (a "bifrost" child is used); nil discards.
	Logger hclog.Logger
	// Reconfigure builds the successor of a writer log's tail segment: it chooses the
	// provider, nodeset and sequencer. SealAndExtend then sets its BaseLSN, Index and
	// LogletID. prev is the zero Segment when the log has no segment yet (sealedTail is
	// then 1). Without it, writer logs behave like plain ones: they wait for someone else
	// to extend a sealed chain.
	Reconfigure func(ctx context.Context, logID uint32, prev metadata.Segment, sealedTail LSN) (metadata.Segment, error)
	// RetryInterval is the first wait after a failed reconfiguration or a failed loglet
	// open; it doubles up to 20× (default 50ms).
	RetryInterval time.Duration
	// ReconfigureTimeout bounds one attempt to seal and extend a chain (default 30s).
	ReconfigureTimeout time.Duration
	// RefusedRetryInterval is how long a plain log waits for a newer chain after its tail
	// segment refused appends without being sealed (its sequencer unreachable for a
	// moment, or not running yet) before it tries that segment again (default 250ms).
	RefusedRetryInterval time.Duration
}

// Bifrost is a node's access to its virtual logs: it caches the segment chains from the
// metadata store (watching for newer versions, never going back), opens the loglets of
// their segments and owns the goroutines that re-drive appends across reconfigurations.
// Close stops them.
type Bifrost struct {
	opts Options
	log  hclog.Logger

	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	// goMu makes starting a goroutine and Close's wait exclusive, so that no goroutine
	// starts after Close began waiting.
	goMu   sync.Mutex
	closed bool
	wg     sync.WaitGroup

	chains  atomic.Pointer[chainState] // newest version seen; nil until the first read
	mu      sync.Mutex                 // guards changed, logs, writers, loglets
	changed chan struct{}              // closed and replaced when chains moves
	logs    map[uint32]*virtualLog
	writers map[uint32]*virtualLog
	loglets map[logletKey]Loglet
}

// chainState is one version of the logs object.
type chainState struct {
	version uint64
	logs    metadata.Logs
}

// chain returns the segment chain of logID (nil if none). It must not be modified.
func (c *chainState) chain(logID uint32) []metadata.Segment { return c.logs.Chains[logID] }

type logletKey struct {
	provider string
	id       uint64
}

// New starts a Bifrost: it begins watching the logs object at once.
func New(opts Options) *Bifrost {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 50 * time.Millisecond
	}
	if opts.ReconfigureTimeout <= 0 {
		opts.ReconfigureTimeout = 30 * time.Second
	}
	if opts.RefusedRetryInterval <= 0 {
		opts.RefusedRetryInterval = 250 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bifrost{
		opts:    opts,
		log:     opts.Logger.Named("bifrost"),
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		logs:    map[uint32]*virtualLog{},
		writers: map[uint32]*virtualLog{},
		loglets: map[logletKey]Loglet{},
	}
	b.spawn(b.watch)
	return b
}

// Close stops the watch and the append drivers and waits for them. Appends not yet handed
// to a loglet fail with ErrClosed, and so do later calls. The loglets' providers are not
// closed: they belong to the caller.
func (b *Bifrost) Close() error {
	b.goMu.Lock()
	b.closed = true
	b.goMu.Unlock()
	b.cancel()
	b.wg.Wait()
	return nil
}

// spawn runs f on a goroutine owned by b, unless b is closed. It reports whether it did.
func (b *Bifrost) spawn(f func()) bool {
	b.goMu.Lock()
	defer b.goMu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

// watch keeps the chain cache current until Close.
func (b *Bifrost) watch() {
	w := metadata.Watcher{OnError: func(err error) { b.log.Debug("watch logs", "error", err) }}
	w.Watch(b.ctx, b.opts.Meta, metadata.KeyLogs, func(v metadata.Versioned) {
		var logs metadata.Logs
		if err := json.Unmarshal(v.Value, &logs); err != nil {
			b.log.Error("decode logs object", "version", v.Version, "error", err)
			return
		}
		b.install(v.Version, logs)
	})
}

// install makes version the cached chains unless a newer one is cached already.
func (b *Bifrost) install(version uint64, logs metadata.Logs) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.chains.Load(); cur != nil && cur.version >= version {
		return
	}
	b.chains.Store(&chainState{version: version, logs: logs})
	close(b.changed)
	b.changed = make(chan struct{})
}

// waitNewer returns the cached chains once their version is above version.
func (b *Bifrost) waitNewer(ctx context.Context, version uint64) (*chainState, error) {
	for {
		b.mu.Lock()
		cur, ch := b.chains.Load(), b.changed
		b.mu.Unlock()
		if cur != nil && cur.version > version {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// current returns the cached chains, waiting for the first read of the logs object.
func (b *Bifrost) current(ctx context.Context) (*chainState, error) {
	if cur := b.chains.Load(); cur != nil {
		return cur, nil
	}
	return b.waitNewer(ctx, 0)
}

// refresh reads the logs object from the store into the cache and returns the newest
// cached chains (which may be newer still, never older).
func (b *Bifrost) refresh(ctx context.Context) (*chainState, error) {
	v, err := b.opts.Meta.Get(ctx, metadata.KeyLogs)
	if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	if v.Version > 0 {
		var logs metadata.Logs
		if err := json.Unmarshal(v.Value, &logs); err != nil {
			return nil, fmt.Errorf("decode logs v%d: %w", v.Version, err)
		}
		b.install(v.Version, logs)
	}
	return b.current(ctx)
}

// Chain returns the newest known segment chain of a log (nil if it has no segment),
// waiting for the first read of the logs object.
func (b *Bifrost) Chain(ctx context.Context, logID uint32) ([]metadata.Segment, error) {
	cs, err := b.current(ctx)
	if err != nil {
		return nil, fmt.Errorf("bifrost: chain of log %d: %w", logID, err)
	}
	return append([]metadata.Segment(nil), cs.chain(logID)...), nil
}

// CachedChain returns the cached segment chain of a log without waiting: nil before the
// logs object was first read, or for a log without segments.
func (b *Bifrost) CachedChain(logID uint32) []metadata.Segment {
	cs := b.chains.Load()
	if cs == nil {
		return nil
	}
	return append([]metadata.Segment(nil), cs.chain(logID)...)
}

// Segment returns segment index of a log's chain, from the cache or, if the cache has no
// such segment yet, from the store. ok is false if the chain has none.
func (b *Bifrost) Segment(ctx context.Context, logID, index uint32) (metadata.Segment, bool, error) {
	find := func(cs *chainState) (metadata.Segment, bool) {
		for _, s := range cs.chain(logID) {
			if s.Index == index {
				return s, true
			}
		}
		return metadata.Segment{}, false
	}
	cs, err := b.current(ctx)
	if err != nil {
		return metadata.Segment{}, false, fmt.Errorf("bifrost: segment %d of log %d: %w", index, logID, err)
	}
	if s, ok := find(cs); ok {
		return s, true, nil
	}
	if cs, err = b.refresh(ctx); err != nil {
		return metadata.Segment{}, false, fmt.Errorf("bifrost: segment %d of log %d: %w", index, logID, err)
	}
	s, ok := find(cs)
	return s, ok, nil
}

// open returns the loglet of seg, opening it once per provider and loglet id.
func (b *Bifrost) open(ctx context.Context, seg metadata.Segment) (Loglet, error) {
	key := logletKey{seg.Provider, seg.LogletID}
	b.mu.Lock()
	l, ok := b.loglets[key]
	b.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := b.opts.Registry.Open(ctx, seg)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.loglets[key]; ok {
		return cur, nil
	}
	b.loglets[key] = l
	return l, nil
}

// Log returns the plain virtual log of logID: appends that hit a sealed segment wait for
// someone else to extend the chain. Every call with the same id returns the same Log.
func (b *Bifrost) Log(logID uint32) Log { return b.virtualLog(logID, false) }

// WriterLog returns the writer-mode virtual log of logID, for the node that leads its
// partition: an append refused because the tail segment is sealed or needs
// reconfiguration seals and extends the chain at once (with Options.Reconfigure) and is
// retried on the new segment, keeping the order of batches (later batches wait while an
// earlier one is retried). A log without segments gets its first one the same way, and a
// read that finds the tail segment sealed also triggers the extension. Every call with the
// same id returns the same Log.
//
// A batch refused with a *SealedError is settled against the sealed tail T: if all its
// offsets lie below T it was committed after all and succeeds with its LSN (re-appending
// it would duplicate it); if it starts at or above T it is re-appended whole. A
// multi-record batch that straddles T keeps its committed prefix and only the rest is
// re-appended: done reports the LSN of its first record, and its LSNs are then not
// contiguous if another writer appended to the new segment first. This relies on a loglet
// that refuses a batch also refusing every later one (Loglet.AppendAsync).
func (b *Bifrost) WriterLog(logID uint32) Log { return b.virtualLog(logID, true) }

func (b *Bifrost) virtualLog(logID uint32, writer bool) *virtualLog {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.logs
	if writer {
		m = b.writers
	}
	v, ok := m[logID]
	if !ok {
		v = &virtualLog{b: b, id: logID, writer: writer}
		v.app.v = v
		m[logID] = v
	}
	return v
}

// errClosedOr returns ErrClosed once b is closed, else err: operations cut short by Close
// report it rather than a context error.
func (b *Bifrost) errClosedOr(err error) error {
	if b.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ErrClosed
	}
	return err
}

// backoff waits before attempt n+1 (n >= 1) of something that failed, or until ctx ends.
func (b *Bifrost) backoff(ctx context.Context, n int) error {
	d := b.opts.RetryInterval << min(n-1, 4)
	t := time.NewTimer(min(d, 20*b.opts.RetryInterval))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
