// Package snapshot owns partition snapshots in an object store: publishing a partition's
// state at an applied LSN (the data file of store.Export plus a metadata document), the
// partition's latest pointer that only moves forward, retention, and restoring a partition
// store from the newest snapshot.
//
// Layout under the destination's prefix, as in Restate:
//
//	<partition>/latest.json                                  the only object that changes
//	<partition>/lsn_<20-digit LSN>-<snapshot id>/metadata.json
//	<partition>/lsn_<20-digit LSN>-<snapshot id>/data.kv
package snapshot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"gorestate.dev/workerd/store"
)

// FormatVersion is the version of metadata.json (and of the data file it names) that this
// version writes. Version 2 has the layout of version 1; it says that the partition's log
// past the snapshot may hold records of the second binary encoding (logrecord
// KindTraceFormat), so that nodes of versions before it refuse to restore from it instead
// of skipping those records after the marker, which the snapshot already covers. Version 3
// has a data file of the store's export format v2 (statuses, journals and notifications
// keyed with the uuid first): nodes of earlier versions refuse it here rather than fail on
// the data file after downloading it. Version 4 has the layout of version 3; like version 2
// it says that the log past the snapshot may hold records of a newer encoding (the third,
// logrecord.KindCalleeFormat) and state patches. Version 5 has the layout of version 4; its
// data file may hold journal entries with the store's extension (append time, callee
// metadata, behind a flag bit of the entry) and statuses with the transition times appended,
// which nodes of earlier versions would misread (the extension as the entry's payload) or
// fail on: they refuse it here. Version 6 has the layout of version 5; like version 2 it
// says that the log past the snapshot may hold records of newer apply rules (the marker
// logrecord.KindManageFormat), which nodes of earlier versions would apply by their rules.
// Version 7 has the layout of version 6 (plus the journal events, which earlier versions
// would just not read) and says the same of the marker logrecord.KindEventsFormat.
// This version reads all seven.
const FormatVersion = 7

// readable reports whether this version reads snapshots (and latest.json) of version v.
func readable(v int) bool { return v >= 1 && v <= FormatVersion }

const dataFile = "data.kv"

// File is one data file of a snapshot.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// KeyRange is the partition-key range a snapshot covers (inclusive).
type KeyRange struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

// Metadata is a snapshot's metadata.json.
type Metadata struct {
	Version     int    `json:"version"`
	ClusterName string `json:"cluster_name"`
	// ClusterFingerprint is the writing cluster's fingerprint (empty: written before
	// fingerprints, or by a cluster provisioned before them).
	ClusterFingerprint string    `json:"cluster_fingerprint,omitempty"`
	PartitionID        uint32    `json:"partition_id"`
	NodeName           string    `json:"node_name"`
	CreatedAt          time.Time `json:"created_at"`
	SnapshotID         string    `json:"snapshot_id"`
	KeyRange           KeyRange  `json:"key_range"`
	LogID              uint32    `json:"log_id"`
	MinAppliedLSN      uint64    `json:"min_applied_lsn"`
	Files              []File    `json:"files"`
}

// Retained names one snapshot that latest.json keeps.
type Retained struct {
	SnapshotID    string    `json:"snapshot_id"`
	MinAppliedLSN uint64    `json:"min_applied_lsn"`
	CreatedAt     time.Time `json:"created_at"`
	Path          string    `json:"path"`
}

// Latest is a partition's latest.json: the newest snapshot and the retained ones, newest
// first.
type Latest struct {
	Version            int        `json:"version"`
	ClusterName        string     `json:"cluster_name"`
	ClusterFingerprint string     `json:"cluster_fingerprint,omitempty"`
	PartitionID        uint32     `json:"partition_id"`
	SnapshotID         string     `json:"snapshot_id"`
	MinAppliedLSN      uint64     `json:"min_applied_lsn"`
	CreatedAt          time.Time  `json:"created_at"`
	Path               string     `json:"path"`
	Retained           []Retained `json:"retained_snapshots"`
}

// ArchivedLSN is the minimum applied LSN of the oldest retained snapshot: the log may be
// trimmed up to it, because every retained snapshot covers everything below.
func (l *Latest) ArchivedLSN() uint64 {
	if len(l.Retained) == 0 {
		return l.MinAppliedLSN
	}
	return l.Retained[len(l.Retained)-1].MinAppliedLSN
}

