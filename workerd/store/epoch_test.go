package store

import (
	"bytes"
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
