package store

import (
	"reflect"
	"testing"

	"gorestate.dev/shared/logrecord"
)

// Bytes from disk never panic the event decoder; what decodes encodes and decodes the same
// again.
func FuzzJournalEvent(f *testing.F) {
	idx, name, typ := uint32(1), "myrun", uint32(0x0411)
	for _, e := range []JournalEvent{
		{Type: logrecord.EventTransientError, AppendedAt: 1_796_666_321_768, AfterEntryIndex: 2, Commands: 1,
			Failure: &logrecord.EventFailure{Code: 500, Message: "run boom", DocCode: "RT0007", RelatedIndex: &idx, RelatedName: &name, RelatedType: &typ}},
		{Type: logrecord.EventPaused, AppendedAt: 1},
		{Type: logrecord.EventPaused, Failure: &logrecord.EventFailure{Code: 500, Message: "x", Stacktrace: "goroutine 1"}},
	} {
		f.Add(encodeEvent(e))
	}
	f.Add([]byte{eventFormat})
	f.Add([]byte{eventFormat, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b)
		if err != nil {
			return
		}
		again, err := decodeEvent(encodeEvent(e))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("re-decode differs:\n got %+v\nwant %+v", again, e)
		}
	})
}

// LastJournalEvent is the last of JournalEvents: committed events, the transaction's own
// (after committed ones), and none once the journal is deleted, in the same transaction or
// after; another invocation's events (of a neighbouring id) never count.
func TestLastJournalEvent(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(0)
	id := make([]byte, 24)
	next := make([]byte, 24)
	next[23] = 1
	ev := func(msg string) JournalEvent {
		return JournalEvent{Type: logrecord.EventTransientError, Failure: &logrecord.EventFailure{Code: 500, Message: msg}}
	}
	check := func(txn *Txn, want string) {
		t.Helper()
		last, ok, err := txn.LastJournalEvent(id)
		if err != nil {
			t.Fatal(err)
		}
		all, err := txn.JournalEvents(id)
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			if ok || len(all) != 0 {
				t.Fatalf("last %+v (%v), all %d; want none", last, ok, len(all))
			}
			return
		}
		if !ok || last.Failure.Message != want || !reflect.DeepEqual(last, all[len(all)-1]) {
			t.Fatalf("last %+v (%v), want %q, the last of %+v", last, ok, want, all)
		}
	}
	txn := p.Begin()
	check(txn, "")
	txn.PutJournalEvent(next, 0, ev("other invocation"))
	txn.PutJournalEvent(id, 0, ev("a"))
	txn.PutJournalEvent(id, 1, ev("b"))
	check(txn, "b") // the transaction's own
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn = p.Begin()
	check(txn, "b") // committed
	txn.PutJournalEvent(id, 2, ev("c"))
	check(txn, "c") // own after committed
	txn.PutJournalEvent(id, 1, ev("b2"))
	check(txn, "c")
	if err := txn.DeleteJournal(id, 0); err != nil {
		t.Fatal(err)
	}
	check(txn, "") // deleted in the transaction
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	check(p.Begin(), "")
	if last, ok, err := p.Begin().LastJournalEvent(next); err != nil || !ok || last.Failure.Message != "other invocation" {
		t.Fatalf("the other invocation's last event: %+v %v %v", last, ok, err)
	}
}