// ErrNoSnapshot says a partition has no snapshot that covers what is needed.
var ErrNoSnapshot = errors.New("no snapshot")

// ErrVersion says a snapshot was written in a format this version cannot read.
var ErrVersion = errors.New("unsupported snapshot format version")

// Repository publishes and restores the snapshots of one cluster.
type Repository struct {
	Store       ObjectStore
	Prefix      string // within the store, "" or "a/b"
	ClusterName string
	// ClusterFingerprint, if set, returns the fingerprint of this cluster (random, set at
	// provisioning; empty for a cluster provisioned before fingerprints), or an error while
	// it is not known yet. Snapshots of a cluster with the same name and another
	// fingerprint (a cluster rebuilt on a kept destination) are refused.
	ClusterFingerprint func() (string, error)
	NodeName           string
	// NumRetained is how many snapshots latest.json keeps (at least 1); older ones are
	// deleted.
	NumRetained int
}

func (r *Repository) key(parts ...string) string {
	return path.Join(append([]string{r.Prefix}, parts...)...)
}

func partitionDir(p uint32) string { return fmt.Sprint(p) }

// Latest reads a partition's latest.json; ErrNoSnapshot if there is none.
func (r *Repository) Latest(ctx context.Context, partition uint32) (*Latest, error) {
	l, _, err := r.readLatest(ctx, partition)
	return l, err
}

func (r *Repository) readLatest(ctx context.Context, partition uint32) (*Latest, string, error) {
	b, version, err := r.Store.ReadVersioned(ctx, r.key(partitionDir(partition), "latest.json"))
	if errors.Is(err, ErrNotFound) {
		return nil, "", fmt.Errorf("%w of partition %d in %s", ErrNoSnapshot, partition, r.Store.Describe())
	}
	if err != nil {
		return nil, "", err
	}
	var l Latest
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, "", fmt.Errorf("partition %d latest.json: %w", partition, err)
	}
	if !readable(l.Version) {
		return nil, "", fmt.Errorf("%w: partition %d latest.json has version %d, this version reads 1 to %d", ErrVersion, partition, l.Version, FormatVersion)
	}
	// Another partition's LSNs would gate the trimming of this partition's log, up to a
	// point no snapshot of it covers (Restore refuses that snapshot by its metadata.json).
	if l.PartitionID != partition {
		return nil, "", fmt.Errorf("partition %d latest.json in %s names partition %d", partition, r.Store.Describe(), l.PartitionID)
	}
	// Another cluster's snapshots would be restored here, and its LSNs would gate the
	// trimming of this cluster's logs.
	if err := r.sameCluster(l.ClusterName, l.ClusterFingerprint, "partition "+partitionDir(partition)+" latest.json"); err != nil {
		return nil, "", err
	}
	return &l, version, nil
}

// ErrForeignCluster says a snapshot in the destination was written by another cluster.
var ErrForeignCluster = errors.New("snapshot of another cluster")

func (r *Repository) sameCluster(name, fingerprint, what string) error {
	if name != "" && r.ClusterName != "" && name != r.ClusterName {
		return fmt.Errorf("%w: %s in %s was written by cluster %q, this is cluster %q; give each cluster a snapshot destination (or prefix) of its own",
			ErrForeignCluster, what, r.Store.Describe(), name, r.ClusterName)
	}
	ours, err := r.fingerprint()
	if err != nil {
		return err
	}
	if fingerprint != "" && ours != "" && fingerprint != ours {
		return fmt.Errorf("%w: %s in %s was written by another cluster named %q (fingerprint %s, this cluster's is %s), e.g. one provisioned before on the same destination; give each cluster a snapshot destination (or prefix) of its own",
			ErrForeignCluster, what, r.Store.Describe(), r.ClusterName, fingerprint, ours)
	}
	return nil
}

func (r *Repository) fingerprint() (string, error) {
	if r.ClusterFingerprint == nil {
		return "", nil
	}
	return r.ClusterFingerprint()
}

