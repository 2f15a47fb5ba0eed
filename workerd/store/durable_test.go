package store

import (
	"encoding/binary"
	"errors"
	"testing"
)

// commitRaw writes the batch without the bookkeeping of Commit, to simulate what a crash
// leaves behind.
func (t *Txn) commitRaw() error { return t.p.db.Write(&t.batch, nil) }

func commitApplied(t *testing.T, p *Partition, lsn uint64) {
	t.Helper()
	txn := p.Begin()
	txn.SetState("S", "k", []byte("n"), u64(lsn))
	txn.SetApplied(lsn)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}

func markers(t *testing.T, p *Partition) []uint64 {
	t.Helper()
	var out []uint64
	err := p.Each(func(k, _ []byte) error {
		if len(k) == 10 && k[0] == tMeta && k[1] == metaBatch {
			out = append(out, binary.BigEndian.Uint64(k[2:]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A checkpoint makes the applied LSN durable and drops the markers it covers; the markers
// after it chain to the applied LSN. A missing batch in the middle breaks the chain; a
// missing suffix (the usual crash) does not.
func TestCheckpointAndLostWrites(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(2)
	if err := p.Verify(); err != nil {
		t.Fatalf("empty store: %v", err)
	}
	for lsn := uint64(1); lsn <= 5; lsn++ {
		commitApplied(t, p, lsn)
	}
	if d, err := p.Checkpoint(); err != nil || d != 5 {
		t.Fatalf("checkpoint %d, %v; want 5", d, err)
	}
	if d, _ := p.Durable(); d != 5 || len(markers(t, p)) != 0 {
		t.Fatalf("durable %d, markers %v after the checkpoint", d, markers(t, p))
	}
	for _, lsn := range []uint64{7, 8, 12} {
		commitApplied(t, p, lsn)
	}
	if got := markers(t, p); len(got) != 3 || got[0] != 7 || got[2] != 12 {
		t.Fatalf("markers %v, want [7 8 12]", got)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	// The other partitions and the digest do not see the bookkeeping.
	d1, _ := p.Digest()
	if _, err := p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if d2, _ := p.Digest(); d1 != d2 {
		t.Fatal("a checkpoint changed the digest")
	}
	for _, lsn := range []uint64{13, 14, 15} {
		commitApplied(t, p, lsn)
	}

	// The last batch lost (its marker and its applied LSN went together): fine.
	lost := db.Partition(2)
	var b = lost.Begin()
	b.del(lost.markerKey(15))
	b.SetApplied(14)
	if err := b.commitRaw(); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("lost suffix: %v", err)
	}
	// Batch 13 lost but 14 kept: the state is wrong.
	b = lost.Begin()
	b.del(lost.markerKey(13))
	if err := b.commitRaw(); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(); !errors.Is(err, ErrLostWrites) {
		t.Fatalf("lost middle batch: %v", err)
	}
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("after wipe: %v", err)
	}
	if a, _ := p.Applied(); a != 0 {
		t.Fatalf("applied %d after wipe", a)
	}
}
