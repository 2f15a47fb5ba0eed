package localloglet

import (
	"context"
	"errors"
	"fmt"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// ErrOtherNode is returned by Provider.Open for a segment stored on another node: a local
// loglet's records are readable only where they were written.
var ErrOtherNode = errors.New("localloglet: segment is stored on another node")

// Provider opens the local segments of one node from its Store (bifrost.ProviderLocal).
type Provider struct {
	store *Store
	node  string
}

var _ bifrost.Provider = (*Provider)(nil)

// NewProvider returns the local provider of the node named node, whose loglets live in
// store.
func NewProvider(store *Store, node string) *Provider {
	return &Provider{store: store, node: node}
}

// Kind returns bifrost.ProviderLocal.
func (p *Provider) Kind() string { return bifrost.ProviderLocal }

// Open returns the loglet of seg (by its LogletID). A segment naming another node is
// refused with ErrOtherNode; one naming no node predates multi-node logs and belongs to
// whichever node runs the worker.
func (p *Provider) Open(ctx context.Context, seg metadata.Segment) (bifrost.Loglet, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open local segment %d (loglet %d): %w", seg.Index, seg.LogletID, err)
	}
	if seg.Provider != bifrost.ProviderLocal {
		return nil, fmt.Errorf("open segment %d (loglet %d): provider %q is not %q", seg.Index, seg.LogletID, seg.Provider, bifrost.ProviderLocal)
	}
	if seg.Node != "" && seg.Node != p.node {
		return nil, fmt.Errorf("open local segment %d (loglet %d): it is stored on node %q, this is node %q: %w", seg.Index, seg.LogletID, seg.Node, p.node, ErrOtherNode)
	}
	if p.store.isClosed() {
		return nil, fmt.Errorf("open local segment %d (loglet %d): %w", seg.Index, seg.LogletID, bifrost.ErrClosed)
	}
	return p.store.Loglet(seg.LogletID), nil
}
