package replicated

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
)

// ErrEmptyBatch is returned for an append without payloads: it would have no offset.
var ErrEmptyBatch = errors.New("replicated: empty batch")

// Loglet is one replicated loglet as seen from this node. It implements bifrost.Loglet.
// If this node is the loglet's sequencer it assigns offsets and replicates records itself;
// otherwise appends are forwarded to the sequencer's node. Reads, seal, find-tail and trim
// talk to the log servers directly from any node.
type Loglet struct {
	p      *Provider
	id     uint64
	seg    metadata.Segment
	params metadata.ReplicatedParams
	q      quorum
	log    hclog.Logger
	watch  *tailWatch

	seq    *sequencer      // non-nil when this node runs the sequencer
	remote *remoteAppender // non-nil otherwise

	// ctx ends when the loglet is closed; every goroutine of the loglet derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	trimPoint bifrost.Offset // highest trim point known on this node
	readAhead recordCache    // committed records fetched past what a reader asked for
	readOrder []int          // nodeset indexes in the order readers try them
	readIdx   int            // position in readOrder of the server readers use now
	// seqUnreachable: the last attempt to reach the remote sequencer failed or found no
	// sequencer there; without a failure detector it counts as the sequencer being dead.
	seqUnreachable bool
	bo             *backoff

	findMu sync.Mutex // one find-tail at a time
}

var _ bifrost.Loglet = (*Loglet)(nil)

func newLoglet(p *Provider, seg metadata.Segment) *Loglet {
	params := *seg.Replicated
	params.Nodeset = slices.Clone(params.Nodeset)
	l := &Loglet{
		p:      p,
		id:     seg.LogletID,
		seg:    seg,
		params: params,
		q:      newQuorum(len(params.Nodeset), params.Replication),
		log:    p.log.With("loglet", seg.LogletID),
		watch:  newTailWatch(),
		bo:     newBackoff(p.opts.RetryMin, p.opts.RetryMax, p.opts.Seed^seg.LogletID^0x5eed),
	}
	l.ctx, l.cancel = context.WithCancel(p.ctx)
	l.readOrder = readOrder(params.Nodeset, p.opts.Self.Name, p.opts.Seed^seg.LogletID)
	return l
}

