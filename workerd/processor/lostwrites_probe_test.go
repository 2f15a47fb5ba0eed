package processor

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/workerd/store"
)

// A store that lost writes is wiped for a rebuild only when the log answers that it still
// holds its first record; a log that does not answer (log servers restarting after a power
// loss of the whole cluster) is not taken for an untrimmed one: the store, possibly the
// only copy of what the log no longer holds, is kept and Run fails, to be retried.
func TestStoreThatLostWritesIsKeptWhenTheLogDoesNotAnswer(t *testing.T) {
	meta, log := newMetaLog(t)
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := leaderConfig(meta, log, db.Partition(0))
	p := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	eventuallyTrue(t, "the leader", func() bool { return p.Leader() != nil })
	var ids [][]byte
	for range 10 {
		id := newID("")
		send(t, p.Leader(), id)
		ids = append(ids, id)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	applied := p.Applied()
	db.Close()

	// The durable checkpoint 4 records back; the single-node snapshotter trimmed the log
	// up to it (after trim-delay-interval).
	durable := applied - 4
	if err := log.TrimPrefix(context.Background(), bifrost.LSN(durable)); err != nil {
		t.Fatal(err)
	}
	// A power loss: a batch after the checkpoint is missing (its marker), a later one kept.
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
	b.Put(key([]byte("md"), nil), u64(durable))
	b.Put(key([]byte("mb"), u64(applied)), u64(applied-2))
	if err := raw.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before, err := db.Partition(0).Begin().Status(ids[0])
	if err != nil || before == nil {
		t.Fatalf("setup: status of the first send missing before restart: %v", err)
	}
	cfg.Store = db.Partition(0) // no Restore: no snapshot destination
	// The log does not answer reads for now: its log servers are still starting after the
	// power loss that cost the store its writes (trimProbe is 5s).
	fl := &frozenLog{Log: log}
	fl.freeze()
	cfg.Log, cfg.WriterLog = fl, fl
	rerun := New(cfg)
	rctx, rcancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer rcancel()
	runErr := rerun.Run(rctx)
	t.Logf("Run after the lost write, log not answering: %v", runErr)

	// The state below the trim point exists nowhere else: it must still be there.
	st, err := db.Partition(0).Begin().Status(ids[0])
	if err != nil || st == nil {
		t.Fatalf("the status applied at or below the trim point (LSN %d) was wiped and cannot be rebuilt (log trimmed, no snapshot): Run: %v", durable, runErr)
	}
}