// Create publishes a snapshot of part (partition partition, log logID, key range kr): the
// data file streamed from a consistent view of the store, then metadata.json, then the
// latest pointer, moved only forward by a conditional write. A snapshot no newer than the
// latest one is discarded. Snapshots beyond NumRetained are deleted.
func (r *Repository) Create(ctx context.Context, part *store.Partition, partition, logID uint32, kr KeyRange) (*Metadata, error) {
	fingerprint, err := r.fingerprint()
	if err != nil {
		return nil, err
	}
	exp, err := part.OpenExport()
	if err != nil {
		return nil, err
	}
	defer exp.Release()
	id := newSnapshotID()
	dir := path.Join(partitionDir(partition), fmt.Sprintf("lsn_%020d-%s", exp.Applied, id))

	pr, pw := io.Pipe()
	h := sha256.New()
	written := make(chan int64, 1)
	go func() {
		n, err := exp.WriteTo(io.MultiWriter(pw, h))
		pw.CloseWithError(err)
		written <- n
	}()
	err = r.Store.Put(ctx, r.key(dir, dataFile), pr)
	pr.CloseWithError(err) // stops the writer if the upload failed first
	size := <-written
	if err != nil {
		return nil, fmt.Errorf("upload snapshot of partition %d: %w", partition, err)
	}
	meta := &Metadata{
		Version: FormatVersion, ClusterName: r.ClusterName, ClusterFingerprint: fingerprint, PartitionID: partition, NodeName: r.NodeName,
		CreatedAt: time.Now().UTC(), SnapshotID: id, KeyRange: kr, LogID: logID, MinAppliedLSN: exp.Applied,
		Files: []File{{Name: dataFile, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}},
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := r.Store.Put(ctx, r.key(dir, "metadata.json"), strings.NewReader(string(mb))); err != nil {
		return nil, fmt.Errorf("upload snapshot metadata of partition %d: %w", partition, err)
	}
	newer, err := r.publish(ctx, meta, dir)
	if err != nil {
		return nil, err
	}
	if newer != "" {
		// Not published: the latest snapshot is at least as new; that one is the answer.
		return r.metadata(ctx, newer)
	}
	return meta, nil
}

// publish moves latest.json to meta unless it already names a snapshot at least as new (it
// then deletes meta's objects and returns the path of that one), and deletes the snapshots
// that fall out of retention.
func (r *Repository) publish(ctx context.Context, meta *Metadata, dir string) (string, error) {
	for {
		old, version, err := r.readLatest(ctx, meta.PartitionID)
		switch {
		case errors.Is(err, ErrNoSnapshot):
			old, version = nil, ""
		case err != nil:
			return "", err
		}
		if old != nil && old.MinAppliedLSN >= meta.MinAppliedLSN {
			// Another leader (or an earlier call) published one at least as new.
			r.deleteSnapshot(ctx, dir)
			return old.Path, nil
		}
		next := Latest{
			Version: FormatVersion, ClusterName: meta.ClusterName, ClusterFingerprint: meta.ClusterFingerprint, PartitionID: meta.PartitionID,
			SnapshotID: meta.SnapshotID, MinAppliedLSN: meta.MinAppliedLSN, CreatedAt: meta.CreatedAt, Path: dir,
			Retained: []Retained{{SnapshotID: meta.SnapshotID, MinAppliedLSN: meta.MinAppliedLSN, CreatedAt: meta.CreatedAt, Path: dir}},
		}
		var dropped []Retained
		if old != nil {
			next.Retained = append(next.Retained, old.Retained...)
		}
		if keep := max(r.NumRetained, 1); len(next.Retained) > keep {
			dropped = next.Retained[keep:]
			next.Retained = next.Retained[:keep]
		}
		b, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return "", err
		}
		err = r.Store.WriteIfMatch(ctx, r.key(partitionDir(meta.PartitionID), "latest.json"), b, version)
		if errors.Is(err, ErrConflict) {
			continue // someone else moved it: look again
		}
		if err != nil {
			return "", fmt.Errorf("publish snapshot of partition %d: %w", meta.PartitionID, err)
		}
		for _, d := range dropped {
			r.deleteSnapshot(ctx, d.Path)
		}
		return "", nil
	}
}

// deleteSnapshot removes a snapshot's objects; what is left behind is garbage, not harm.
func (r *Repository) deleteSnapshot(ctx context.Context, dir string) {
	keys, err := r.Store.List(ctx, r.key(dir)+"/")
	if err != nil {
		return
	}
	for _, k := range keys {
		_ = r.Store.Delete(ctx, k)
	}
}

// List returns the retained snapshots of a partition, newest first, with their metadata.
func (r *Repository) List(ctx context.Context, partition uint32) ([]Metadata, error) {
	l, err := r.Latest(ctx, partition)
	if err != nil {
		return nil, err
	}
	var out []Metadata
	for _, s := range l.Retained {
		m, err := r.metadata(ctx, s.Path)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MinAppliedLSN > out[j].MinAppliedLSN })
	return out, nil
}

