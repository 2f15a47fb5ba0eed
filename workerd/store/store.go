// Package store owns a worker's partition store: the tables every partition processor keeps in
// goleveldb (invocation status, journals, state, inboxes, locks, timers, outbox, dedup and
// the applied LSN). One database holds all partitions of a node; keys start with the
// partition id so each partition's data is one contiguous range.
//
// The store is a view derived from the partition logs: writes are not fsynced because a crash
// only loses a suffix that the processor re-applies from the log (the applied LSN is written
// in the same batch as the effects of the records up to it).
package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"gorestate.dev/shared/metrics"
)

// Table prefixes (one byte after the partition id). Stored on disk: never reuse.
const (
	// Statuses, journals and notifications are keyed by keyID(id) (see keylayout.go).
	tStatus   = 'S'
	tJournal  = 'J'
	tNotified = 'N'
	// Where versions before 2026-12-07 kept them, keyed by the id as it is: moved by
	// MigrateKeyLayout.
	tStatusV1   = 's'
	tJournalV1  = 'j'
	tNotifiedV1 = 'n'
	tState      = 'v'
	tLock       = 'l'
	tInbox      = 'i'
	tTimer      = 't'
	tOutbox     = 'o'
	tDedup      = 'd'
	tMeta       = 'm'
	tExpiry     = 'x'
	tInvoked    = 'r' // index of the statuses in PhaseInvoked: what a new leader resumes
	tActive     = 'a' // index of the unfinished invocations by creation time (+ id)
	tCreated    = 'c' // index of every invocation by creation time (+ id)
	tEvent      = 'e' // journal events, keyed by keyID(id) and a sequence number (events.go)
)

// Meta keys.
const (
	metaApplied   = 'a'
	metaEpoch     = 'e'
	metaInboxSeq  = 'q'
	metaOutboxSeq = 'o'
	// metaInvokedIndex was set once the tInvoked index covered every status; metaIndexes
	// (holding indexesVersion) now says that of every status index.
	metaInvokedIndex = 'r'
	metaIndexes      = 'i'
	// metaRules is the version of the apply rules the partition's log switched to.
	metaRules = 'f'
)

// indexesVersion counts the sets of status indexes; a partition flagged with a lower one
// is indexed again at start.
const indexesVersion = 1

// DB is a node's partition store.
type DB struct {
	ldb       *leveldb.DB
	unmeasure func() // stops counting the store in storeSize
	epochs    epochCache
	heads     inboxHeads
}

// Open opens (or creates) the store in dir.
func Open(dir string) (*DB, error) {
	ldb, err := leveldb.OpenFile(dir, &opt.Options{
		// With a day of retention the store holds every invocation of the day, keyed by
		// invocation id, so new statuses and journals land all over the key space and
		// each memtable flush overlaps all of level 1. goleveldb's defaults (2 MiB tables,
		// a 10 MiB level 1) then rewrite level 1 about every 8 MiB written and add a level
		// every tenfold growth: a soak of 400,000 invocations slowed to 0.55 of its first
		// minute. A 16 MiB memtable, 8 MiB tables and a 64 MiB level 1 kept it at 0.96
		// (2,026 → 2,673 invocations/s over the run), and a soak of 1,000,000 went from
		// 1,583 to 2,536 invocations/s (last minute 0.47 → 0.69 of the first) with the same
		// RSS range. An 8 MiB memtable with 2 MiB tables measured 2,322 (0.60); a 16 MiB
		// block cache pushed the heap against the soft memory limit, and the collector
		// then cost more than the cache saved.
		WriteBuffer:         16 << 20,
		CompactionTableSize: 8 << 20,
		CompactionTotalSize: 64 << 20,
		BlockCacheCapacity:  4 << 20,
		// 16 KiB blocks instead of 4: a table's index has a quarter of the entries, so the
		// indexes of a large store stay in the 4 MiB block cache. With 4 KiB blocks a
		// lookup of a new invocation's id read and decompressed an index block in every
		// level (11 % of the CPU at the end of a 1,000,000 soak); with 16 KiB the soak
		// ran at 3,019 instead of 2,623 invocations/s, its last minute 0.76 of the first
		// instead of 0.65.
		BlockSize: 16 << 10,
		// No compactions triggered by reads. Every partition and table appends at its own
		// point of the key space, so each level-0 table spans nearly all of it, and the
		// lookups of new ids that pass through a level-0 table made goleveldb compact that
		// one table alone into level 1, rewriting all of level 1 (132 MiB late in a soak of
		// 1,000,000) for every memtable flushed. Without them four level-0 tables go down
		// together: the soak's last minute ran at 1.01 of its first (0.59-0.84 in three
		// runs with them).
		DisableSeeksCompaction: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open partition store %s: %w", dir, err)
	}
	return &DB{ldb: ldb, unmeasure: storeSize.Add(dir)}, nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.unmeasure()
	return db.ldb.Close()
}

var (
	storeSize = metrics.NewDirSize("restate_partition_store_size_bytes",
		"Bytes on disk of the partition stores (goleveldb) in this process.")
	storeWrites = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_partition_store_writes_total",
		Help: "Write batches committed to the partition stores without fsync (one per applied batch of records).",
	})
	storeSyncs = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_partition_store_checkpoints_total",
		Help: "Synced checkpoints of the partition stores (the applied LSN made durable, so the log can be trimmed below it).",
	})
)

