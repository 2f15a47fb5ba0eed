package processor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/workerd/store"
)

// On a single worker without a snapshot destination the snapshotter trims the log below
// the store's durable applied LSN. If a power loss then drops a batch after the durable
// checkpoint, the store cannot be rebuilt from the log (it no longer holds the records below
// the trim point) nor from a snapshot: the processor stops for good, naming why, and keeps
// the store, the only copy of the state below the trim point. (It used to wipe it.)
func TestStoreThatLostWritesIsKeptWhenTheLogIsTrimmed(t *testing.T) {
	dir := t.TempDir()
	var durable uint64
	_, _, cfg, ids, _ := lostWrites(t, dir, false, func(log bifrost.Log, d uint64) {
		// The single-node snapshotter trimmed the log up to the durable checkpoint (after
		// trim-delay-interval).
		durable = d
		if err := log.TrimPrefix(context.Background(), bifrost.LSN(d)); err != nil {
			t.Fatal(err)
		}
	})
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before, err := db.Partition(0).Begin().Status(ids[0])
	if err != nil || before == nil {
		t.Fatalf("setup: status of the first send missing before restart: %v", err)
	}
	cfg.Store = db.Partition(0) // no Restore: no snapshot destination
	rerun := New(cfg)
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer rcancel()
	runErr := rerun.Run(rctx)
	if !errors.Is(runErr, ErrIncompatible) || !strings.Contains(runErr.Error(), "log is trimmed up to LSN") {
		t.Fatalf("Run after the lost write = %v, want it to stop for good, naming the trimmed log", runErr)
	}

	// The state below the trim point exists nowhere else: it must still be there.
	st, err := db.Partition(0).Begin().Status(ids[0])
	if err != nil || st == nil {
		t.Fatalf("the status applied at or below the trim point (LSN %d) was wiped and cannot be rebuilt (log trimmed, no snapshot): Run: %v", durable, runErr)
	}
}
