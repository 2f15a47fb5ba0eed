package processor

import (
	"testing"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// retained invokes id with the given retentions and runs it to completion at f.now.
func (f *fixture) retained(id []byte, completionMs, journalMs int64) {
	f.t.Helper()
	r := invokeRec(id, "", "", 0)
	r.Invoke.CompletionRetentionMs, r.Invoke.JournalRetentionMs = completionMs, journalMs
	f.apply(r)
	for _, rec := range outputEnd(id, `"done"`) {
		f.apply(rec)
	}
}

func (f *fixture) expireAt(t int64) {
	f.t.Helper()
	f.apply(&logrecord.Record{Kind: logrecord.KindExpire, Time: t})
}

func (f *fixture) journalLen(id []byte) int {
	f.t.Helper()
	snap, err := f.part.Snapshot()
	if err != nil {
		f.t.Fatal(err)
	}
	defer snap.Release()
	n := 0
	err = snap.Journals(nil, func(e store.IndexedEntry) error {
		if string(e.ID) == string(id) {
			n++
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestRetentionKeepsStatusAndJournalUntilExpiry(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	done := f.now
	f.retained(id, 10_000, 4_000)

	st := f.status(id)
	if st == nil || st.Phase != store.PhaseCompleted || st.JournalLen != 2 || f.journalLen(id) != 2 {
		t.Fatalf("after completion: status %+v, %d journal entries; want completed with input and output kept", st, f.journalLen(id))
	}
	steps := []struct {
		at                  int64
		wantStatus          bool
		wantJournal, stored int
	}{
		{done + 3_999, true, 2, 2},
		{done + 4_000, true, 0, 0}, // journal retention over
		{done + 9_999, true, 0, 0},
		{done + 10_000, false, 0, 0}, // completion retention over
	}
	for _, s := range steps {
		f.expireAt(s.at)
		st := f.status(id)
		if (st != nil) != s.wantStatus {
			t.Fatalf("at +%dms: status present %v, want %v", s.at-done, st != nil, s.wantStatus)
		}
		if st != nil && int(st.JournalLen) != s.wantJournal {
			t.Fatalf("at +%dms: JournalLen %d, want %d", s.at-done, st.JournalLen, s.wantJournal)
		}
		if n := f.journalLen(id); n != s.stored {
			t.Fatalf("at +%dms: %d journal entries stored, want %d", s.at-done, n, s.stored)
		}
	}
	if _, ok, err := f.part.NextExpiry(); err != nil || ok {
		t.Fatalf("expiry index not empty after everything expired (ok=%v, err=%v)", ok, err)
	}
}

func TestExpireIgnoresARecreatedInvocation(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	done := f.now
	f.retained(id, 1_000, 0)
	// Purge and run the same id again later (ids of idempotent calls are deterministic): the
	// index entry of the first life must not drop the second.
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: logrecord.ManagePurge}})
	f.now += 500
	f.retained(id, 1_000, 0)
	f.expireAt(done + 1_000)
	if st := f.status(id); st == nil || st.CompletedAt != done+500 {
		t.Fatalf("second life gone or wrong after the first life's expiry: %+v", st)
	}
	f.expireAt(done + 1_500)
	if st := f.status(id); st != nil {
		t.Fatalf("second life kept past its retention: %+v", st)
	}
}

// Expiry is deterministic however records are grouped into apply batches: a follower that
// applies two Expire records in one transaction ends in the same state as a leader that
// applied them one by one.
func TestExpireBatchesAreIndependentOfGrouping(t *testing.T) {
	n := expireBatch + 7
	setup := func() (*fixture, [][]byte) {
		f := newFixture(t)
		var idsOut [][]byte
		for i := 0; i < n; i++ {
			id := newID("")
			f.retained(id, 1_000, 0)
			idsOut = append(idsOut, id)
		}
		return f, idsOut
	}
	count := func(f *fixture, all [][]byte) int {
		left := 0
		for _, id := range all {
			if f.status(id) != nil {
				left++
			}
		}
		return left
	}
	at := int64(1_000_000 + 1_000)

	one, idsOne := setup()
	one.expireAt(at)
	if left := count(one, idsOne); left != n-expireBatch {
		t.Fatalf("one Expire record left %d invocations, want %d (bounded batch)", left, n-expireBatch)
	}
	one.expireAt(at)

	grouped, idsGrouped := setup()
	txn := grouped.part.Begin()
	for range 2 {
		r := &logrecord.Record{Kind: logrecord.KindExpire, Time: at}
		if err := grouped.sm.Apply(txn, r, func(Action) {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if a, b := count(one, idsOne), count(grouped, idsGrouped); a != 0 || b != 0 {
		t.Fatalf("after two Expire records: %d left one by one, %d left grouped; want 0 and 0", a, b)
	}
}

// purgeJournal applies a purge-journal and returns the reply.
func (f *fixture) purgeJournal(id []byte) rpc.ManageOutcome {
	f.t.Helper()
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: id, Op: logrecord.ManagePurgeJournal, RequestID: 1}})
	r, ok := has[ActManageReply](acts)
	if !ok {
		f.t.Fatalf("purge-journal without a reply: %v", acts)
	}
	return r.Outcome
}

// Purge-journal drops a completed invocation's retained journal and keeps its status and
// result until the completion retention ends, as in Restate.
func TestPurgeJournalKeepsStatusAndResult(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	done := f.now
	f.retained(id, 10_000, 4_000)
	if got := f.purgeJournal(id); got != rpc.ManageDone {
		t.Fatalf("purge-journal of a completed invocation: %s", got)
	}
	st := f.status(id)
	if st == nil || st.Phase != store.PhaseCompleted || st.Result == nil || st.Result.Failed {
		t.Fatalf("status after purge-journal: %+v; want completed with its result", st)
	}
	if st.JournalLen != 0 || st.CommandCount != 0 || f.journalLen(id) != 0 {
		t.Fatalf("journal after purge-journal: length %d, %d commands, %d entries stored", st.JournalLen, st.CommandCount, f.journalLen(id))
	}
	if st.JournalRetentionMs != 4_000 || st.CompletionRetentionMs != 10_000 {
		t.Fatalf("retentions changed: journal %dms, completion %dms", st.JournalRetentionMs, st.CompletionRetentionMs)
	}
	// Again: nothing left to drop, still fine (Restate answers 200 twice).
	if got := f.purgeJournal(id); got != rpc.ManageDone {
		t.Fatalf("second purge-journal: %s", got)
	}
	// The journal's expiry finds nothing to do; the status still goes at its own.
	f.expireAt(done + 4_000)
	if st := f.status(id); st == nil || st.Result == nil {
		t.Fatalf("status gone at the journal's expiry: %+v", st)
	}
	f.expireAt(done + 10_000)
	if st := f.status(id); st != nil {
		t.Fatalf("status kept past its retention: %+v", st)
	}
	if _, ok, err := f.part.NextExpiry(); err != nil || ok {
		t.Fatalf("expiry index not empty after everything expired (ok=%v, err=%v)", ok, err)
	}
}

func TestPurgeJournalOfARunningOrUnknownInvocation(t *testing.T) {
	f := newFixture(t)
	running := newID("")
	f.apply(invokeRec(running, "", "", 0))
	if got := f.purgeJournal(running); got != rpc.ManageNotCompleted {
		t.Fatalf("purge-journal of a running invocation: %s, want %s", got, rpc.ManageNotCompleted)
	}
	if st := f.status(running); st == nil || st.Phase != store.PhaseInvoked || st.JournalLen != 1 || f.journalLen(running) != 1 {
		t.Fatalf("running invocation touched: %+v, %d entries stored", st, f.journalLen(running))
	}
	if got := f.purgeJournal(newID("")); got != rpc.ManageNotFound {
		t.Fatalf("purge-journal of an unknown invocation: %s, want %s", got, rpc.ManageNotFound)
	}
}