// readOrder puts this node's own log server first (cheapest), then the others shuffled so
// that readers on different nodes spread over the nodeset.
func readOrder(nodeset []string, self string, seed uint64) []int {
	order := make([]int, 0, len(nodeset))
	for i, n := range nodeset {
		if n == self {
			order = append(order, i)
		}
	}
	rest := make([]int, 0, len(nodeset))
	for i, n := range nodeset {
		if n != self {
			rest = append(rest, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	return append(order, rest...)
}

// ID returns the loglet id.
func (l *Loglet) ID() uint64 { return l.id }

// Params returns the loglet's replication parameters.
func (l *Loglet) Params() metadata.ReplicatedParams {
	p := l.params
	p.Nodeset = slices.Clone(p.Nodeset)
	return p
}

// IsSequencer reports whether this node runs the loglet's sequencer.
func (l *Loglet) IsSequencer() bool { return l.seq != nil }

// KnownTail returns this node's view of the tail without asking anyone: it may be stale,
// never too high.
func (l *Loglet) KnownTail() bifrost.TailState { return l.watch.current() }

// AdoptSealedTail tells the loglet the sealed tail written into the segment chain, which
// is authoritative (BIFROST.md §4: different nodes may compute different sealed tails and
// the one compare-and-set into the chain wins). If this node computed a lower one, its
// readers then serve up to the chain's tail from the log servers: the node that wrote it
// repaired those records onto a write quorum. A lower tail is ignored (readers of the
// chain never read past it).
func (l *Loglet) AdoptSealedTail(tail bifrost.Offset) {
	if tail > 0 {
		l.watch.adopt(tail)
	}
}

func (l *Loglet) start() {
	if l.seq != nil {
		l.seq.start()
	} else {
		l.remote.start()
	}
}

func (l *Loglet) close() {
	if l.seq != nil {
		l.seq.close()
	} else {
		l.remote.close()
	}
	l.cancel()
}

// Append stores payloads and returns the first one's offset once all are committed. If
// ctx ends first it returns ctx's error, but the records may still be committed.
func (l *Loglet) Append(ctx context.Context, payloads [][]byte) (bifrost.Offset, error) {
	type result struct {
		first bifrost.Offset
		err   error
	}
	ch := make(chan result, 1)
	l.appendAsync(ctx, payloads, func(first bifrost.Offset, err error) { ch <- result{first, err} })
	select {
	case r := <-ch:
		return r.first, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("append to loglet %d: %w", l.id, ctx.Err())
	}
}

// AppendAsync enqueues payloads (copied) and calls done once they are committed or
// failed. Batches enqueued from one goroutine get increasing offsets and their done calls
// run in enqueue order. It blocks while too much is in flight. A sealed loglet refuses
// with a *bifrost.SealedError, a loglet that must be reconfigured with
// bifrost.ErrReconfigurationNeeded.
func (l *Loglet) AppendAsync(payloads [][]byte, done func(first bifrost.Offset, err error)) {
	start := time.Now()
	l.appendAsync(context.Background(), payloads, func(first bifrost.Offset, err error) {
		if err == nil {
			replicatedAppend.Observe(metrics.Since(start))
			replicatedRecords.Add(float64(len(payloads)))
			size := 0
			for _, p := range payloads {
				size += len(p)
			}
			replicatedBytes.Add(float64(size))
		}
		done(first, err)
	})
}

// The provider's series of the bifrost metrics, resolved once.
var (
	replicatedAppend  = bifrost.AppendSeconds.WithLabelValues(bifrost.ProviderReplicated)
	replicatedCommit  = bifrost.CommitSeconds.WithLabelValues(bifrost.ProviderReplicated)
	replicatedRecords = bifrost.RecordsAppended.WithLabelValues(bifrost.ProviderReplicated)
	replicatedBytes   = bifrost.BytesAppended.WithLabelValues(bifrost.ProviderReplicated)
)

func (l *Loglet) appendAsync(ctx context.Context, payloads [][]byte, done func(bifrost.Offset, error)) {
	if l.seq != nil {
		l.seq.appendAsync(ctx, payloads, done)
	} else {
		l.remote.appendAsync(ctx, payloads, done)
	}
}

// ResumeAppends lets appends through again after a remote append failed for want of
// reconfiguration (bifrost.Resumer). A sequencer on this node refuses for good instead.
func (l *Loglet) ResumeAppends() {
	if l.remote != nil {
		l.remote.resume()
	}
}

var _ bifrost.Resumer = (*Loglet)(nil)

// FindTail returns the committed tail. On the sequencer's node the sequencer's view is
// authoritative; elsewhere it asks the sequencer, or the log servers (BIFROST.md §4).
func (l *Loglet) FindTail(ctx context.Context) (bifrost.TailState, error) {
	if t := l.watch.current(); t.Sealed {
		return t, nil // final (possibly adopted from the chain)
	}
	if l.seq != nil {
		t, err := l.seq.tail()
		if err != nil {
			return t, fmt.Errorf("find tail of loglet %d: %w", l.id, err)
		}
		return t, nil
	}
	t, err := l.findTail(ctx, true)
	if err != nil {
		return t, fmt.Errorf("find tail of loglet %d: %w", l.id, err)
	}
	return t, nil
}

// learnGlobal raises the known global tail from a log server's response header. On the
// sequencer's node the sequencer alone moves it.
func (l *Loglet) learnGlobal(o bifrost.Offset) {
	if l.seq == nil {
		l.watch.raise(o)
	}
}

func (l *Loglet) alive(node string) bool {
	return l.p.opts.Alive == nil || l.p.opts.Alive(node)
}

// sequencerGone reports that the loglet's sequencer will never run again: a later life of
// this node, or what the Gone option says.
func (l *Loglet) sequencerGone() bool {
	seq, self := l.params.Sequencer, l.p.opts.Self
	if seq.Name == self.Name && seq.Generation < self.Generation {
		return true
	}
	return l.p.opts.Gone != nil && l.p.opts.Gone(seq)
}

// sequencerDead reports the failure detector's verdict on the sequencer's node, or
// without one whether the last attempt to reach it failed.
func (l *Loglet) sequencerDead() bool {
	if l.p.opts.Alive != nil {
		return !l.p.opts.Alive(l.params.Sequencer.Name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seqUnreachable
}

func (l *Loglet) retryDelay(attempt int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bo.delay(attempt)
}

// sleep pauses for d or until ctx or the loglet ends.
func (l *Loglet) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return bifrost.ErrClosed
	}
}

// callServer runs f against log server node with the given timeout, unless the failure
// detector reports the node dead.
func (l *Loglet) callServer(ctx context.Context, node string, timeout time.Duration, f func(context.Context, wire.LogServer) error) error {
	if !l.alive(node) {
		return errNodeDead
	}
	srv, err := l.p.net.LogServer(node)
	if err != nil {
		return fmt.Errorf("log server %s: %w", node, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := f(cctx, srv); err != nil {
		return fmt.Errorf("log server %s: %w", node, err)
	}
	return nil
}

// sendStore sends a store to log server node and calls done with its answer, exactly once
// and without blocking (see wire.StoreSender). Where the network offers it
// (wire.StoreSender) the store leaves before sendStore returns, so stores sent one after
// the other arrive in that order, and done runs on the goroutine that reads the answer.
func (l *Loglet) sendStore(ctx context.Context, node string, req *wire.Store, done func(*wire.Stored, error)) {
	if !l.alive(node) {
		done(nil, errNodeDead)
		return
	}
	srv, err := l.p.net.LogServer(node)
	if err != nil {
		done(nil, fmt.Errorf("log server %s: %w", node, err))
		return
	}
	answer := func(resp *wire.Stored, err error) {
		if err != nil {
			done(nil, fmt.Errorf("log server %s: %w", node, err))
			return
		}
		done(resp, nil)
	}
	if ss, ok := srv.(wire.StoreSender); ok {
		ss.SendStore(ctx, req, answer)
		return
	}
	go func() { answer(srv.Store(ctx, req)) }()
}

// scatter sends one request to every log server of the nodeset concurrently. A server's
// goroutine retries (with backoff, up to attempts tries; 0 = until ctx ends) while
// retryable says so, then hands its last answer to onReply, which runs on the calling
// goroutine and returns true once it has what it needs. scatter returns nil then, after
// stopping the other goroutines; errNoQuorum if every server was heard without onReply
// being satisfied; or ctx's error.
func scatter[R any](ctx context.Context, l *Loglet, attempts int,
	call func(ctx context.Context, i int, srv wire.LogServer) (R, error),
	retryable func(r R, err error) bool,
	onReply func(i int, r R, err error) bool,
) error {
	type reply struct {
		i   int
		r   R
		err error
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	replies := make(chan reply, l.q.n)
	for i, node := range l.params.Nodeset {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 1; ; attempt++ {
				var r R
				err := l.callServer(cctx, node, l.p.opts.RPCTimeout, func(ctx context.Context, srv wire.LogServer) error {
					var err error
					r, err = call(ctx, i, srv)
					return err
				})
				if cctx.Err() != nil {
					return
				}
				if !retryable(r, err) || (attempts > 0 && attempt >= attempts) {
					replies <- reply{i, r, err}
					return
				}
				if l.sleep(cctx, l.retryDelay(attempt)) != nil {
					return
				}
			}
		}()
	}
	for heard := 0; heard < l.q.n; {
		select {
		case rep := <-replies:
			heard++
			if onReply(rep.i, rep.r, rep.err) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-l.ctx.Done():
			return bifrost.ErrClosed
		}
	}
	return errNoQuorum
}

// errNoQuorum: every log server answered or gave up, and not enough of them agreed.
var errNoQuorum = errors.New("replicated: not enough log servers answered")
