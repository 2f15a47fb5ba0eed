package store

import (
	"bytes"
	"fmt"
	"testing"
)

// The epoch is read from memory after the first read, and every way the stored epoch
// changes (a commit of SetEpoch, a wipe, an import) shows in the next read, through any
// view of the partition.
func TestEpochCacheFollowsWrites(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, other := db.Partition(3), db.Partition(3)
	want := func(what string, epoch uint64) {
		t.Helper()
		for _, v := range []*Partition{p, other} {
			if got, err := v.Epoch(); err != nil || got != epoch {
				t.Fatalf("%s: epoch %d, %v, want %d", what, got, err, epoch)
			}
		}
	}
	want("new partition", 0)
	setEpoch := func(epoch uint64) {
		t.Helper()
		txn := p.Begin()
		txn.SetEpoch(epoch)
		if got, _ := txn.Epoch(); got != epoch {
			t.Fatalf("a transaction reads its own epoch %d as %d", epoch, got)
		}
		if got, _ := p.Epoch(); got == epoch {
			t.Fatalf("epoch %d visible before its commit", epoch)
		}
		txn.SetApplied(epoch)
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	setEpoch(4)
	want("after a commit", 4)
	// Served from memory: a write behind the store's back is not seen (no code does that).
	if err := db.ldb.Put(p.key(tMeta, []byte{metaEpoch}), u64(99), nil); err != nil {
		t.Fatal(err)
	}
	want("cached", 4)
	setEpoch(5)
	want("after the next commit", 5)
	if got, _ := db.Partition(4).Epoch(); got != 0 {
		t.Fatalf("another partition's epoch is %d", got)
	}

	exp, err := p.OpenExport()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := exp.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	exp.Release()
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	want("after a wipe", 0)
	if _, err := other.Import(&buf); err != nil {
		t.Fatal(err)
	}
	want("after an import", 5)
}

// State returns every entry of an object, and only the newest value of each, also when the
// memtable holds many versions of them.
func TestStateSkipsOldVersions(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(1)
	for i := range 500 {
		txn := p.Begin()
		for _, name := range []string{"a", "b", "b\x00", "c"} {
			txn.SetState("Counter", "k", []byte(name), u64(uint64(i)))
		}
		txn.SetState("Counter", "k2", []byte("a"), u64(1)) // the next object's state
		if i == 499 {
			txn.ClearState("Counter", "k", []byte("c"))
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	got, err := snap.State("Counter", "k")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, string(e.Key))
		if string(e.Value) != string(u64(499)) {
			t.Fatalf("%q = %x, want the newest value", e.Key, e.Value)
		}
	}
	if fmt.Sprint(names) != fmt.Sprint([]string{"a", "b", "b\x00"}) {
		t.Fatalf("state keys %q", names)
	}
}

// PopInbox serves an object's queue in order across commits, including entries pushed
// after pops and entries deleted out of turn, and the hints it keeps are dropped by a wipe
// (which resets the sequence numbers).
func TestPopInboxInOrder(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(1)
	commit := func(f func(*Txn)) {
		t.Helper()
		txn := p.Begin()
		f(txn)
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	push := func(txn *Txn, id string) uint64 {
		seq, err := txn.PushInbox("Obj", "k", []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	pop := func(txn *Txn) string {
		v, err := txn.PopInbox("Obj", "k")
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	var got []string
	var seq3 uint64
	commit(func(txn *Txn) {
		push(txn, "1")
		push(txn, "2")
		seq3 = push(txn, "3")
		push(txn, "4")
	})
	commit(func(txn *Txn) { got = append(got, pop(txn), pop(txn)) }) // two pops in one batch
	commit(func(txn *Txn) { txn.DeleteInboxEntry("Obj", "k", seq3) })
	// A popped entry whose batch is dropped stays queued.
	txn := p.Begin()
	if v := pop(txn); v != "4" {
		t.Fatalf("pop in a dropped batch: %q", v)
	}
	commit(func(txn *Txn) { push(txn, "5") })
	commit(func(txn *Txn) { got = append(got, pop(txn)) })
	commit(func(txn *Txn) { got = append(got, pop(txn), pop(txn)) })
	if fmt.Sprint(got) != "[1 2 4 5 ]" {
		t.Fatalf("popped %q", got)
	}
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	commit(func(txn *Txn) { push(txn, "after wipe") })
	commit(func(txn *Txn) { got = []string{pop(txn)} })
	if got[0] != "after wipe" {
		t.Fatalf("after a wipe popped %q", got[0])
	}
}
