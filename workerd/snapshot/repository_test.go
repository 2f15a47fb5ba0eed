package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorestate.dev/workerd/store"
)

func openPartition(t *testing.T) *store.Partition {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := db.Partition(3)
	if _, err := p.BuildIndexes(); err != nil { // as a processor does at start
		t.Fatal(err)
	}
	return p
}

func applyUpTo(t *testing.T, p *store.Partition, from, to uint64) {
	t.Helper()
	for lsn := from; lsn <= to; lsn++ {
		txn := p.Begin()
		txn.SetState("Counter", "k", []byte("count"), binary.BigEndian.AppendUint64(nil, lsn))
		txn.SetApplied(lsn)
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func newRepo(t *testing.T, retained int) (*Repository, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Repository{Store: st, Prefix: "cluster-prefix", ClusterName: "c", NodeName: "n1", NumRetained: retained}, dir
}

// Snapshots are published in order, retained up to NumRetained (older ones deleted), never
// moved backwards, and restore into an empty store as the same state.
func TestCreateRetainRestore(t *testing.T) {
	ctx := context.Background()
	repo, dir := newRepo(t, 2)
	p := openPartition(t)
	if _, err := repo.Latest(ctx, 3); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("latest before any snapshot: %v", err)
	}
	var metas []*Metadata
	for i, lsn := range []uint64{10, 20, 30} {
		applyUpTo(t, p, lsn-9, lsn)
		m, err := repo.Create(ctx, p, 3, 3, KeyRange{Start: 100, End: 199})
		if err != nil {
			t.Fatal(err)
		}
		if m.MinAppliedLSN != lsn || m.Files[0].Size == 0 {
			t.Fatalf("snapshot %d: %+v", i, m)
		}
		metas = append(metas, m)
	}
	l, err := repo.Latest(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l.MinAppliedLSN != 30 || len(l.Retained) != 2 || l.ArchivedLSN() != 20 {
		t.Fatalf("latest %+v, archived %d", l, l.ArchivedLSN())
	}
	// The oldest fell out of retention: its objects are gone.
	if _, err := os.Stat(filepath.Join(dir, "cluster-prefix", "3", metas[0].SnapshotIDPath())); !os.IsNotExist(err) {
		t.Fatalf("the snapshot out of retention is still there: %v", err)
	}
	list, err := repo.List(ctx, 3)
	if err != nil || len(list) != 2 || list[0].MinAppliedLSN != 30 {
		t.Fatalf("list %+v, %v", list, err)
	}

	// A leader that snapshots an older state (a deposed one, late) does not move latest back.
	old := openPartition(t)
	applyUpTo(t, old, 1, 25)
	got, err := repo.Create(ctx, old, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := repo.Latest(ctx, 3); l.MinAppliedLSN != 30 || got.SnapshotID != l.SnapshotID {
		t.Fatalf("latest %d (%s) after an older snapshot; Create answered %s", l.MinAppliedLSN, l.SnapshotID, got.SnapshotID)
	}

	q := openPartition(t)
	m, err := repo.Restore(ctx, q, 3, 30)
	if err != nil || m.MinAppliedLSN != 30 {
		t.Fatalf("restore %+v, %v", m, err)
	}
	want, _ := p.Digest()
	if got, _ := q.Digest(); got != want {
		t.Fatal("the restored store differs from the snapshotted one")
	}
	if _, err := repo.Restore(ctx, q, 3, 31); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("restore beyond the newest snapshot: %v", err)
	}
}

// A damaged data file or a snapshot of another format version is refused with a clear error,
// and the partition is left empty.
func TestRestoreRefusesBadSnapshots(t *testing.T) {
	ctx := context.Background()
	repo, dir := newRepo(t, 1)
	p := openPartition(t)
	applyUpTo(t, p, 1, 5)
	m, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(dir, "cluster-prefix", "3", m.SnapshotIDPath())
	data := filepath.Join(snapDir, "data.kv")
	b, _ := os.ReadFile(data)
	b[len(b)-3] ^= 0xff
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	q := openPartition(t)
	if _, err := repo.Restore(ctx, q, 3, 0); err == nil {
		t.Fatal("a damaged snapshot was restored")
	}
	if a, _ := q.Applied(); a != 0 {
		t.Fatalf("applied %d after a refused restore", a)
	}

	mj := filepath.Join(snapDir, "metadata.json")
	b, _ = os.ReadFile(mj)
	if !strings.Contains(string(b), fmt.Sprintf(`"version": %d`, FormatVersion)) {
		t.Fatalf("metadata.json without version %d: %s", FormatVersion, b)
	}
	newer := FormatVersion + 1
	if err := os.WriteFile(mj, []byte(strings.Replace(string(b), fmt.Sprintf(`"version": %d`, FormatVersion), fmt.Sprintf(`"version": %d`, newer), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Restore(ctx, q, 3, 0)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", newer)) || !strings.Contains(err.Error(), fmt.Sprintf("reads 1 to %d", FormatVersion)) {
		t.Fatalf("restore of format version %d: %v", newer, err)
	}
}

// Two clusters that share a destination and prefix by mistake: the second one neither
// restores nor trims by the first one's snapshots, and says why.
func TestSnapshotsOfAnotherClusterAreRefused(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t, 1)
	p := openPartition(t)
	applyUpTo(t, p, 1, 5)
	if _, err := repo.Create(ctx, p, 3, 3, KeyRange{}); err != nil {
		t.Fatal(err)
	}
	other := *repo
	other.ClusterName = "other"
	if _, err := other.Latest(ctx, 3); !errors.Is(err, ErrForeignCluster) || !strings.Contains(err.Error(), `cluster "c", this is cluster "other"`) {
		t.Fatalf("latest of another cluster's partition: %v", err)
	}
	q := openPartition(t)
	if _, err := other.Restore(ctx, q, 3, 0); !errors.Is(err, ErrForeignCluster) {
		t.Fatalf("restore of another cluster's snapshot: %v", err)
	}
	if a, _ := q.Applied(); a != 0 {
		t.Fatalf("applied %d after a refused restore", a)
	}
	if _, err := repo.Restore(ctx, q, 3, 0); err != nil {
		t.Fatalf("restore by the cluster that wrote it: %v", err)
	}
}

// A cluster provisioned again with the same name on a kept destination (its metadata wiped,
// say): the fingerprints differ, so the new cluster neither restores nor trims by the old
// one's snapshots. Snapshots without a fingerprint (written before fingerprints) and
// clusters without one (provisioned before) fall back to the name.
func TestSnapshotsOfAClusterWithAnotherFingerprintAreRefused(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t, 1)
	fp := func(v string) func() (string, error) { return func() (string, error) { return v, nil } }
	repo.ClusterFingerprint = fp("f1")
	p := openPartition(t)
	applyUpTo(t, p, 1, 5)
	m, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	if m.ClusterFingerprint != "f1" {
		t.Fatalf("metadata fingerprint %q, want f1", m.ClusterFingerprint)
	}
	again := *repo
	again.ClusterFingerprint = fp("f2")
	if _, err := again.Latest(ctx, 3); !errors.Is(err, ErrForeignCluster) || !strings.Contains(err.Error(), "fingerprint f1, this cluster's is f2") {
		t.Fatalf("latest of the earlier cluster's partition: %v", err)
	}
	q := openPartition(t)
	if _, err := again.Restore(ctx, q, 3, 0); !errors.Is(err, ErrForeignCluster) {
		t.Fatalf("restore of the earlier cluster's snapshot: %v", err)
	}
	unknown := *repo
	unknown.ClusterFingerprint = func() (string, error) { return "", errors.New("not read yet") }
	if _, err := unknown.Latest(ctx, 3); err == nil || !strings.Contains(err.Error(), "not read yet") {
		t.Fatalf("latest while the fingerprint is unknown: %v", err)
	}
	for name, r := range map[string]func() (string, error){"a cluster without a fingerprint": fp(""), "the writing cluster": fp("f1")} {
		other := *repo
		other.ClusterFingerprint = r
		if _, err := other.Restore(ctx, openPartition(t), 3, 0); err != nil {
			t.Fatalf("restore by %s: %v", name, err)
		}
	}
	// A snapshot written before fingerprints is restored by a cluster that has one.
	old := *repo
	old.ClusterFingerprint = nil
	applyUpTo(t, p, 6, 9)
	if _, err := old.Create(ctx, p, 3, 3, KeyRange{}); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Restore(ctx, openPartition(t), 3, 0); err != nil {
		t.Fatalf("restore of a snapshot without a fingerprint: %v", err)
	}
}

// Snapshots of version 1 (written before the second binary log encoding) are still read.
func TestRestoreReadsVersion1(t *testing.T) {
	ctx := context.Background()
	repo, dir := newRepo(t, 1)
	p := openPartition(t)
	applyUpTo(t, p, 1, 5)
	m, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "cluster-prefix", "3", m.SnapshotIDPath(), "metadata.json"), filepath.Join(dir, "cluster-prefix", "3", "latest.json")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(strings.Replace(string(b), fmt.Sprintf(`"version": %d`, FormatVersion), `"version": 1`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q := openPartition(t)
	got, err := repo.Restore(ctx, q, 3, 0)
	if err != nil || got.MinAppliedLSN != 5 {
		t.Fatalf("restore of a version-1 snapshot: %+v, %v", got, err)
	}
	if a, _ := q.Applied(); a != 5 {
		t.Fatalf("applied %d after restoring a version-1 snapshot", a)
	}
}

// Since 220ef15 the store keeps journal entries with an extension (append time, callee
// metadata) behind a flag bit and statuses with the transition times appended. A node of a
// version before that reads the flagged entries' extension as the payload (replaying it to
// the SDK) and fails on every status that has the times. Snapshots of such stores are of a
// format version those nodes refuse, so that they stop at the restore instead.
func TestSnapshotOfExtendedEntriesIsRefusedByEarlierVersions(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t, 1)
	p := openPartition(t)
	applyUpTo(t, p, 1, 2)
	txn := p.Begin()
	id := make([]byte, 24)
	id[23] = 1
	txn.PutJournalEntry(id, 0, store.JournalEntry{Type: 0x0400, Payload: []byte{0x0a, 0x00}, AppendedAt: 1_700_000_000_000})
	txn.SetApplied(3)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	m, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	const lastWithoutExtension = 4 // the format version of the versions before the extension
	if m.Version <= lastWithoutExtension {
		t.Fatalf("snapshot of format version %d, which nodes without the journal entry extension read", m.Version)
	}
	q := openPartition(t)
	if _, err := repo.Restore(ctx, q, 3, 0); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := q.Begin().JournalEntry(id, 0); err != nil || !ok || e.AppendedAt != 1_700_000_000_000 {
		t.Fatalf("restored entry %+v %v %v", e, ok, err)
	}
}
