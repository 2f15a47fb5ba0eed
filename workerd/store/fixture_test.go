package store

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gorestate.dev/shared/logrecord"
)

// copyDir copies src into a new temporary directory (goleveldb writes to a store it opens;
// the fixture must stay as committed).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// A store written by main as of 2026-12-06 (commit 469083c: JSON statuses, no creation-time
// indexes, statuses keyed by the ids as they are) opens, reads back every status as
// written once its keys are moved (as a processor does at start), and gets its indexes
// built once.
func TestStoreOfEarlierVersionOpens(t *testing.T) {
	db, err := Open(copyDir(t, "testdata/store-469083c"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, pid := range []uint32{0, 5} {
		n, err := db.Partition(pid).MigrateKeyLayout()
		if err != nil || n == 0 {
			t.Fatalf("partition %d: moved %d keys, %v", pid, n, err)
		}
		if n, err := db.Partition(pid).MigrateKeyLayout(); err != nil || n != 0 {
			t.Fatalf("partition %d: moved %d keys again, %v", pid, n, err)
		}
	}
	id := func(b byte) []byte {
		v := make([]byte, 24)
		v[0], v[23] = 0x10, b
		return v
	}
	counter := logrecord.Target{Service: "Counter", Handler: "add", Key: "k1", ServiceType: "VIRTUAL_OBJECT", HandlerType: "EXCLUSIVE"}
	greeter := logrecord.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"}
	for _, pid := range []uint32{0, 5} {
		p := db.Partition(pid)
		base := int64(1_764_000_000_000) + int64(pid)*1000
		want := map[byte]*Status{
			1: {Phase: PhaseInvoked, Target: greeter, CreatedAt: base, ModifiedAt: base + 1, JournalLen: 1, CommandCount: 1,
				Callers: []logrecord.Caller{{InvocationID: id(9), CompletionID: 3, NotificationType: 7}}, DeploymentID: "dp_x", ProtocolVersion: 5,
				CompletionRetentionMs: 86_400_000, JournalRetentionMs: 86_400_000},
			2: {Phase: PhaseSuspended, Target: counter, InvokedBy: "inv_caller", CreatedAt: base + 10, ModifiedAt: base + 20,
				JournalLen: 4, CommandCount: 2, WaitingCompletions: []uint32{1, 3}, WaitingSignals: []uint32{17}, WaitingNames: []string{"go"}, Attempt: 2},
			3: {Phase: PhaseCompleted, Target: counter, IdempotencyKey: "idem-1", CreatedAt: base + 30, ModifiedAt: base + 31,
				CompletedAt: base + 31, JournalLen: 3, CommandCount: 2, CompletionRetentionMs: 60_000, JournalRetentionMs: 30_000,
				Result: &Result{Value: []byte(`"hello"`)}},
			4: {Phase: PhaseCompleted, Target: greeter, CreatedAt: base + 40, ModifiedAt: base + 41, CompletedAt: base + 41,
				Result: &Result{Failed: true, Code: 409, Message: "killed"}, LastFailure: "boom"},
			5: {Phase: PhaseScheduled, Target: greeter, CreatedAt: base + 50, ModifiedAt: base + 50, ExecutionTime: base + 99_000},
			6: {Phase: PhaseInboxed, Target: counter, CreatedAt: base + 60, ModifiedAt: base + 60, InboxSeq: 7},
			7: {Phase: PhasePaused, Target: counter, CreatedAt: base + 70, ModifiedAt: base + 75, LastFailure: "retries exhausted"},
		}
		txn := p.Begin()
		for b, w := range want {
			got, err := txn.Status(id(b))
			if err != nil || !reflect.DeepEqual(got, w) {
				t.Fatalf("partition %d status %d:\n got %+v (%v)\nwant %+v", pid, b, got, err, w)
			}
		}
		if applied, err := p.Applied(); err != nil || applied != 12 {
			t.Fatalf("partition %d applied %d, %v", pid, applied, err)
		}
		if n, err := p.BuildIndexes(); err != nil || n != len(want) {
			t.Fatalf("partition %d: indexed %d, %v", pid, n, err)
		}
		if err := p.VerifyIndexes(); err != nil {
			t.Fatal(err)
		}
		snap, err := p.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		state, err := snap.State("Counter", "k1")
		snap.Release()
		if err != nil || len(state) != 1 || string(state[0].Value) != "41" {
			t.Fatalf("state %v, %v", state, err)
		}
		// A status written back now reads the same.
		txn = p.Begin()
		must(t, txn.PutStatus(id(3), want[3], &Indexed{Phase: PhaseCompleted, CreatedAt: base + 30}))
		must(t, txn.Commit())
		if got, err := p.Begin().Status(id(3)); err != nil || !reflect.DeepEqual(got, want[3]) {
			t.Fatalf("rewritten status %+v, %v", got, err)
		}
	}
}

// An export written by a version before the keyID layout (the fixture's partition exported
// as such a version did: magic v1, statuses keyed by the ids as they are) imports with
// every status readable.
func TestImportOfVersion1Export(t *testing.T) {
	old, err := Open(copyDir(t, "testdata/store-469083c"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	exp, err := old.Partition(5).OpenExport()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = exp.WriteTo(&buf)
	exp.Release()
	if err != nil {
		t.Fatal(err)
	}
	data := append(append([]byte(nil), exportMagicV1...), buf.Bytes()[len(exportMagic):]...)

	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(2)
	applied, err := p.Import(bytes.NewReader(data))
	if err != nil || applied != 12 {
		t.Fatalf("import: applied %d, %v", applied, err)
	}
	id := make([]byte, 24)
	id[0], id[23] = 0x10, 6
	st, err := p.Begin().Status(id)
	if err != nil || st == nil || st.Phase != PhaseInboxed || st.InboxSeq != 7 {
		t.Fatalf("status 6 after the import: %+v, %v", st, err)
	}
	if n, err := p.MigrateKeyLayout(); err != nil || n != 0 {
		t.Fatalf("keys left in the old layout after the import: %d, %v", n, err)
	}
}
