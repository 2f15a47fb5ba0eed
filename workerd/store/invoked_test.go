package store

import (
	"slices"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/logrecord"
)

func invokedIDs(t *testing.T, p *Partition) []string {
	t.Helper()
	// Pages of two, so paging itself is checked.
	var out []string
	var after []byte
	for {
		ids, err := p.InvokedPage(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			out = append(out, string(id))
		}
		if len(ids) < 2 {
			return out
		}
		after = ids[len(ids)-1]
	}
}

// newestIDs lists the ids of the creation-time index (all, or the unfinished only),
// newest first.
func newestIDs(t *testing.T, p *Partition, unfinished bool) []string {
	t.Helper()
	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var out []string
	err = snap.NewestFirst(unfinished, func(id []byte, _ int64) (bool, error) {
		out = append(out, string(id))
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkIndexes(t *testing.T, p *Partition, invoked, unfinished, all []string) {
	t.Helper()
	if got := invokedIDs(t, p); !slices.Equal(got, invoked) {
		t.Errorf("invoked index %v, want %v", got, invoked)
	}
	if got := newestIDs(t, p, true); !slices.Equal(got, unfinished) {
		t.Errorf("unfinished, newest first: %v, want %v", got, unfinished)
	}
	if got := newestIDs(t, p, false); !slices.Equal(got, all) {
		t.Errorf("all, newest first: %v, want %v", got, all)
	}
}

// The status indexes follow every status change, whether the writer knows the stored
// status or not, and a store written before they existed gets them built once.
func TestStatusIndexes(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(3)
	// Statuses as an older version wrote them: no index entries, no flag.
	var old leveldb.Batch
	for id, st := range map[string]string{
		"a": `{"p":"invoked","ca":10}`, "b": `{"p":"completed","ca":20}`, "c": `{"p":"invoked","ca":30}`,
	} {
		old.Put(p.statusKey([]byte(id)), []byte(st))
	}
	if err := p.db.Write(&old, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := p.BuildIndexes(); err != nil || n != 3 {
		t.Fatalf("BuildIndexes = %d, %v; want 3 statuses indexed", n, err)
	}
	if n, err := p.BuildIndexes(); err != nil || n != 0 {
		t.Fatalf("second BuildIndexes = %d, %v; want nothing to do", n, err)
	}
	checkIndexes(t, p, []string{"a", "c"}, []string{"c", "a"}, []string{"c", "b", "a"})

	txn := p.Begin()
	// a completes (the writer knows what was stored), d is new, c is deleted without the
	// caller knowing its status, b is suspended again by a writer that does not know.
	must(t, txn.PutStatus([]byte("a"), &Status{Phase: PhaseCompleted, CreatedAt: 10}, &Indexed{Phase: PhaseInvoked, CreatedAt: 10}))
	must(t, txn.PutStatus([]byte("d"), &Status{Phase: PhaseInvoked, CreatedAt: 40}, nil))
	must(t, txn.DeleteStatus([]byte("c"), nil))
	must(t, txn.PutStatus([]byte("b"), &Status{Phase: PhaseSuspended, CreatedAt: 20}, nil))
	must(t, txn.Commit())
	checkIndexes(t, p, []string{"d"}, []string{"d", "b"}, []string{"d", "b", "a"})

	// a expires and a new invocation takes its id in the same batch.
	txn = p.Begin()
	must(t, txn.PutStatus([]byte("a"), &Status{Phase: PhaseScheduled, CreatedAt: 50}, &Indexed{Phase: PhaseCompleted, CreatedAt: 10}))
	// An unchanged phase writes no index entry, and a deleted one with a known status
	// removes its own.
	must(t, txn.PutStatus([]byte("d"), &Status{Phase: PhaseInvoked, CreatedAt: 40, JournalLen: 3}, &Indexed{Phase: PhaseInvoked, CreatedAt: 40}))
	must(t, txn.DeleteStatus([]byte("b"), &Indexed{Phase: PhaseSuspended, CreatedAt: 20}))
	must(t, txn.Commit())
	checkIndexes(t, p, []string{"d"}, []string{"a", "d"}, []string{"a", "d"})

	// Other partitions are apart.
	if got := invokedIDs(t, db.Partition(4)); len(got) != 0 {
		t.Fatalf("partition 4: %v", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Journal reads short journals key by key and long ones with an iterator; both give the
// entries in order, and a journal shorter than its status says is an error.
func TestJournalShortAndLong(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(1)
	id := []byte("invocation-id-of-24-byte")
	txn := p.Begin()
	for i := range uint32(20) {
		txn.PutJournalEntry(id, i, JournalEntry{Type: uint16(i), Payload: []byte{byte(i)}})
	}
	must(t, txn.Commit())
	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	for _, n := range []uint32{0, 1, journalGets, journalGets + 1, 20} {
		es, err := snap.Journal(id, n)
		if err != nil || uint32(len(es)) != n {
			t.Fatalf("n=%d: %d entries, %v", n, len(es), err)
		}
		for i, e := range es {
			if e.Type != uint16(i) || len(e.Payload) != 1 || e.Payload[0] != byte(i) {
				t.Fatalf("n=%d: entry %d is %+v", n, i, e)
			}
		}
	}
	for _, n := range []uint32{5, 21} {
		other := []byte("invocation-id-of-24-byt_")
		if _, err := snap.Journal(other, n); err == nil {
			t.Fatalf("n=%d: a missing journal read without an error", n)
		}
	}
	if _, err := snap.Journal(id, 21); err == nil {
		t.Fatal("a journal shorter than its count read without an error")
	}
}

// A scan with a head filter decodes only the statuses whose phase and target pass it;
// statuses stored as JSON have no head and always reach the callback.
func TestEachStatusWhere(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(2)
	txn := p.Begin()
	for id, st := range map[string]*Status{
		"a": {Phase: PhaseCompleted, Target: logrecord.Target{Service: "Greeter", Handler: "greet"}},
		"b": {Phase: PhaseInvoked, Target: logrecord.Target{Service: "Greeter", Handler: "greet"}},
		"c": {Phase: PhaseCompleted, Target: logrecord.Target{Service: "Counter", Handler: "add"}},
	} {
		must(t, txn.PutStatus([]byte(id), st, nil))
	}
	must(t, txn.Commit())
	var old leveldb.Batch
	old.Put(p.statusKey([]byte("d")), []byte(`{"p":"invoked"}`))
	must(t, p.db.Write(&old, nil))

	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var heads, got []string
	keep := func(h StatusHead) bool {
		heads = append(heads, string(h.Phase)+" "+string(h.Service)+"/"+string(h.Handler))
		return h.Phase == PhaseCompleted && string(h.Service) == "Greeter"
	}
	err = snap.EachStatusWhere(keep, func(id []byte, st *Status) (bool, error) {
		got = append(got, string(id)+" "+string(st.Phase))
		return true, nil
	})
	must(t, err)
	if want := []string{"a completed", "d invoked"}; !slices.Equal(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	if want := []string{"completed Greeter/greet", "invoked Greeter/greet", "completed Counter/add"}; !slices.Equal(heads, want) {
		t.Errorf("heads %v, want %v", heads, want)
	}
}