func (r *Repository) metadata(ctx context.Context, dir string) (*Metadata, error) {
	rc, err := r.Store.Get(ctx, r.key(dir, "metadata.json"))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m Metadata
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("snapshot %s metadata.json: %w", dir, err)
	}
	if !readable(m.Version) {
		return nil, fmt.Errorf("%w: snapshot %s has format version %d, this version reads 1 to %d", ErrVersion, dir, m.Version, FormatVersion)
	}
	return &m, nil
}

// Restore replaces part's state with the newest snapshot of the partition that covers at
// least minLSN (its minimum applied LSN ≥ minLSN) and can be restored; it returns that
// snapshot's metadata. The newest is tried first; if it cannot be restored (a damaged or
// missing object), an older retained one that still covers minLSN is: the log is trimmed
// only up to the oldest retained snapshot, so an older one plus the log will do. Each data
// file is checked against its size and SHA-256; on failure part is left empty.
func (r *Repository) Restore(ctx context.Context, part *store.Partition, partition uint32, minLSN uint64) (*Metadata, error) {
	l, err := r.Latest(ctx, partition)
	if err != nil {
		return nil, err
	}
	if l.MinAppliedLSN < minLSN {
		return nil, fmt.Errorf("%w of partition %d covers LSN %d: the newest (%s) covers %d", ErrNoSnapshot, partition, minLSN, l.SnapshotID, l.MinAppliedLSN)
	}
	tries := []Retained{{SnapshotID: l.SnapshotID, MinAppliedLSN: l.MinAppliedLSN, Path: l.Path}}
	for _, old := range l.Retained { // newest first
		if old.Path != l.Path && old.MinAppliedLSN >= minLSN {
			tries = append(tries, old)
		}
	}
	var errs []error
	for _, try := range tries {
		m, err := r.restore(ctx, part, partition, try.Path, minLSN)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("restore partition %d: %w", partition, errors.Join(errs...))
}

// restore replaces part's state with the snapshot in dir, which must cover minLSN.
func (r *Repository) restore(ctx context.Context, part *store.Partition, partition uint32, dir string, minLSN uint64) (*Metadata, error) {
	m, err := r.metadata(ctx, dir)
	if err != nil {
		return nil, err
	}
	if m.PartitionID != partition || len(m.Files) != 1 || m.Files[0].Name != dataFile {
		return nil, fmt.Errorf("snapshot %s: not a snapshot of partition %d with one data file", dir, partition)
	}
	if m.MinAppliedLSN < minLSN {
		return nil, fmt.Errorf("%w of partition %d covers LSN %d: snapshot %s covers %d", ErrNoSnapshot, partition, minLSN, dir, m.MinAppliedLSN)
	}
	if err := r.sameCluster(m.ClusterName, m.ClusterFingerprint, "snapshot "+dir); err != nil {
		return nil, err
	}
	rc, err := r.Store.Get(ctx, r.key(dir, dataFile))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	defer rc.Close()
	cr := &hashingReader{r: rc, h: sha256.New()}
	// The checks run before the import is committed: a crash between a commit and a failed
	// check would keep a damaged state that passes for a sound one.
	_, err = part.ImportVerified(cr, func(applied uint64) error {
		// The rest of the file (nothing, in a sound one) counts toward the checks.
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return err
		}
		switch {
		case cr.n != m.Files[0].Size || hex.EncodeToString(cr.h.Sum(nil)) != m.Files[0].SHA256:
			return fmt.Errorf("data file does not match its metadata (%d bytes)", cr.n)
		case applied != m.MinAppliedLSN:
			return fmt.Errorf("holds applied LSN %d, its metadata says %d", applied, m.MinAppliedLSN)
		}
		return nil
	})
	if err != nil {
		_ = part.Wipe()
		return nil, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	return m, nil
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	h.h.Write(b[:n])
	h.n += int64(n)
	return n, err
}

// newSnapshotID is time-ordered and unique: 12 hex digits of milliseconds, 8 random.
func newSnapshotID() string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("snap_%012x%x", time.Now().UnixMilli(), rnd)
}

// SnapshotIDPath is the snapshot's directory within its partition's.
func (m *Metadata) SnapshotIDPath() string {
	return fmt.Sprintf("lsn_%020d-%s", m.MinAppliedLSN, m.SnapshotID)
}
