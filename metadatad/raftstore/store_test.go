package raftstore

import (
	"errors"
	"fmt"
	"testing"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metadata/storetest"
)

// The conformance suite of metadata.Store (shared/metadata/storetest), run on one 3-member
// cluster through the leader, a follower, and the HTTP API of
// a follower. Each target uses its own keys.
func TestConformanceThreeMembers(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	follower := c.followers(leader)[0]
	other := c.followers(leader)[1]
	targets := []struct {
		name  string
		store metadata.Store
	}{
		{"leader", leader.store()},
		{"follower", follower.store()},
		{"http-follower", metadata.NewClient([]string{follower.url}, nil)},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Run("CompareAndSet", func(t *testing.T) { storetest.CompareAndSet(t, tg.store, tg.name+"/cas") })
			t.Run("ConcurrentWritersOneWins", func(t *testing.T) { storetest.ConcurrentWritersOneWins(t, tg.store, tg.name+"/contended") })
			t.Run("WaitNewer", func(t *testing.T) { storetest.WaitNewer(t, tg.store, tg.name+"/w") })
		})
	}

	t.Run("WaitNewerWokenByWriteOnAnotherMember", func(t *testing.T) {
		ctx := testCtx(t)
		got := make(chan error, 1)
		go func() {
			v, err := other.store().WaitNewer(ctx, "cross", 0)
			if err == nil && (v.Version != 1 || string(v.Value) != "x") {
				err = fmt.Errorf("got %d %q, want 1 \"x\"", v.Version, v.Value)
			}
			got <- err
		}()
		if _, err := follower.store().Put(ctx, "cross", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("WaitNewer on %s: %v", other.name, err)
		}
	})

	t.Run("GetConsistent", func(t *testing.T) {
		ctx := testCtx(t)
		for _, m := range []*member{leader, follower, other} {
			if _, err := m.store().GetConsistent(ctx, "never-written"); !errors.Is(err, metadata.ErrNotFound) {
				t.Fatalf("%s: GetConsistent of an absent key: %v, want ErrNotFound", m.name, err)
			}
		}
		// A write through one follower is visible at once to a consistent read on the other,
		// whatever that member has applied.
		for i := range 5 {
			v, err := follower.store().Put(ctx, "lin", []byte(fmt.Sprint(i)), uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			got, err := other.store().GetConsistent(ctx, "lin")
			if err != nil || got.Version != v || string(got.Value) != fmt.Sprint(i) {
				t.Fatalf("GetConsistent on %s after write %d = %d %q, %v; want %d", other.name, i, got.Version, got.Value, err, v)
			}
		}
	})
}
