package bifrost_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/bifrost/memloglet"
	"gorestate.dev/shared/metadata"
)

// The chain says records 1..10 are in a sealed local segment on node n1 (a single node that
// later got a replicated tail), but n1's local-loglet directory was deleted with the rest
// of its data (a wiped node that the metadata still names). Reading them must fail -- the
// records are gone and the processor should say so (or restore a snapshot) -- instead of
// waiting forever for records a fresh, unsealed loglet will never get.
func TestReviewReadOfAWipedSealedLocalSegmentDoesNotHang(t *testing.T) {
	chains := map[uint32][]metadata.Segment{0: {
		{Index: 0, BaseLSN: 1, Provider: bifrost.ProviderLocal, Node: "n1", LogletID: bifrost.LogletID(0, 0)},
		{Index: 1, BaseLSN: 11, Provider: memloglet.Kind, LogletID: bifrost.LogletID(0, 1)},
	}}
	c := newCluster(t, chains)
	wiped, err := localloglet.Open(t.TempDir(), localloglet.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wiped.Close() })
	reg := bifrost.Registry{bifrost.ProviderLocal: localloglet.NewProvider(wiped, "n1"), memloglet.Kind: c.provider}
	b := bifrost.New(bifrost.Options{Meta: c.meta, Registry: reg})
	t.Cleanup(func() { b.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = b.Log(0).Read(ctx, 1, 10)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading LSN 1 of a sealed local segment whose loglet was wiped waited until the deadline: %v", err)
	}
	t.Logf("read: %v", err)
}
