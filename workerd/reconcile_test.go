package workerd

import (
	"context"
	"testing"
	"time"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
)

// A leader deposed by a newer leader's announcement is not made to lead again at once by the
// next version of a partition table whose placement of it did not change (a table written
// for another partition, say): leading again is reclaimLeaderships' call, after its wait
// and a linearizable read of the table. A table that does change its role still applies.
func TestReconcileAsksOnlyChangedRoles(t *testing.T) {
	w, proc := leadingWorker(t, nil)
	table := func(leader string, followers ...string) *metadata.PartitionTable {
		return &metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: leader, Followers: followers}}}
	}
	ctx := context.Background()
	w.reconcile(ctx, table("n1"))
	late, err := logrecord.Encode(&logrecord.Record{Kind: logrecord.KindAnnounceLeader, Epoch: 1 << 40,
		AnnounceLeader: &logrecord.AnnounceLeader{Node: "n2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.bifrost.WriterLog(0).Append(ctx, [][]byte{late}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, d := proc.Deposed(); !d; _, d = proc.Deposed() {
		if time.Now().After(deadline) {
			t.Fatal("the leader did not step down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.reconcile(ctx, table("n1", "n3")) // a new version: a follower added, n1 still the leader
	if _, d := proc.Deposed(); !d || proc.Role() != processor.RoleFollower {
		t.Fatalf("after a table that kept n1 the leader: deposed %v, role %v; want it to stay deposed, following", d, proc.Role())
	}
	w.reconcile(ctx, table("n3", "n1"))
	if _, d := proc.Deposed(); d || proc.Role() != processor.RoleFollower {
		t.Fatalf("after a table that made n1 a follower: deposed %v, role %v", d, proc.Role())
	}
	w.reconcile(ctx, table("n1", "n3"))
	if proc.Role() != processor.RoleLeader {
		t.Fatalf("after a table that made n1 the leader again: role %v", proc.Role())
	}
}