// Partition returns the view of one partition.
func (db *DB) Partition(id uint32) *Partition {
	return &Partition{db: db.ldb, id: id, epochs: &db.epochs, heads: &db.heads}
}

// Partition is the store of one partition.
type Partition struct {
	db     *leveldb.DB
	id     uint32
	epochs *epochCache
	heads  *inboxHeads
}

// ID is the partition id.
func (p *Partition) ID() uint32 { return p.id }

func (p *Partition) key(table byte, parts ...[]byte) []byte {
	n := 5
	for _, x := range parts {
		n += len(x)
	}
	k := make([]byte, 5, n)
	binary.BigEndian.PutUint32(k, p.id)
	k[4] = table
	for _, x := range parts {
		k = append(k, x...)
	}
	return k
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// objectKey encodes (service, key) so that no (service, key) pair is a prefix of another.
func objectKey(service, key string) []byte {
	b := make([]byte, 0, 6+len(service)+len(key))
	b = binary.BigEndian.AppendUint16(b, uint16(len(service)))
	b = append(b, service...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	return b
}

func (p *Partition) get(k []byte) ([]byte, bool, error) {
	v, err := p.db.Get(k, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("partition %d store get: %w", p.id, err)
	}
	return v, true, nil
}

// Snapshot is a consistent read view of a partition.
type Snapshot struct {
	p    *Partition
	snap *leveldb.Snapshot
}

// Snapshot returns a consistent read view; Release it when done.
func (p *Partition) Snapshot() (*Snapshot, error) {
	s, err := p.db.GetSnapshot()
	if err != nil {
		return nil, fmt.Errorf("partition %d snapshot: %w", p.id, err)
	}
	return &Snapshot{p: p, snap: s}, nil
}

// Release frees the snapshot.
func (s *Snapshot) Release() { s.snap.Release() }

func (s *Snapshot) get(k []byte) ([]byte, bool, error) {
	v, err := s.snap.Get(k, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func prefixRange(prefix []byte) *util.Range { return util.BytesPrefix(prefix) }

// Each calls fn with every key (without the partition prefix) and value of the partition,
// in key order. fn must not keep the slices. For digests, golden tests and diagnostics.
func (p *Partition) Each(fn func(key, value []byte) error) error {
	prefix := u32(p.id)
	it := p.db.NewIterator(prefixRange(prefix), nil)
	defer it.Release()
	for it.Next() {
		if err := fn(it.Key()[len(prefix):], it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("partition %d: read store: %w", p.id, err)
	}
	return nil
}

// Digest hashes every key and value of the partition's state, in key order: replicas that
// applied the same log have the same digest. Durability bookkeeping is left out.
func (p *Partition) Digest() ([32]byte, error) {
	h := sha256.New()
	var n [8]byte
	err := p.Each(func(k, v []byte) error {
		if bookkeeping(k) {
			return nil
		}
		for _, b := range [][]byte{k, v} {
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write(n[:])
			h.Write(b)
		}
		return nil
	})
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}
