package workerd

import (
	"context"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// A provisioned local segment names no node. Once this node holds records of it, the
// watchdog names this node in the chain, so that placement keeps the partition here.
func TestHeldLocalSegmentsArePinned(t *testing.T) {
	w := testWorker(t, 1, bifrost.ProviderLocal, nil)
	ctx := context.Background()
	w.pinHeldSegments(ctx, 0)
	if chain, err := w.bifrost.Chain(ctx, 0); err != nil || chain[0].Node != "" {
		t.Fatalf("a segment without records here was pinned: %+v, %v", chain, err)
	}
	runLeader(t, w, 0) // appends its announcement
	w.pinHeldSegments(ctx, 0)
	if chain, err := w.bifrost.Chain(ctx, 0); err != nil || chain[0].Node != "n1" {
		t.Fatalf("after this node wrote the segment: %+v, %v; want it pinned to n1", chain, err)
	}
}
