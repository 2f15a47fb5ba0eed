package store

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// crashingReader stands for the process dying (kill -9) once n bytes were read.
type crashingReader struct {
	r io.Reader
	n int
}

var errCrash = errors.New("simulated crash")

func (c *crashingReader) Read(b []byte) (int, error) {
	if c.n <= 0 {
		panic(errCrash)
	}
	if len(b) > c.n {
		b = b[:c.n]
	}
	k, err := c.r.Read(b)
	c.n -= k
	return k, err
}

// exportOf returns an export of a partition with applied LSN 50 and enough state that
// an import writes it in several batches, and the partition's digest.
func exportOf(t *testing.T) ([]byte, [32]byte) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := s.Partition(1)
	if _, err := p.BuildIndexes(); err != nil { // as a processor does at start
		t.Fatal(err)
	}
	txn := p.Begin()
	for i := uint64(1); i <= 3000; i++ {
		txn.SetState("Counter", "k", u64(i), u64(i))
		if err := txn.PutStatus(u64(i), &Status{Phase: PhaseInvoked}, nil); err != nil {
			t.Fatal(err)
		}
	}
	txn.SetApplied(50)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	exp, err := p.OpenExport()
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Release()
	var buf bytes.Buffer
	if _, err := exp.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	digest, err := p.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), digest
}

// An import cut short by a crash writes the applied LSN (its key sorts before most of the
// state) but not all the state: the store it leaves must not pass for a complete one.
// Verify says so, and a wipe then leaves an empty store that a restore can fill.
func TestImportCutShortByACrashIsNotTakenForComplete(t *testing.T) {
	data, want := exportOf(t)
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != errCrash {
				panic(r)
			}
		}()
		_, _ = s.Partition(1).Import(&crashingReader{r: bytes.NewReader(data), n: len(data) * 9 / 10})
		t.Fatal("the import read the whole export")
	}()
	s.Close() // the process is gone; the next one opens the store
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := s.Partition(1)
	applied, _ := p.Applied()
	t.Logf("after the crash: applied LSN %d", applied)
	if err := p.Verify(); !errors.Is(err, ErrLostWrites) {
		t.Fatalf("Verify after an interrupted import = %v, want ErrLostWrites", err)
	}
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	if applied, _ := p.Applied(); applied != 0 {
		t.Fatalf("applied LSN %d after the wipe", applied)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("Verify after the wipe: %v", err)
	}
	got, err := p.Import(bytes.NewReader(data))
	if err != nil || got != 50 {
		t.Fatalf("import = %d, %v; want 50", got, err)
	}
	if d, _ := p.Digest(); d != want {
		t.Fatal("the import's digest differs from the exported partition's")
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("Verify after a complete import: %v", err)
	}
}

// A wipe cut short leaves part of the old state with its applied LSN possibly gone:
// replaying the log on top of the rest would double it. Verify says so.
func TestWipeCutShortIsDetected(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Partition(1)
	commitApplied(t, p, 7)
	if err := p.beginReplace(); err != nil { // the crash comes before endReplace
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Partition(1).Verify(); !errors.Is(err, ErrLostWrites) {
		t.Fatalf("Verify after an interrupted wipe = %v, want ErrLostWrites", err)
	}
	if err := s.Partition(1).Wipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Partition(1).Verify(); err != nil {
		t.Fatalf("Verify after a complete wipe: %v", err)
	}
}
