package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"gorestate.dev/shared/metadata"
)

// laggingMember is a replicated metadata member whose own copy lacks the partition table
// that the leader holds (it has just restarted); it knows the leader.
type laggingMember struct {
	metadata.Store // the leader's objects
	leader         string
}

func (l laggingMember) Get(context.Context, string) (metadata.Versioned, error) {
	return metadata.Versioned{}, metadata.ErrNotFound
}
func (l laggingMember) GetConsistent(ctx context.Context, key string) (metadata.Versioned, error) {
	return l.Store.Get(ctx, key)
}
func (l laggingMember) Leader() (string, string) { return l.leader, "" }

// A member still catching up does not report a provisioned cluster as not provisioned (which
// tells the operator to provision it); a store without a leader, or one where the leader
// has no partition table either, still reports its own copy.
func TestStatusOnAMemberCatchingUp(t *testing.T) {
	ctx := context.Background()
	leader := openStore(t)
	b, _ := json.Marshal(metadata.PartitionTable{NumPartitions: 4})
	if _, err := leader.Put(ctx, metadata.KeyPartitionTable, b, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Gather(ctx, Sources{Store: laggingMember{Store: leader, leader: "n1"}}); !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("status on a member catching up: %v", err)
	}
	st, err := Gather(ctx, Sources{Store: laggingMember{Store: leader}})
	if err != nil || st.Provisioned {
		t.Fatalf("status without a known leader: %+v, %v", st, err)
	}
	st, err = Gather(ctx, Sources{Store: laggingMember{Store: openStore(t), leader: "n1"}})
	if err != nil || st.Provisioned {
		t.Fatalf("status of a cluster not provisioned: %+v, %v", st, err)
	}
}
