package store

import (
	"bytes"
	"reflect"
	"testing"
)

// MigrateKeyLayout moves statuses, journals and notifications keyed by the ids as they are
// (an earlier version's layout) to keyID order, leaves the other tables alone, and goes on
// where an interrupted run stopped: keys already moved stay, the rest follow.
func TestMigrateKeyLayout(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(3)
	id := func(i int) []byte {
		v := make([]byte, 24)
		v[0], v[1], v[8], v[22], v[23] = byte(i>>8), byte(i), 0x01, byte(i>>8), byte(i)
		return v
	}
	const n = 2*migrateBatch + 10 // several batches
	want := map[int]*Status{}
	txn := p.Begin()
	for i := range n {
		st := &Status{Phase: PhaseCompleted, CreatedAt: int64(i), JournalLen: 2}
		want[i] = st
		if err := txn.PutStatus(id(i), st, nil); err != nil {
			t.Fatal(err)
		}
		txn.PutJournalEntry(id(i), 0, JournalEntry{Type: 1, Payload: []byte{byte(i)}})
		txn.PutJournalEntry(id(i), 1, JournalEntry{Type: 2, Payload: []byte{byte(i >> 8)}})
		txn.MarkNotified(id(i), NotifyName, []byte("name"), 1)
	}
	txn.SetState("Counter", "k", []byte("count"), []byte("7"))
	must(t, txn.Commit())

	// Rewrite the first half into the old layout: the second half is what an interrupted
	// migration had already moved.
	var b bytes.Buffer
	moveBack := 0
	err = p.Each(func(k, v []byte) error {
		if len(k) < 25 || (k[0] != tStatus && k[0] != tJournal && k[0] != tNotified) {
			return nil
		}
		kid := k[1:25]
		if idOfKey(kid)[1]%2 == 1 {
			return nil
		}
		old := map[byte]byte{tStatus: tStatusV1, tJournal: tJournalV1, tNotified: tNotifiedV1}[k[0]]
		b.Reset()
		b.WriteByte(old)
		b.Write(idOfKey(kid))
		b.Write(k[25:])
		must(t, p.db.Put(p.key(b.Bytes()[0], b.Bytes()[1:]), v, nil))
		must(t, p.db.Delete(p.key(k[0], k[1:]), nil))
		moveBack++
		return nil
	})
	if err != nil || moveBack == 0 {
		t.Fatalf("rewrote %d keys to the old layout, %v", moveBack, err)
	}
	if st, err := p.Begin().Status(id(0)); err != nil || st != nil {
		t.Fatalf("status in the old layout read as %+v, %v", st, err)
	}

	moved, err := p.MigrateKeyLayout()
	if err != nil || moved != moveBack {
		t.Fatalf("moved %d keys, %v; want %d", moved, err, moveBack)
	}
	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	for i := range n {
		st, err := p.Begin().Status(id(i))
		if err != nil || !reflect.DeepEqual(st, want[i]) {
			t.Fatalf("status %d: %+v, %v", i, st, err)
		}
		j, err := snap.Journal(id(i), 2)
		if err != nil || len(j) != 2 || j[1].Payload[0] != byte(i>>8) {
			t.Fatalf("journal %d: %+v, %v", i, j, err)
		}
		if ok, err := p.Begin().Notified(id(i), NotifyName, []byte("name")); err != nil || !ok {
			t.Fatalf("notification %d: %v, %v", i, ok, err)
		}
	}
	seen := map[int]bool{}
	must(t, snap.EachStatus(func(got []byte, _ *Status) (bool, error) {
		i := int(got[0])<<8 | int(got[1])
		if i >= n || !bytes.Equal(got, id(i)) || seen[i] {
			t.Errorf("scan gave id %x", got)
		}
		seen[i] = true
		return true, nil
	}))
	if len(seen) != n {
		t.Fatalf("scanned %d statuses, want %d", len(seen), n)
	}
	if v, ok, err := p.Begin().StateValue("Counter", "k", []byte("count")); err != nil || !ok || string(v) != "7" {
		t.Fatalf("state %q %v %v", v, ok, err)
	}
}
