package metadata

import (
	"context"
	"sync"
	"testing"
)

func TestClaimEpochIsUniqueUnderRaces(t *testing.T) {
	s := openLocal(t)
	ctx := context.Background()
	const claimants, rounds = 8, 20
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	for c := range claimants {
		wg.Go(func() {
			node := NodeID{Name: string(rune('a' + c)), Generation: 1}
			for range rounds {
				e, err := ClaimEpoch(ctx, s, 3, node, 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := seen[e]; dup {
					t.Errorf("epoch %d claimed by %s and %s", e, prev, node.Name)
				}
				seen[e] = node.Name
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r, _, err := PartitionEpoch(ctx, s, 3)
	if err != nil || r.Epoch != claimants*rounds || seen[r.Epoch] != r.Leader.Name {
		t.Fatalf("record %+v, %v; want epoch %d held by its last claimant", r, err, claimants*rounds)
	}
	// A claimant that saw a higher epoch in the log claims above it; other partitions are
	// independent.
	if e, err := ClaimEpoch(ctx, s, 3, NodeID{Name: "z"}, 1000); err != nil || e != 1001 {
		t.Fatalf("claim above 1000: %d, %v", e, err)
	}
	if e, err := ClaimEpoch(ctx, s, 4, NodeID{Name: "z"}, 0); err != nil || e != 1 {
		t.Fatalf("first claim of partition 4: %d, %v", e, err)
	}
}
