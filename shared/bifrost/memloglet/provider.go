package memloglet

import (
	"context"
	"fmt"
	"sync"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// Provider opens in-memory loglets by LogletID; it implements bifrost.Provider for Kind.
type Provider struct {
	mu      sync.Mutex
	loglets map[uint64]*Loglet
}

var _ bifrost.Provider = (*Provider)(nil)

// NewProvider returns a provider without loglets.
func NewProvider() *Provider { return &Provider{loglets: map[uint64]*Loglet{}} }

// Kind returns Kind.
func (p *Provider) Kind() string { return Kind }

// Open returns the loglet of seg, creating it on first use.
func (p *Provider) Open(ctx context.Context, seg metadata.Segment) (bifrost.Loglet, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open memory segment %d (loglet %d): %w", seg.Index, seg.LogletID, err)
	}
	if seg.Provider != Kind {
		return nil, fmt.Errorf("open segment %d (loglet %d): provider %q is not %q", seg.Index, seg.LogletID, seg.Provider, Kind)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loglet(seg.LogletID), nil
}

// Loglet returns the loglet with id, creating it on first use, for a test to reach its
// hooks.
func (p *Provider) Loglet(id uint64) *Loglet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loglet(id)
}

func (p *Provider) loglet(id uint64) *Loglet {
	l, ok := p.loglets[id]
	if !ok {
		l = New(id)
		p.loglets[id] = l
	}
	return l
}
