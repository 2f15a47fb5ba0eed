package bifrost_test

import (
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// A local segment that names no node is pinned to the one that holds it, once; a segment
// that names a node, or is not local, is left alone, and the rest of the chain with it.
func TestPinLocalSegment(t *testing.T) {
	t.Parallel()
	legacy := metadata.Segment{BaseLSN: 1, LogletID: 7} // provider "" (before providers were named)
	local := metadata.Segment{BaseLSN: 5, Provider: bifrost.ProviderLocal, LogletID: bifrost.LogletID(1, 1), Index: 1}
	pinned := metadata.Segment{BaseLSN: 9, Provider: bifrost.ProviderLocal, LogletID: bifrost.LogletID(1, 2), Index: 2, Node: "n2"}
	c := newCluster(t, map[uint32][]metadata.Segment{1: {legacy, local, pinned}, 2: {memSeg(2)}})
	b := c.node(t, false)
	ctx := testCtx(t)
	for _, tc := range []struct {
		log, index uint32
		want       bool
	}{
		{1, 1, true}, {1, 1, false}, // only once
		{1, 0, true},
		{1, 2, false}, // names n2
		{2, 0, false}, // not local
		{1, 9, false}, // no such segment
	} {
		changed, err := b.PinLocalSegment(ctx, tc.log, tc.index, "n1")
		if err != nil || changed != tc.want {
			t.Fatalf("pin segment %d of log %d: %v, %v; want %v", tc.index, tc.log, changed, err, tc.want)
		}
	}
	chain := c.chain(t, 1)
	if chain[0].Node != "n1" || chain[1].Node != "n1" || chain[2].Node != "n2" || chain[0].BaseLSN != 1 || chain[2].BaseLSN != 9 {
		t.Fatalf("chain after pinning: %+v", chain)
	}
	if got := c.chain(t, 2); len(got) != 1 || got[0].Node != "" {
		t.Fatalf("log 2's chain changed: %+v", got)
	}
	if cached := b.CachedChain(1); cached[1].Node != "n1" {
		t.Fatalf("the cache did not take the pinned chain: %+v", cached)
	}
}
