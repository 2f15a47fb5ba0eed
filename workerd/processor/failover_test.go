package processor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// replica runs one processor of partition 0 on its own store.
func replica(t *testing.T, meta metadata.Store, log bifrost.Log, node string, role Role) *Processor {
	t.Helper()
	p, stop := startReplica(t, meta, log, node, role)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("processor on %s: %v", node, err)
		}
	})
	return p
}

// startReplica is replica whose processor the caller stops: stop ends its Run and returns
// Run's error (once; later calls return nil).
func startReplica(t *testing.T, meta metadata.Store, log bifrost.Log, node string, role Role) (*Processor, func() error) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	self := metadata.NodeID{Name: node, Generation: 1}
	p := New(Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: log,
		Logs:    func(uint32) (bifrost.Log, error) { return log, nil },
		Invoker: nopInvoker{invoked: make(chan []byte, 100)}, Logger: hclog.NewNullLogger(),
		ClaimEpoch: func(ctx context.Context, atLeast uint64) (uint64, error) {
			return metadata.ClaimEpoch(ctx, meta, 0, self, atLeast)
		},
		Role: role, NodeName: node,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() (err error) {
		once.Do(func() {
			cancel()
			err = <-done
			db.Close()
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return p, stop
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func send(t *testing.T, l *Leader, id []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := l.Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Send: true, Target: rpc.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}})
	if err != nil || resp.SendStatus != rpc.SendAccepted {
		t.Fatalf("send: %+v %v", resp, err)
	}
}

// The leadership moves from one replica to another without a restart: the new leader
// claims a higher epoch, the old one steps down when it applies the announcement and tells
// its waiting callers to go elsewhere, records the deposed leader still appends are dropped
// by every replica, and both replicas end with identical stores.
func TestLeadershipMovesBetweenReplicas(t *testing.T) {
	meta, log := newMetaLog(t)
	a := replica(t, meta, log, "a", RoleLeader)
	b := replica(t, meta, log, "b", RoleFollower)
	eventuallyTrue(t, "a to lead", func() bool { return a.Leader() != nil })
	la := a.Leader()
	if la.Epoch() != 1 || b.Mode() != ModeFollower || b.Leader() != nil {
		t.Fatalf("a leads epoch %d, b is %s", la.Epoch(), b.Mode())
	}
	for range 20 {
		send(t, la, newID(""))
	}
	// A call waits on a's leadership for a result that never comes (no deployment).
	callErr := make(chan error, 1)
	go func() {
		_, err := la.Invoke(context.Background(), &rpc.InvokeRequest{InvocationID: newID(""), Target: rpc.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}})
		callErr <- err
	}()

	b.SetRole(RoleLeader)
	eventuallyTrue(t, "b to lead", func() bool { return b.Leader() != nil })
	if e := b.Leader().Epoch(); e != 2 {
		t.Fatalf("b leads epoch %d, want 2", e)
	}
	eventuallyTrue(t, "a to step down", func() bool { return a.Leader() == nil && a.Mode() == ModeFollower && a.Role() == RoleFollower })
	select {
	case err := <-callErr:
		if !errors.Is(err, rpc.ErrNotLeader) {
			t.Fatalf("the deposed leader's caller got %v, want ErrNotLeader", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the deposed leader's caller is still waiting")
	}
	if _, err := la.Invoke(context.Background(), &rpc.InvokeRequest{InvocationID: newID(""), Send: true}); !errors.Is(err, rpc.ErrNotLeader) {
		t.Fatalf("invoke on a deposed leader: %v", err)
	}
	rec, _, err := metadata.PartitionEpoch(context.Background(), meta, 0)
	if err != nil || rec.Epoch != 2 || rec.Leader.Name != "b" {
		t.Fatalf("epoch record %+v, %v", rec, err)
	}

	// The deposed leadership still reaches the log (a frozen node waking up), but none of
	// its records is applied anywhere.
	stale := newID("")
	done := make(chan bifrost.LSN, 1)
	la.AppendAsync(&logrecord.Record{Kind: logrecord.KindInvoke, Invoke: &logrecord.Invoke{InvocationID: stale, Send: true,
		Target: logrecord.Target{Service: "S", Handler: "h", ServiceType: "SERVICE"}}}, func(lsn bifrost.LSN, err error) {
		if err != nil {
			t.Error(err)
		}
		done <- lsn
	})
	staleLSN := <-done
	fresh := newID("")
	send(t, b.Leader(), fresh)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tail := uint64(log.Tail()) - 1
	if tail <= uint64(staleLSN) {
		t.Fatalf("tail %d not past the stale record at %d", tail, staleLSN)
	}
	for _, p := range []*Processor{a, b} {
		if err := p.WaitApplied(ctx, tail); err != nil {
			t.Fatal(err)
		}
		st, err := p.cfg.Store.Begin().Status(stale)
		if err != nil || st != nil {
			t.Fatalf("%s applied the deposed leader's record: %+v, %v", p.cfg.NodeName, st, err)
		}
		if st, err := p.cfg.Store.Begin().Status(fresh); err != nil || st == nil {
			t.Fatalf("%s lacks the new leader's record: %v", p.cfg.NodeName, err)
		}
	}
	da, err := a.cfg.Store.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.cfg.Store.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Fatal("the replicas' stores differ after applying the same log")
	}
	for _, p := range []*Processor{a, b} {
		if err := p.cfg.Store.VerifyIndexes(); err != nil {
			t.Fatalf("%s: %v", p.cfg.NodeName, err)
		}
	}

	// And back: a leads again at epoch 3.
	a.SetRole(RoleLeader)
	eventuallyTrue(t, "a to lead again", func() bool { return a.Leader() != nil && b.Leader() == nil })
	if e := a.Leader().Epoch(); e != 3 {
		t.Fatalf("a leads epoch %d, want 3", e)
	}
	send(t, a.Leader(), newID(""))
}

// Two replicas asked to lead at once: each claims its own epoch, exactly one ends up
// leading, and the other follows.
func TestRacingCandidatesEndWithOneLeader(t *testing.T) {
	for range 5 {
		meta, log := newMetaLog(t)
		a := replica(t, meta, log, "a", RoleLeader)
		b := replica(t, meta, log, "b", RoleLeader)
		eventuallyTrue(t, "one leader and one follower", func() bool {
			// The loser is asked to follow once it applies the winner's announcement.
			return (a.Leader() != nil && b.Role() == RoleFollower) || (b.Leader() != nil && a.Role() == RoleFollower)
		})
		leader := a
		if b.Leader() != nil {
			leader = b
		}
		send(t, leader.Leader(), newID(""))
		rec, _, err := metadata.PartitionEpoch(context.Background(), meta, 0)
		if err != nil || rec.Epoch != leader.Leader().Epoch() || rec.Leader.Name != leader.cfg.NodeName {
			t.Fatalf("epoch record %+v, %v; leader %s at %d", rec, err, leader.cfg.NodeName, leader.Leader().Epoch())
		}
	}
}

// runUntilExit runs a processor and returns what Run returned, failing after 10s.
func runUntilExit(t *testing.T, p *Processor) error {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the processor kept running")
		return nil
	}
}

