package snapshot

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gorestate.dev/workerd/store"
)

// crashProbe wraps an ObjectStore: the data file it serves calls probe whenever it reports
// EOF, the last time once the import has read the export and Restore drains the stream to
// finish the checksum.
type crashProbe struct {
	ObjectStore
	probe func()
}

func (c *crashProbe) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := c.ObjectStore.Get(ctx, key)
	if err != nil || filepath.Base(key) != dataFile {
		return rc, err
	}
	return &probeReader{ReadCloser: rc, probe: c.probe}, nil
}

type probeReader struct {
	io.ReadCloser
	probe func()
}

func (p *probeReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	if err == io.EOF {
		p.probe()
	}
	return n, err
}

// A data file damaged in a way the export format does not notice (a flipped byte in a
// value): Restore compares its SHA-256 with metadata.json before the import is committed
// (the replace mark removed, applied and durable LSN set). A crash between a commit and the
// check would leave the damaged state installed as a sound store at the snapshot's LSN:
// Verify would pass on restart, and with applied != 0 no restore would be tried again.
func TestRestoreNeverCommitsAnUnverifiedSnapshot(t *testing.T) {
	ctx := context.Background()
	repo, dir := newRepo(t, 1)
	p := openPartition(t)
	applyUpTo(t, p, 1, 5)
	m, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "cluster-prefix", "3", m.SnapshotIDPath(), "data.kv")
	b, _ := os.ReadFile(data)
	b[len(b)-3] ^= 0xff // the last byte of the last value
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}

	q := openPartition(t)
	var crashState struct {
		probed   bool
		verify   error
		applied  uint64
		durable  uint64
		digestOK bool
	}
	repo.Store = &crashProbe{ObjectStore: repo.Store, probe: func() {
		// What a crash right now would leave on disk.
		crashState.probed = true
		crashState.verify = q.Verify()
		crashState.applied, _ = q.Applied()
		crashState.durable, _ = q.Durable()
	}}
	if _, err := repo.Restore(ctx, q, 3, 0); err == nil {
		t.Fatal("a damaged snapshot was restored")
	}
	if !crashState.probed {
		t.Skip("the data file was not drained after the import; nothing to probe")
	}
	if crashState.verify == nil && crashState.applied != 0 {
		t.Fatalf("before the checksum was compared, the damaged import was already committed: "+
			"Verify passes, applied %d, durable %d -- a crash here keeps it", crashState.applied, crashState.durable)
	}
}

// The newest retained snapshot is damaged while an older retained one (NumRetained = 2)
// still covers the trim point (the log is trimmed only up to the archived LSN, the oldest
// retained): Restore falls back to the older one, which with the log is enough. (It used to
// try only the newest, and the replica could not start.)
func TestRestoreFallsBackToAnOlderRetainedSnapshot(t *testing.T) {
	ctx := context.Background()
	repo, dir := newRepo(t, 2)
	p := openPartition(t)
	applyUpTo(t, p, 1, 10)
	if _, err := repo.Create(ctx, p, 3, 3, KeyRange{}); err != nil {
		t.Fatal(err)
	}
	applyUpTo(t, p, 11, 20)
	newest, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := repo.Latest(ctx, 3)
	if err != nil || l.ArchivedLSN() != 10 {
		t.Fatalf("latest %+v %v", l, err)
	}
	data := filepath.Join(dir, "cluster-prefix", "3", newest.SnapshotIDPath(), "data.kv")
	b, _ := os.ReadFile(data)
	if err := os.WriteFile(data, b[:len(b)/2], 0o644); err != nil { // truncated upload / bit rot
		t.Fatal(err)
	}
	// A follower that hit the trim gap at the archived LSN.
	q := openPartition(t)
	m, err := repo.Restore(ctx, q, 3, l.ArchivedLSN())
	if err != nil {
		t.Fatalf("restore covering the trim point %d with a sound retained snapshot at %d available: %v", l.ArchivedLSN(), l.ArchivedLSN(), err)
	}
	if m.MinAppliedLSN < l.ArchivedLSN() {
		t.Fatalf("restored %d", m.MinAppliedLSN)
	}
	_ = store.ErrBadExport
}

// partition 3's latest.json names partition 4 (copied or moved by hand, a bucket restored
// into the wrong place): Restore refuses it (metadata.json's partition id), and so does
// Latest, which the leader's trim gate reads (ArchivedLSN): otherwise partition 3's log
// would be trimmed by partition 4's LSNs up to a point no snapshot of partition 3 covers.
func TestLatestOfAnotherPartitionIsRefused(t *testing.T) {
	ctx := context.Background()
	repo, dir := newRepo(t, 1)
	p := openPartition(t)
	applyUpTo(t, p, 1, 50)
	if _, err := repo.Create(ctx, p, 4, 4, KeyRange{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cluster-prefix", "4", "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cluster-prefix", "3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster-prefix", "3", "latest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	q := openPartition(t)
	if _, rerr := repo.Restore(ctx, q, 3, 0); rerr == nil {
		t.Fatal("partition 4's snapshot restored into partition 3")
	}
	if l, err := repo.Latest(ctx, 3); err == nil {
		t.Fatalf("partition 3's latest.json of partition %d accepted (archived LSN %d gates partition 3's trim), though Restore refuses it", l.PartitionID, l.ArchivedLSN())
	}
}
