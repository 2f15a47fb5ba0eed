package replicated

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Provider opens replicated loglets: one Loglet per loglet id for the provider's life. It
// implements bifrost.Provider; SequencerService answers the writers and find-tails of
// other nodes for the sequencers running here.
type Provider struct {
	opts Options
	log  hclog.Logger
	net  wire.Network

	ctx    context.Context // ends at Close; loglet goroutines derive from it
	cancel context.CancelFunc

	mu      sync.Mutex
	loglets map[uint64]*Loglet
	closed  bool
}

var _ bifrost.Provider = (*Provider)(nil)

// NewProvider returns a provider for node opts.Self. opts.Network is required.
func NewProvider(opts Options) *Provider {
	opts = opts.withDefaults()
	p := &Provider{
		opts:    opts,
		log:     opts.Logger.Named("replicated-loglet"),
		net:     opts.Network,
		loglets: map[uint64]*Loglet{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Kind returns bifrost.ProviderReplicated.
func (p *Provider) Kind() string { return bifrost.ProviderReplicated }

// Open returns the loglet of a replicated segment, the same one for every call with the
// same loglet id. It runs the loglet's sequencer here if the segment names this node's
// current life (name and generation) as sequencer; otherwise appends go to the sequencer's
// node, and writers here never take the sequencer over.
func (p *Provider) Open(ctx context.Context, seg metadata.Segment) (bifrost.Loglet, error) {
	l, err := p.open(ctx, seg)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (p *Provider) open(ctx context.Context, seg metadata.Segment) (*Loglet, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open loglet %d: %w", seg.LogletID, err)
	}
	if seg.Provider != bifrost.ProviderReplicated {
		return nil, fmt.Errorf("open loglet %d: segment of provider %q: %w", seg.LogletID, seg.Provider, errBadParams)
	}
	if err := validateParams(seg.Replicated); err != nil {
		return nil, fmt.Errorf("open loglet %d: %w", seg.LogletID, err)
	}
	if p.net == nil {
		return nil, fmt.Errorf("open loglet %d: provider has no network", seg.LogletID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("open loglet %d: %w", seg.LogletID, bifrost.ErrClosed)
	}
	if l, ok := p.loglets[seg.LogletID]; ok {
		if !sameParams(&l.params, seg.Replicated) {
			return nil, fmt.Errorf("open loglet %d: already open with other parameters (sequencer %s, nodeset %v): %w",
				seg.LogletID, l.params.Sequencer, l.params.Nodeset, errBadParams)
		}
		return l, nil
	}
	l := newLoglet(p, seg)
	if seg.Replicated.Sequencer == p.opts.Self {
		l.seq = newSequencer(l)
	} else {
		l.remote = newRemoteAppender(l)
	}
	if f := l.q.f; f == l.q.n && l.q.n > 1 {
		l.log.Warn("an f-majority is the whole nodeset: sealing this loglet needs every log server up",
			"nodeset", l.params.Nodeset, "replication", l.params.Replication)
	}
	l.log.Debug("open", "sequencer", l.params.Sequencer.String(), "local_sequencer", l.seq != nil,
		"nodeset", l.params.Nodeset, "replication", l.params.Replication)
	l.start()
	p.loglets[seg.LogletID] = l
	return l, nil
}

func sameParams(a, b *metadata.ReplicatedParams) bool {
	return a.Sequencer == b.Sequencer && a.Replication == b.Replication && slices.Equal(a.Nodeset, b.Nodeset)
}

// Loglet returns an open loglet by id.
func (p *Provider) Loglet(id uint64) (*Loglet, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.loglets[id]
	return l, ok
}

// Close stops every loglet: pending appends fail with bifrost.ErrClosed, blocked reads
// return it, and every goroutine of the provider has exited when Close returns.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ls := make([]*Loglet, 0, len(p.loglets))
	for _, l := range p.loglets {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
	p.cancel()
	return nil
}

// SequencerService returns the API this node offers to writers and find-tails on other
// nodes, for the sequencers running here. Requests for a loglet whose sequencer is not
// here (not open, or opened as a remote loglet) get StatusNotSequencer.
func (p *Provider) SequencerService() wire.Sequencer { return sequencerService{p} }

type sequencerService struct{ p *Provider }

func (s sequencerService) local(id uint64) *Loglet {
	l, ok := s.p.Loglet(id)
	if !ok || l.seq == nil {
		return nil
	}
	return l
}

// openForAppend returns the loglet of an Append forwarded here: the one open, or else,
// if the chain names this node's life as the segment's sequencer, the one it opens now.
func (s sequencerService) openForAppend(ctx context.Context, req *wire.Append) *Loglet {
	if _, open := s.p.Loglet(req.LogletID); open || s.p.opts.Segment == nil {
		return s.local(req.LogletID)
	}
	seg, ok, err := s.p.opts.Segment(ctx, req.LogID, req.SegmentIndex)
	if err != nil {
		s.p.log.Debug("look up the segment of a forwarded append", "log", req.LogID, "segment", req.SegmentIndex, "error", err)
		return nil
	}
	if !ok || seg.LogletID != req.LogletID || seg.Provider != bifrost.ProviderReplicated ||
		seg.Replicated == nil || seg.Replicated.Sequencer != s.p.opts.Self {
		return nil
	}
	if _, err := s.p.open(ctx, seg); err != nil {
		s.p.log.Debug("open the sequencer of a forwarded append", "loglet", req.LogletID, "error", err)
		return nil
	}
	return s.local(req.LogletID)
}

// Append appends through the local sequencer and answers once committed or refused.
// Statuses: Sealed for a sealed (or sealing) loglet with the batch's offset, Disabled when
// the loglet needs reconfiguration, NotSequencer when no sequencer runs here, Malformed for
// an empty batch. A ctx error is returned as an error (the batch may still commit).
func (s sequencerService) Append(ctx context.Context, req *wire.Append) (*wire.Appended, error) {
	l := s.openForAppend(ctx, req)
	if l == nil {
		return &wire.Appended{Status: wire.StatusNotSequencer}, nil
	}
	first, err := l.Append(ctx, req.Payloads)
	tail := l.watch.current()
	resp := &wire.Appended{KnownGlobalTail: tail.Offset, Sealed: tail.Sealed}
	var sealed *bifrost.SealedError
	switch {
	case err == nil:
		resp.FirstOffset = first
	case errors.As(err, &sealed):
		resp.Status, resp.FirstOffset = wire.StatusSealed, sealed.First
	case errors.Is(err, bifrost.ErrReconfigurationNeeded):
		resp.Status = wire.StatusDisabled
	case errors.Is(err, bifrost.ErrClosed):
		resp.Status = wire.StatusNotSequencer
	case errors.Is(err, ErrEmptyBatch):
		resp.Status = wire.StatusMalformed
	default:
		return nil, err
	}
	return resp, nil
}

// GetSequencerState answers with the sequencer's tail. Before answering Open it checks
// the log servers' seal bits, so a node that just sealed the loglet gets the sequencer's
// sealed tail (after the sequencer stopped acknowledging) rather than a stale Open.
func (s sequencerService) GetSequencerState(ctx context.Context, req *wire.GetSequencerState) (*wire.SequencerState, error) {
	l := s.local(req.LogletID)
	if l == nil {
		return &wire.SequencerState{Status: wire.StatusNotSequencer}, nil
	}
	t, err := l.seq.checkSeal(ctx)
	if errors.Is(err, bifrost.ErrClosed) {
		return &wire.SequencerState{Status: wire.StatusNotSequencer}, nil
	}
	if err != nil {
		return nil, err
	}
	return &wire.SequencerState{Status: wire.StatusOK, KnownGlobalTail: t.Offset, Sealed: t.Sealed}, nil
}
