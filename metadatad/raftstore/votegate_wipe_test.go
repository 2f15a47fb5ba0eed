package raftstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// uncut removes the cut between a and b only.
func (f *Faults) uncut(a, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cut, [2]string{a, b})
	delete(f.cut, [2]string{b, a})
}

// A wiped member comes back under its old name; before its fresh join re-adds it, the
// leader (which still counts its old self) replicates the log to it. With only part of the
// log received it must neither vote nor stand: if the old leader then dies, it and the
// member that missed the commits would otherwise form a majority that elects a leader
// lacking committed entries (it did, before the gate covered its own vote requests). The
// cluster waits instead, and serves again with every write once the full log is back.
func TestWipedMemberWithAPartialLogCannotLead(t *testing.T) {
	c := newCluster(t, 3, func(o *Options) {
		o.SnapshotThreshold = 1 << 30
		o.SnapshotInterval = time.Hour
		o.TrailingLogs = 1 << 30
		o.HeartbeatTimeout = time.Second
		o.ElectionTimeout = time.Second
		o.LeaderLeaseTimeout = 500 * time.Millisecond
	})
	ctx := testCtx(t)
	leader := c.waitLeader()
	fs := c.followers(leader)
	lagging, wiped := fs[0], fs[1]
	c.faults.Isolate(lagging.addr, leader.addr, wiped.addr)

	// Commit many writes on leader + wiped (the lagging member misses them all).
	value := bytes.Repeat([]byte("x"), 4<<10)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Go(func() {
			for i := range 400 {
				if _, err := leader.store().Put(ctx, fmt.Sprintf("w%d", w), value, uint64(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := leader.store().Put(ctx, "last", []byte("committed"), 0); err != nil {
		t.Fatal(err)
	}
	waitValue(t, wiped, "last", 1, "committed")
	target := leader.store().raft.LastIndex()
	t.Logf("committed up to index %d on %s and %s; %s isolated", target, leader.name, wiped.name, lagging.name)

	// Wipe the member and bring it back without state: the gate is closed.
	c.stop(wiped)
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	c.open(wiped)
	deadline := time.Now().Add(testTimeout)
	for {
		li := wiped.store().raft.LastIndex()
		if li > 20 && li < target/2 {
			c.faults.Cut(leader.addr, wiped.addr)
			break
		}
		if li >= target/2 || time.Now().After(deadline) {
			t.Skipf("could not catch the wiped member mid catch-up (last index %d of %d)", li, target)
		}
		time.Sleep(200 * time.Microsecond)
	}
	c.stop(leader) // the only member with the whole log dies
	got := wiped.store().raft.LastIndex()
	t.Logf("wiped member holds %d of %d entries; its vote gate closed=%v", got, target, wiped.store().votes.closed.Load())
	if got >= target {
		t.Skip("the wiped member caught up before the cut")
	}
	c.faults.uncut(lagging.addr, wiped.addr)

	// Three election timeouts: neither survivor may lead without the committed entries.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range []*member{lagging, wiped} {
			if m.store().raft.State() != raft.Leader {
				continue
			}
			v, err := m.store().GetConsistent(ctx, "last")
			if err != nil || v.Version != 1 {
				t.Fatalf("committed write %q lost: %s (wiped: %v) leads with a partial log; read %d, %v", "last", m.name, m == wiped, v.Version, err)
			}
		}
	}
	// The member with the whole log comes back: a leader is elected, with every write.
	c.faults.uncut(leader.addr, wiped.addr)
	c.faults.uncut(leader.addr, lagging.addr)
	c.open(leader)
	again := c.waitLeader()
	v, err := again.store().GetConsistent(ctx, "last")
	t.Logf("with %s back, %s leads; last: %d %q %v", leader.name, again.name, v.Version, v.Value, err)
	if err != nil || v.Version != 1 {
		t.Fatalf("committed write %q not read back from leader %s: %d, %v", "last", again.name, v.Version, err)
	}
}

// A wiped member that received anything from the leader (even one heartbeat stores a term)
// and restarts before its fresh join completed comes back with raft state; its vote gate
// must stay closed until the cluster has re-added it (it opened on the restart before),
// and stay open across restarts after that.
func TestWipedMemberStaysOutOfVotesAcrossARestartUntilReAdded(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	wiped := c.followers(leader)[0]
	c.stop(wiped)
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	c.open(wiped)
	if !wiped.store().votes.closed.Load() {
		t.Fatal("gate open on a fresh member")
	}
	eventually(t, func() error {
		if has, _ := wiped.store().HasState(); !has {
			return fmt.Errorf("no state yet")
		}
		return nil
	})
	// Never re-added (no JoinCluster): restart.
	c.stop(wiped)
	c.open(wiped)
	if !wiped.store().votes.closed.Load() || !wiped.store().AwaitsAdding() {
		t.Fatalf("the wiped member, never re-added, votes again after a restart (members: %+v)", mustMembers(t, leader))
	}
	ctx := testCtx(t)
	if err := wiped.store().JoinCluster(ctx, []string{leader.url}); err != nil {
		t.Fatal(err)
	}
	c.stop(wiped)
	c.open(wiped)
	if wiped.store().votes.closed.Load() || wiped.store().AwaitsAdding() {
		t.Fatal("the re-added member does not vote after a restart")
	}
}

func mustMembers(t *testing.T, m *member) []Member {
	ms, err := m.store().Members()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// A founder that stops between bootstrapping its cluster of one and noting it (the
// not-added file still there) comes back voting: it is the only member, nobody can re-add it.
func TestFounderStoppedBeforeNotingTheBootstrapVotes(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.waitLeader()
	c.stop(m)
	if err := os.WriteFile(filepath.Join(m.dir, "raft", notAddedFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.open(m)
	if m.store().AwaitsAdding() {
		t.Fatal("the founder of a cluster of one waits to be re-added after a restart")
	}
	c.waitLeader()
}
