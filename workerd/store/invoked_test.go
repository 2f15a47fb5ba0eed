package store

import (
	"slices"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
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

// The invoked index follows every status change, and a store written before the index
// existed gets it built from its statuses on first use.
func TestInvokedIndex(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(3)
	// Statuses as an older version wrote them: no index entries, no flag.
	var old leveldb.Batch
	for id, phase := range map[string]Phase{"a": PhaseInvoked, "b": PhaseCompleted, "c": PhaseInvoked} {
		v := []byte(`{"p":"` + string(phase) + `"}`)
		old.Put(p.statusKey([]byte(id)), v)
	}
	if err := p.db.Write(&old, nil); err != nil {
		t.Fatal(err)
	}
	if got := invokedIDs(t, p); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("built index %v, want [a c]", got)
	}
	txn := p.Begin()
	if err := txn.PutStatus([]byte("a"), &Status{Phase: PhaseCompleted}); err != nil {
		t.Fatal(err)
	}
	if err := txn.PutStatus([]byte("d"), &Status{Phase: PhaseInvoked}); err != nil {
		t.Fatal(err)
	}
	txn.DeleteStatus([]byte("c"))
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := invokedIDs(t, p); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("index %v after changes, want [d]", got)
	}
	// Other partitions are apart.
	if got := invokedIDs(t, db.Partition(4)); len(got) != 0 {
		t.Fatalf("partition 4: %v", got)
	}
}
