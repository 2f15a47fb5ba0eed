package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// A leadership moved away and back at once (A→B→A, with and without B taking it up): B's
// claim may land in the log after A's new one and depose A. A then reports that it stepped
// down (Deposed), and, asked to lead again as the worker does while the placement still
// makes it the leader (reclaimLeaderships), it leads and serves.
func TestQuickLeadershipFlipBack(t *testing.T) {
	deposed := 0
	for round := 0; round < 30; round++ {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			meta, log := newMetaLog(t)
			a := replica(t, meta, log, "a", RoleLeader)
			b := replica(t, meta, log, "b", RoleFollower)
			eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
			b.SetRole(RoleLeader)
			a.SetRole(RoleFollower)
			if round%2 == 0 {
				eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })
			}
			b.SetRole(RoleFollower)
			a.SetRole(RoleLeader)
			eventuallyTrue(t, "a to lead and serve", func() bool {
				if _, d := a.Deposed(); d {
					deposed++
					a.SetRole(RoleLeader)
				}
				l := a.Leader()
				if l == nil || b.Leader() != nil {
					return false
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				resp, err := l.Invoke(ctx, &rpc.InvokeRequest{InvocationID: newID(""), Send: true, Target: rpc.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}})
				return err == nil && resp.SendStatus == rpc.SendAccepted
			})
			if _, d := b.Deposed(); d {
				t.Errorf("b, asked to follow, reports it stepped down as leader")
			}
		})
	}
	t.Logf("a was deposed by b's late claim in %d of 30 rounds", deposed)
}

// A claim of another node that lands after this leader's (its announcement carries a higher
// epoch) deposes the leader; the leader reports it stepped down (Deposed), and asked to lead
// again, as the worker does while the placement makes it the leader, it leads and serves.
func TestLateClaimDeposesAndLeadingAgainRecovers(t *testing.T) {
	meta, log := newMetaLog(t)
	a := replica(t, meta, log, "a", RoleLeader)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	ctx := context.Background()
	epoch, err := metadata.ClaimEpoch(ctx, meta, 0, metadata.NodeID{Name: "b", Generation: 1}, a.Leader().epoch)
	if err != nil {
		t.Fatal(err)
	}
	late, err := logrecord.Encode(&logrecord.Record{Kind: logrecord.KindAnnounceLeader, Epoch: epoch,
		AnnounceLeader: &logrecord.AnnounceLeader{Node: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(ctx, [][]byte{late}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "a to step down", func() bool { _, d := a.Deposed(); return d && a.Leader() == nil })
	if a.Role() != RoleFollower {
		t.Fatalf("a's role after it stepped down: %v", a.Role())
	}
	at, _ := a.Deposed()
	if a.LeadAgain(at.Add(time.Nanosecond)) {
		t.Fatal("led again for a step-down it was not told of")
	}
	if !a.LeadAgain(at) {
		t.Fatal("did not lead again")
	}
	if _, d := a.Deposed(); d || a.LeadAgain(at) {
		t.Fatal("still reported deposed after leading again")
	}
	eventuallyTrue(t, "a to lead again", func() bool { return a.Leader() != nil })
	send(t, a.Leader(), newID(""))
}
