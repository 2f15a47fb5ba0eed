package processor

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/store"
)

// lostWrites runs a leader over a new store in dir, sends ten invocations, stops it, and
// damages the store as a power loss can: the durable checkpoint 4 records back, a batch
// after it missing (its marker and, if dropFirst, its effect: the first invocation's
// status) and a later one kept. trim, if set, gets the log and the durable LSN before the
// damage (to trim the log as a single node does). It returns
// the config (for a processor over the store reopened), the ids sent and the applied LSN.
func lostWrites(t *testing.T, dir string, dropFirst bool, trim func(log bifrost.Log, durable uint64)) (meta metadata.Store, log bifrost.Log, cfg Config, ids [][]byte, applied uint64) {
	t.Helper()
	meta, log = newMetaLog(t)
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg = leaderConfig(meta, log, db.Partition(0))
	p := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	eventuallyTrue(t, "the leader", func() bool { return p.Leader() != nil })
	for range 10 {
		id := newID("")
		send(t, p.Leader(), id)
		ids = append(ids, id)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	applied = p.Applied()
	if p.Durable() != applied {
		t.Fatalf("durable %d after a clean stop, applied %d", p.Durable(), applied)
	}
	db.Close()
	if trim != nil {
		trim(log, applied-4)
	}

	raw, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := func(parts ...[]byte) []byte {
		k := []byte{0, 0, 0, 0}
		for _, p := range parts {
			k = append(k, p...)
		}
		return k
	}
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	var b leveldb.Batch
	b.Put(key([]byte("md"), nil), u64(applied-4))
	b.Put(key([]byte("mb"), u64(applied)), u64(applied-2))
	if dropFirst {
		b.Delete(key([]byte("s"), ids[0]))
	}
	if err := raw.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	return meta, log, cfg, ids, applied
}

// A store that lost a batch in the middle (a power loss) is found out when its processor
// starts and rebuilt from the log: it ends identical to a replica that applied the same log,
// with the lost effect back.
func TestStoreThatLostWritesIsRebuiltFromTheLog(t *testing.T) {
	dir := t.TempDir()
	meta, log, cfg, ids, _ := lostWrites(t, dir, true, nil)
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	if err := db.Partition(0).Verify(); err == nil {
		t.Fatal("the damaged store passes verification")
	}
	cfg.Store, cfg.Role = db.Partition(0), RoleFollower
	rebuilt := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rebuilt.Run(ctx) }()
	other := replica(t, meta, log, "b", RoleFollower)
	tail := uint64(log.Tail()) - 1
	for _, r := range []*Processor{rebuilt, other} {
		if err := r.WaitApplied(ctx, tail); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := db.Partition(0).Begin().Status(ids[0]); err != nil || st == nil {
		t.Fatalf("the lost status is not back: %v", err)
	}
	da, errA := db.Partition(0).Digest()
	dbg, errB := other.cfg.Store.Digest()
	if errA != nil || errB != nil || da != dbg {
		t.Fatalf("the rebuilt store differs from a replica of the same log (%v, %v)", errA, errB)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
