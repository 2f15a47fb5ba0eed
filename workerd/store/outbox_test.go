package store

import (
	"slices"
	"testing"
)

func outboxSeqs(t *testing.T, p *Partition, after uint64) []uint64 {
	t.Helper()
	msgs, err := p.Outbox(after)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, m := range msgs {
		if want := []byte{byte(m.Seq)}; m.Partition != uint32(m.Seq%3) || !slices.Equal(m.Record, want) {
			t.Fatalf("message %d: partition %d record %v", m.Seq, m.Partition, m.Record)
		}
		out = append(out, m.Seq)
	}
	return out
}

// Outbox reads start after the given seq and truncation removes exactly the messages up to
// its seq, committed or written in the same transaction, and nothing of another partition.
func TestOutboxRanges(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, other := db.Partition(1), db.Partition(2)
	txn := p.Begin()
	otherTxn := other.Begin()
	for i := 1; i <= 300; i++ {
		if _, err := txn.PushOutbox(uint32(i%3), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := otherTxn.PushOutbox(uint32(i%3), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := otherTxn.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := outboxSeqs(t, p, 297); !slices.Equal(got, []uint64{298, 299, 300}) {
		t.Fatalf("Outbox(297) = %v", got)
	}
	txn = p.Begin()
	if _, err := txn.PushOutbox(301%3, []byte{301 % 256}); err != nil { // not committed yet: truncated with the rest
		t.Fatal(err)
	}
	if err := txn.TruncateOutbox(256); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	got := outboxSeqs(t, p, 0)
	if len(got) != 45 || got[0] != 257 || got[len(got)-1] != 301 {
		t.Fatalf("after truncating to 256: %d messages %v..%v, want 257..301", len(got), got[0], got[len(got)-1])
	}
	if got := outboxSeqs(t, other, 0); len(got) != 300 {
		t.Fatalf("the other partition's outbox has %d messages, want 300", len(got))
	}
	txn = p.Begin()
	if err := txn.TruncateOutbox(301); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := outboxSeqs(t, p, 0); len(got) != 0 {
		t.Fatalf("after truncating everything: %v", got)
	}
}