// A record of a kind this version does not know (a newer version wrote it) stops the
// replica with a clear error instead of being skipped.
func TestUnknownRecordKindStopsTheReplica(t *testing.T) {
	log := newLog(t)
	announce, _ := logrecord.Encode(&logrecord.Record{Kind: logrecord.KindAnnounceLeader, Epoch: 1, Time: 1, AnnounceLeader: &logrecord.AnnounceLeader{}})
	future := []byte{1, 99, 1, 4, 0} // binary encoding, kind 99, epoch 1, time 2, no dedup
	if _, err := log.Append(context.Background(), [][]byte{announce, future}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	f := New(Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: log, Logger: hclog.NewNullLogger(),
		Invoker: nopInvoker{invoked: make(chan []byte, 100)}})
	err = runUntilExit(t, f)
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "lsn 2: decode record: unknown record kind 99") {
		t.Fatalf("follower: %v", err)
	}
	if a, _ := db.Partition(0).Applied(); a != 0 {
		t.Fatalf("applied %d of the batch that held the unknown record", a)
	}
}

// A store that applied more than its log holds (the log lost records) is refused when it
// would lead, with a message that says what to do.
func TestStoreAheadOfItsLogIsRefused(t *testing.T) {
	meta, log := newMetaLog(t)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	cfg := leaderConfig(meta, log, db.Partition(0))
	p := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	eventuallyTrue(t, "the leader", func() bool { return p.Leader() != nil })
	for range 5 {
		send(t, p.Leader(), newID(""))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The same store against a new, empty log.
	_, empty := newMetaLog(t)
	cfg.Log = empty
	err = runUntilExit(t, New(cfg))
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "the log lost records") {
		t.Fatalf("store ahead of its log: %v", err)
	}
}

// leaderConfig is partition 0's processor on node "a" over part, asked to lead.
func leaderConfig(meta metadata.Store, log bifrost.Log, part *store.Partition) Config {
	return Config{Partition: 0, NumPartitions: 1, Store: part, Log: log, Logger: hclog.NewNullLogger(),
		Logs:    func(uint32) (bifrost.Log, error) { return log, nil },
		Invoker: nopInvoker{invoked: make(chan []byte, 100)}, Role: RoleLeader,
		ClaimEpoch: func(ctx context.Context, atLeast uint64) (uint64, error) {
			return metadata.ClaimEpoch(ctx, meta, 0, metadata.NodeID{Name: "a", Generation: 1}, atLeast)
		}}
}
