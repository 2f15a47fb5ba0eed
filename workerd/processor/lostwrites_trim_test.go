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
// the trim point) nor from a snapshot: the processor keeps the store, the only copy of the
// state below the trim point. (It used to wipe it.) With the log answering, it stops for
// good, naming why; while the log does not answer (log servers still starting after a power
// loss of the whole cluster), nobody can tell whether the log holds its first record, and
// Run fails, to be tried again.
func TestStoreThatLostWritesIsKeptWhenTheLogIsTrimmed(t *testing.T) {
	for _, answering := range []bool{true, false} {
		dir := t.TempDir()
		var durable uint64
		_, log, cfg, ids, _ := lostWrites(t, dir, false, func(log bifrost.Log, d uint64) {
			// The single-node snapshotter trimmed the log up to the durable checkpoint
			// (after trim-delay-interval).
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
		if before, err := db.Partition(0).Begin().Status(ids[0]); err != nil || before == nil {
			t.Fatalf("setup: status of the first send missing before restart: %v", err)
		}
		cfg.Store = db.Partition(0) // no Restore: no snapshot destination
		if !answering {
			fl := &frozenLog{Log: log}
			fl.freeze()
			cfg.Log, cfg.WriterLog = fl, fl
		}
		rctx, rcancel := context.WithTimeout(context.Background(), trimProbe+3*time.Second)
		defer rcancel()
		runErr := New(cfg).Run(rctx)
		switch {
		case answering && (!errors.Is(runErr, ErrIncompatible) || !strings.Contains(runErr.Error(), "log is trimmed up to LSN")):
			t.Fatalf("Run after the lost write = %v, want it to stop for good, naming the trimmed log", runErr)
		case !answering && (runErr == nil || errors.Is(runErr, ErrIncompatible) || !strings.Contains(runErr.Error(), "kept until the log answers")):
			t.Fatalf("Run after the lost write, the log not answering = %v, want an error to retry on", runErr)
		}
		// The state below the trim point exists nowhere else: it must still be there.
		if st, err := db.Partition(0).Begin().Status(ids[0]); err != nil || st == nil {
			t.Fatalf("log answering %v: the status applied at or below the trim point (LSN %d) was wiped and cannot be rebuilt (log trimmed, no snapshot): Run: %v",
				answering, durable, runErr)
		}
	}
}
