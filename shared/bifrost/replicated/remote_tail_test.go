package replicated

import (
	"context"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/metadata"
)

// A node that cannot reach the sequencer must not take records that a write quorum holds
// for committed: the sequencer may never have heard those servers' answers, and then its
// seal (at its own global tail, once the drain gave up on them) ends the loglet below
// them. Records a reader delivered while the loglet was open must lie below the sealed
// tail.
func TestRemoteFindTailDoesNotPassTheGlobalTailWhileOpen(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	c := newCluster(t, 3, 2, 11)
	p1 := c.provider("w1", 1, nil)
	p2 := c.provider("w2", 1, nil)
	id := uint64(77)
	seg := c.segment(id, metadata.NodeID{Name: "w1", Generation: 1})
	l1 := c.open(p1, seg)
	l2 := c.open(p2, seg)

	// s2 stores but its answers are lost, s3 gets no stores, w2 cannot reach the sequencer.
	c.net.SetFaults("s2", faultnet.Faults{DropResponse: 1, Methods: []string{"Store"}})
	c.net.SetFaults("s3", faultnet.Faults{DropRequest: 1, Methods: []string{"Store"}})
	c.net.PartitionLink("w2", "w1")

	res := make(chan error, 1)
	l1.AppendAsync([][]byte{[]byte("a"), []byte("b"), []byte("c")}, func(_ bifrost.Offset, err error) { res <- err })
	eventually(t, 5*time.Second, "s1 and s2 hold the batch", func() bool {
		return c.servers[0].holds(id, 3) && c.servers[1].holds(id, 3)
	})

	fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	ts, err := l2.FindTail(fctx)
	cancel()
	t.Logf("remote find-tail: %v, %v", ts, err)
	if err == nil && !ts.Sealed && ts.Offset > 1 {
		t.Fatalf("remote find-tail answered %v: above the global tail 1, which no record passed", ts)
	}
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	recs, err := l2.Read(rctx, 1, 10)
	cancel()
	t.Logf("remote read: %d records, %v", len(recs), err)

	tail, err := l1.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the sequencer sealed at %d; the append: %v", tail, <-res)
	for _, r := range recs {
		if r.Offset >= tail {
			t.Fatalf("a remote reader delivered offset %d, but the sequencer sealed the loglet at %d", r.Offset, tail)
		}
	}
}
