package store

import (
	"bytes"
	"errors"
	"testing"
)

// An export imported into another store (and another partition id) gives the same state,
// applied LSN and digest; the import is durable at once; a damaged export is refused and
// leaves the partition empty.
func TestExportImport(t *testing.T) {
	src, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := src.Partition(1)
	if _, err := p.BuildIndexes(); err != nil { // as a processor does at start
		t.Fatal(err)
	}
	for lsn := uint64(1); lsn <= 50; lsn++ {
		txn := p.Begin()
		txn.SetState("Counter", string(rune('a'+lsn%7)), []byte("count"), u64(lsn))
		if err := txn.PutStatus(u64(lsn), &Status{Phase: PhaseInvoked}, nil); err != nil {
			t.Fatal(err)
		}
		txn.SetApplied(lsn)
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	exp, err := p.OpenExport()
	if err != nil || exp.Applied != 50 {
		t.Fatalf("export: %+v, %v", exp, err)
	}
	defer exp.Release()
	// Writes after the view was taken do not leak into it.
	commitApplied(t, p, 51)
	if _, err := exp.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}

	dst, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	q := dst.Partition(1)
	commitApplied(t, q, 7) // whatever was there goes
	data := buf.Bytes()
	got, err := q.Import(bytes.NewReader(data))
	if err != nil || got != 50 {
		t.Fatalf("import: applied %d, %v", got, err)
	}
	if d, _ := q.Durable(); d != 50 {
		t.Fatalf("durable %d after import", d)
	}
	if err := q.Verify(); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	exp2, err := q.OpenExport()
	if err != nil {
		t.Fatal(err)
	}
	defer exp2.Release()
	if _, err := exp2.WriteTo(&again); err != nil || !bytes.Equal(again.Bytes(), data) {
		t.Fatalf("re-export differs (%v)", err)
	}
	ids, err := q.InvokedPage(nil, 100)
	if err != nil || len(ids) != 50 {
		t.Fatalf("%d invoked after import, %v", len(ids), err)
	}

	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)-5],
		"magic":     append([]byte("something else\n"), data[len(exportMagic):]...),
		"huge":      append(append([]byte(nil), exportMagic...), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := q.Import(bytes.NewReader(bad)); !errors.Is(err, ErrBadExport) {
			t.Fatalf("%s: %v", name, err)
		}
		if a, _ := q.Applied(); a != 0 {
			t.Fatalf("%s: applied %d after a refused import", name, a)
		}
	}
}

func FuzzImport(f *testing.F) {
	f.Add(append(append([]byte(nil), exportMagic...), 1, 's', 1, 'x', 0, 0))
	f.Add(exportMagic)
	db, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := db.Partition(0)
		if _, err := p.Import(bytes.NewReader(b)); err != nil && !errors.Is(err, ErrBadExport) {
			t.Fatalf("import error that is not ErrBadExport: %v", err)
		}
	})
}
