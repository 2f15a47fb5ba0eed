package workerd

import (
	"errors"
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/processor"
)

func TestRequestForAnotherPartitionIsRefused(t *testing.T) {
	w := &Worker{}
	w.placed.Store(&metadata.PartitionTable{NumPartitions: 4})
	id := ids.NewInvocationID(ids.PartitionKeyOf("k"))
	right := ids.PartitionOf(id.PartitionKey, 4)
	if _, err := w.leaderOf((right+1)%4, id.Bytes()); !errors.Is(err, rpc.ErrInvalidRequest) {
		t.Fatalf("wrong partition: %v", err)
	}
	if _, err := w.leaderOf(right, []byte("junk")); !errors.Is(err, rpc.ErrInvalidRequest) {
		t.Fatalf("bad id: %v", err)
	}
	// The right partition, not led here: the ingress is told to look elsewhere.
	if _, err := w.leaderOf(right, id.Bytes()); !errors.Is(err, rpc.ErrNotLeader) {
		t.Fatalf("right partition: %v", err)
	}
}

func TestPlacedRole(t *testing.T) {
	tbl := &metadata.PartitionTable{NumPartitions: 3, Placement: []metadata.PartitionPlacement{
		{Leader: "a", Followers: []string{"b"}}, {Leader: "b", Followers: []string{"c"}}}}
	for _, c := range []struct {
		p      uint32
		node   string
		role   processor.Role
		placed bool
	}{{0, "a", processor.RoleLeader, true}, {0, "b", processor.RoleFollower, true}, {0, "c", 0, false},
		{1, "c", processor.RoleFollower, true}, {2, "a", 0, false}} {
		role, placed := placedRole(tbl, c.p, c.node)
		if role != c.role || placed != c.placed {
			t.Errorf("partition %d on %s: %v %v, want %v %v", c.p, c.node, role, placed, c.role, c.placed)
		}
	}
}

// A placement that makes this node a partition's leader wakes that log's watchdog, once
// however often it is kicked, and no other log's: the watchdog then moves the sequencer
// here at once instead of at its next tick (TestPartitionsFailOverBetweenNodes measures the
// failover gap this saves).
func TestKickWatchdogWakesOnlyItsLog(t *testing.T) {
	w := &Worker{}
	for range 3 {
		w.kickWatchdog(2) // never blocks
	}
	select {
	case <-w.watchdogKick(2):
	default:
		t.Fatal("log 2's watchdog was not woken")
	}
	select {
	case <-w.watchdogKick(2):
		t.Fatal("three kicks woke log 2's watchdog twice")
	case <-w.watchdogKick(1):
		t.Fatal("log 1's watchdog was woken by a kick of log 2")
	default:
	}
}
