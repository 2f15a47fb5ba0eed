package bifrost_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/bifrost/memloglet"
	"gorestate.dev/shared/metadata"
)

// The chain says records 1..10 are in a sealed local segment on node n1 (a single node that
// later got a replicated tail), but n1's local-loglet directory was deleted with the rest
// of its data (a wiped node that the metadata still names). Reading them fails at once, as
// a trim gap at the segment's end that names the loss (a processor restores a snapshot
// across it), instead of waiting forever for records a fresh, unsealed loglet never gets.
func TestReadOfAWipedSealedLocalSegmentIsATrimGap(t *testing.T) {
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
	var gap *bifrost.TrimGapError
	if !errors.As(err, &gap) || gap.TrimPoint != 10 || !strings.Contains(err.Error(), "lost with the node's data directory") {
		t.Fatalf("read = %v, want a trim gap at LSN 10 that names the loss", err)
	}
	// The replicated tail after it reads as usual.
	if _, err := c.provider.Loglet(bifrost.LogletID(0, 1)).Append(ctx, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if es, err := b.Log(0).Read(ctx, 11, 10); err != nil || len(es) != 1 || es[0].LSN != 11 {
		t.Fatalf("read from 11 = %v, %v", es, err)
	}
}
