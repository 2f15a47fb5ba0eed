// Package logstore owns a log server's durable state in two goleveldb databases: one holds
// the payloads of every loglet's records, the other each loglet's metadata (pinned
// sequencer, trim point, seal, last known global tail), the storage marker, the format
// version and the WAL checkpoint. Writes are committed one batch at a time, many requests
// per batch (group commit), by a writer goroutine or by a caller of CommitQueued, and
// complete only once the batch is on disk: in the write-ahead log (wal.go) first, then in
// goleveldb. The WAL record is what makes a write to both databases atomic.
//
// Key layout (BIFROST.md §10; "|" is concatenation, integers are big-endian so that keys
// sort by loglet, then offset). The record database, in the store's directory:
//
//	d|loglet u64|offset u64   record payload
//	!format                   format version u32, written once (what an older build reads)
//
// The metadata database, in meta/:
//
//	m|s|loglet u64            pinned sequencer: generation u64 | node name
//	m|t|loglet u64            trim point u64 (records at or below it may be gone)
//	m|Z|loglet u64            present once the loglet is sealed (empty value)
//	m|g|loglet u64            last known global tail u64, written best-effort
//	!marker                   storage marker: the name of the node that owns the store
//	!lost                     what an earlier life of the node lost (JSON)
//	!format                   format version u32
//	~walcheckpoint            seq u64 of the last WAL record goleveldb holds durably
//
// Why two databases: a loglet's records are appended in offset order, so while one loglet
// is appended a memtable of the record database overlaps nothing already on disk and
// goleveldb places its table without a compaction. Any other key in the same memtable (a
// checkpoint, a pinned sequencer) made every flush overlap the table holding that key, and
// each compaction rewrote it with the records around it: 15-20 % of a log server's CPU
// under bench-log in format 3, which kept one database. Several loglets appended at once,
// or trims, still make flushes overlap.
package logstore

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"gorestate.dev/shared/fsync"

	"github.com/hashicorp/go-hclog"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"

	"gorestate.dev/shared/bifrost"
)

// FormatVersion is the on-disk format this build reads and writes. Version 2 added the
// write-ahead log: a store of version 1 (every batch synced in goleveldb) is upgraded at
// Open; a build that reads only version 1 refuses a version 2 store, whose newest records
// may be in the WAL alone. Version 3 moved the WAL checkpoint from "!walcheckpoint" to
// "~walcheckpoint": a build that reads only version 2 refuses it rather than replay the
// WAL from a stale checkpoint. Version 4 moved everything but the records into the
// metadata database; stores of versions 1 to 3 are upgraded at Open, and the record
// database keeps "!format" = 4 so that an older build refuses the store instead of
// opening it without its metadata.
const FormatVersion = 4

const (
	prefixData = 'd'
	prefixMeta = 'm'

	metaSequencer  = 's'
	metaTrimPoint  = 't'
	metaSeal       = 'Z'
	metaGlobalTail = 'g'
)

var (
	keyMarker = []byte("!marker")
	// keyLost holds the segments whose records an earlier life of this node lost (JSON: log
	// id → highest lost segment index), written with the marker of a store that replaced a
	// wiped one.
	keyLost          = []byte("!lost")
	keyFormat        = []byte("!format")
	keyWALCheckpoint = []byte("~walcheckpoint")
	// keyWALCheckpointV2 is where version 2 kept the checkpoint.
	keyWALCheckpointV2 = []byte("!walcheckpoint")
)

func dataKey(loglet uint64, off bifrost.Offset) []byte {
	k := make([]byte, 17)
	k[0] = prefixData
	binary.BigEndian.PutUint64(k[1:], loglet)
	binary.BigEndian.PutUint64(k[9:], uint64(off))
	return k
}

// dataKeyOffset returns the offset of a data key of loglet, or false for any other key.
func dataKeyOffset(k []byte, loglet uint64) (bifrost.Offset, bool) {
	if len(k) != 17 || k[0] != prefixData || binary.BigEndian.Uint64(k[1:]) != loglet {
		return 0, false
	}
	return bifrost.Offset(binary.BigEndian.Uint64(k[9:])), true
}

func metaKey(kind byte, loglet uint64) []byte {
	k := make([]byte, 10)
	k[0] = prefixMeta
	k[1] = kind
	binary.BigEndian.PutUint64(k[2:], loglet)
	return k
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ErrFailed is matched by every write after the store failed to write: the store is in
// fail-safe mode until the process restarts, so that nothing is acknowledged on top of a
// write whose fate is unknown.
var ErrFailed = errors.New("logstore: storage failed")

// Options tune a Store; zero values take the defaults.
type Options struct {
	// MaxBatchBytes and MaxBatchWrites bound one group commit (4 MiB, 1000 writes); a
	// single larger write is committed alone.
	MaxBatchBytes  int
	MaxBatchWrites int
	// TrimChunk is how many records one background deletion batch removes (1000).
	TrimChunk int
	// WALFileSize is the size of a write-ahead log file (16 MiB); a batch larger than that
	// gets a file of its own.
	WALFileSize int64
	Logger      hclog.Logger
	// Tests: sync replaces datasync, wrapStorage wraps goleveldb's file storage of the
	// database in the store's subdirectory sub ("" for the records, "meta"), and
	// writeBuffer replaces goleveldb's write buffer size.
	sync        func(*os.File) error
	wrapStorage func(sub string, s storage.Storage) storage.Storage
	writeBuffer int
}

func (o Options) withDefaults() Options {
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.MaxBatchWrites <= 0 {
		o.MaxBatchWrites = 1000
	}
	if o.TrimChunk <= 0 {
		o.TrimChunk = 1000
	}
	if o.WALFileSize <= 0 {
		o.WALFileSize = 16 << 20
	}
	if o.sync == nil {
		o.sync = datasync
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o
}

// Store is a log server's storage. It is safe for concurrent use.
//
// Lock order: callers may hold their own locks while calling Enqueue (it never blocks on
// the writer); done callbacks run on the goroutine that commits (the writer, or a caller of
// CommitQueued) without any Store lock held.
type Store struct {
	db       *leveldb.DB // records
	journals *syncedJournals
	meta     *leveldb.DB // everything else
	metaStor storage.Storage
	opts     Options
	logger   hclog.Logger

	// Used only by the goroutine that commits: the one that set busy (and Open/Close
	// around the writer).
	wal     *wal
	walLast uint64 // seq of the last WAL record applied to goleveldb
	// dropApplies (tests) keeps batches out of goleveldb, as if a crash lost them there.
	// walLast still advances: a test using it must not roll a WAL file nor Close.
	dropApplies bool

	batch leveldb.Batch
	split splitter // reused by apply
	taken []request

	qmu sync.Mutex // guards queue, busy, closing, failErr
	// busy is set while a goroutine commits: the writer or a caller of CommitQueued.
	busy       bool
	queue      []request
	closing    bool
	failErr    error
	kick       chan struct{}
	failed     chan struct{} // closed when failErr is set
	writerDone chan struct{}

	trims   trimmer
	closeMu sync.Mutex
	closed  bool

	batches, writes, bytes atomic.Uint64
	callerBatches          atomic.Uint64
	unmeasure              func() // stops counting the store in storeSize
}

// Stats are cumulative counters since Open.
type Stats struct {
	Batches uint64 // synced batch writes (group commits)
	Writes  uint64 // requests completed by those batches
	Bytes   uint64 // batch bytes written
	// OnCallers counts the batches that callers of CommitQueued committed on their own
	// goroutine (the others ran on the writer).
	OnCallers uint64
}

// Open opens (creating if needed) the store in dir. A store written by another format
// version is refused.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{
		opts:       opts,
		logger:     opts.Logger,
		kick:       make(chan struct{}, 1),
		failed:     make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	var err error
	s.db, s.journals, err = openDB(dir, "", opts, &opt.Options{
		// The memtable is allocated in full at open, also on a node whose log server is
		// idle (a single node has the role too); 4 MiB measured as fast under bench-log
		// as 16 MiB.
		WriteBuffer: cmp.Or(opts.writeBuffer, 4<<20),
		// A batch larger than the memtable (a group commit near MaxBatchBytes) would
		// otherwise be written straight into level-0 tables, after a synchronous flush,
		// on the writer goroutine; this way it grows a fresh memtable instead.
		DisableLargeBatchTransaction: true,
	})
	if err != nil {
		return nil, err
	}
	var metaJournals *syncedJournals
	s.meta, metaJournals, err = openDB(dir, "meta", opts, &opt.Options{
		// A few keys per loglet, rewritten now and then.
		WriteBuffer:        cmp.Or(opts.writeBuffer, 256<<10),
		BlockCacheCapacity: 256 << 10,
	})
	if err != nil {
		s.db.Close()
		s.journals.Close()
		return nil, err
	}
	s.metaStor = metaJournals
	if err := s.recover(filepath.Join(dir, "wal")); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	s.trims.init(s)
	s.unmeasure = storeSize.Add(dir)
	go s.runWriter()
	go s.trims.run()
	return s, nil
}

// openDB opens the goleveldb database in dir/sub.
func openDB(dir, sub string, opts Options, o *opt.Options) (*leveldb.DB, *syncedJournals, error) {
	path := filepath.Join(dir, sub)
	_, statErr := os.Stat(path)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, nil, fmt.Errorf("open log store %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// The new directory's entry must be durable before anything in it counts.
		if err := fsync.Dir(filepath.Dir(path)); err != nil {
			return nil, nil, fmt.Errorf("open log store %s: %w", path, err)
		}
	}
	fileStor, err := storage.OpenFile(path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("open log store %s: %w", path, err)
	}
	var files storage.Storage = fileStor
	if opts.wrapStorage != nil {
		files = opts.wrapStorage(sub, fileStor)
	}
	stor := &syncedJournals{Storage: files}
	db, err := leveldb.Open(stor, o)
	if err != nil {
		stor.Close()
		return nil, nil, fmt.Errorf("open log store %s: %w", path, err)
	}
	return db, stor, nil
}

func (s *Store) closeDBs() error {
	return errors.Join(s.db.Close(), s.journals.Close(), s.meta.Close(), s.metaStor.Close())
}

// recover checks the format version (writing it into a new store, upgrading versions 1
// to 3), replays the WAL records goleveldb may lack and opens the WAL for appends.
func (s *Store) recover(walDir string) error {
	if err := s.checkFormat(); err != nil {
		return err
	}
	checkpoint, err := s.walCheckpoint()
	if err != nil {
		return err
	}
	var batch leveldb.Batch
	last, err := replayWAL(walDir, checkpoint, func(_ uint64, payload []byte) error {
		if err := batch.Load(payload); err != nil {
			return err
		}
		return s.apply(&batch, true)
	})
	if err != nil {
		return err
	}
	if last > checkpoint {
		s.logger.Info("replayed the write-ahead log", "records", last-checkpoint, "after", checkpoint)
	}
	s.walLast = last
	// Every WAL file is reusable once goleveldb holds their records durably.
	if err := s.checkpoint(); err != nil {
		return err
	}
	s.wal, err = openWAL(walDir, s.opts.WALFileSize, last, s.opts.sync)
	return err
}

// readFormat returns the format version db holds, if any.
func readFormat(db *leveldb.DB) (v uint32, found bool, err error) {
	b, err := db.Get(keyFormat, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read format version: %w", err)
	case len(b) != 4:
		return 0, false, fmt.Errorf("log store format version is %d bytes, want 4", len(b))
	}
	return binary.BigEndian.Uint32(b), true, nil
}

func isEmpty(db *leveldb.DB) bool {
	it := db.NewIterator(nil, nil)
	defer it.Release()
	return !it.First()
}

// onlyFormat reports whether the format version is all db holds: no marker, no
// checkpoint, nothing written through the WAL.
func onlyFormat(db *leveldb.DB) bool {
	it := db.NewIterator(nil, nil)
	defer it.Release()
	return it.First() && bytes.Equal(it.Key(), keyFormat) && !it.Next()
}

// checkFormat writes the format version into a new store, upgrades a store of versions 1
// to 3 and refuses a store of any other version.
func (s *Store) checkFormat() error {
	metaV, inMeta, err := readFormat(s.meta)
	if err != nil {
		return err
	}
	dataV, inData, err := readFormat(s.db)
	if err != nil {
		return err
	}
	unsupported := func(v uint32) error {
		return fmt.Errorf("log store format version %d is not supported (this build reads versions 1 to %d)", v, FormatVersion)
	}
	version := u32(FormatVersion)
	switch {
	case inMeta && metaV != FormatVersion:
		return unsupported(metaV)
	case inMeta && !inData && isEmpty(s.db) && onlyFormat(s.meta):
		// A new store whose creation stopped between its two format writes.
		if err := s.db.Put(keyFormat, version, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("write format version: %w", err)
		}
		return nil
	case inMeta && !inData:
		return fmt.Errorf("log store damaged: its metadata (meta/) has format version %d but its record database has none; wipe the directory to rejoin as a new log server", metaV)
	case inMeta && dataV == FormatVersion:
		return nil
	case inMeta && dataV >= 1 && dataV < FormatVersion:
		// An upgrade that crashed after moving the metadata: the record database still
		// has the old copies.
		return s.dropOldMetadata(dataV)
	case inMeta:
		return unsupported(dataV)
	case !inData:
		if !isEmpty(s.db) || !isEmpty(s.meta) {
			return fmt.Errorf("log store has data but no format version (this build reads version %d): not a log store?", FormatVersion)
		}
		if err := s.meta.Put(keyFormat, version, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("write format version: %w", err)
		}
		if err := s.db.Put(keyFormat, version, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("write format version: %w", err)
		}
		return nil
	case dataV == FormatVersion:
		return fmt.Errorf("log store damaged: format version %d but its metadata database (meta/) is missing; wipe the directory to rejoin as a new log server", dataV)
	case dataV < 1 || dataV > FormatVersion:
		return unsupported(dataV)
	}
	// Versions 1 to 3 kept everything in one database. Version 1 synced every batch in
	// goleveldb and has no WAL; version 2 has its checkpoint under "!walcheckpoint".
	// The metadata is copied in one synced batch with the new version, then dropped from
	// the record database: a crash in between leaves the copy, and the next Open drops
	// the old keys again.
	s.logger.Info("upgrading the log store format: metadata moves to meta/", "from", dataV, "to", FormatVersion)
	var b leveldb.Batch
	err = s.eachMetadataKey(func(k, v []byte) {
		if dataV == 2 && bytes.Equal(k, keyWALCheckpointV2) {
			k = keyWALCheckpoint
		}
		b.Put(k, v)
	})
	if err != nil {
		return err
	}
	b.Put(keyFormat, version)
	if err := s.meta.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("upgrade format: write metadata: %w", err)
	}
	return s.dropOldMetadata(dataV)
}

// eachMetadataKey calls fn with every key of the record database other than the records
// and the format version, in order (a store of format 3 or older).
func (s *Store) eachMetadataKey(fn func(k, v []byte)) error {
	for _, r := range []*util.Range{{Limit: []byte{prefixData}}, {Start: []byte{prefixData + 1}}} {
		it := s.db.NewIterator(r, nil)
		for it.Next() {
			if !bytes.Equal(it.Key(), keyFormat) {
				fn(bytes.Clone(it.Key()), bytes.Clone(it.Value()))
			}
		}
		it.Release()
		if err := it.Error(); err != nil {
			return fmt.Errorf("upgrade format: read metadata: %w", err)
		}
	}
	return nil
}

// dropOldMetadata finishes an upgrade from version from: the record database keeps only
// records and the new format version.
func (s *Store) dropOldMetadata(from uint32) error {
	var b leveldb.Batch
	if err := s.eachMetadataKey(func(k, _ []byte) { b.Delete(k) }); err != nil {
		return err
	}
	b.Put(keyFormat, u32(FormatVersion))
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("upgrade format from version %d: %w", from, err)
	}
	return nil
}

// walCheckpoint returns the seq of the last WAL record goleveldb holds durably (0: none).
func (s *Store) walCheckpoint() (uint64, error) {
	v, err := s.meta.Get(keyWALCheckpoint, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read WAL checkpoint: %w", err)
	case len(v) != 8:
		return 0, fmt.Errorf("WAL checkpoint is %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// checkpoint durably records that goleveldb holds every WAL record up to s.walLast. Both
// databases' journals hold every write made so far (goleveldb hands a journal its data
// before a write returns): the record database's current journal is fsynced here, its
// earlier ones were fsynced when goleveldb closed them (syncedJournals), before they were
// flushed to synced tables; the synced write of the checkpoint does the same for the
// metadata database.
func (s *Store) checkpoint() error {
	if err := s.journals.syncCurrent(); err != nil {
		return fmt.Errorf("write WAL checkpoint: sync the record journal: %w", err)
	}
	if err := s.meta.Put(keyWALCheckpoint, u64(s.walLast), &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("write WAL checkpoint: %w", err)
	}
	return nil
}

// syncedJournals is goleveldb's file storage with journals fsynced when goleveldb closes
// them (at every memtable switch), and the current one on demand: goleveldb itself syncs a
// journal only for a synced write, and the WAL checkpoint relies on every journal write
// before it being durable.
//
// A journal's writes are also held in memory until a sync, a close or journalBuffer
// bytes: goleveldb writes its journal once per batch, and the records database's batches
// are durable in the WAL already, so that write() per group commit cost a log server 12 %
// of its CPU under bench-log for nothing. What a crash loses of a journal this way is what
// an unsynced journal write could lose anyway; the WAL holds it from the checkpoint on.
type syncedJournals struct {
	storage.Storage
	mu  sync.Mutex
	cur *syncOnClose // the journal goleveldb writes now
}

// journalBuffer is how many bytes of a journal wait in memory at most.
const journalBuffer = 256 << 10

func (s *syncedJournals) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := s.Storage.Create(fd)
	if err != nil || fd.Type != storage.TypeJournal {
		return w, err
	}
	j := &syncOnClose{Writer: w, owner: s, buf: bufio.NewWriterSize(w, journalBuffer)}
	s.mu.Lock()
	s.cur = j
	s.mu.Unlock()
	return j, nil
}

// syncCurrent fsyncs the journal goleveldb writes now; the ones before it were synced
// when they were closed.
func (s *syncedJournals) syncCurrent() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.closed {
		return nil
	}
	return s.cur.syncLocked()
}

type syncOnClose struct {
	storage.Writer
	owner *syncedJournals
	// buf holds goleveldb's writes until a sync, a close or journalBuffer bytes. Its
	// errors are sticky: once a write failed, nothing reports success any more (the
	// journal lacks those bytes). Guarded by owner.mu, like closed.
	buf    *bufio.Writer
	closed bool
}

func (w *syncOnClose) Write(p []byte) (int, error) {
	w.owner.mu.Lock()
	defer w.owner.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncOnClose) syncLocked() error {
	if err := w.buf.Flush(); err != nil {
		return err
	}
	return w.Writer.Sync()
}

// Sync is goleveldb's sync of a synced write.
func (w *syncOnClose) Sync() error {
	w.owner.mu.Lock()
	defer w.owner.mu.Unlock()
	return w.syncLocked()
}

func (w *syncOnClose) Close() error {
	w.owner.mu.Lock()
	defer w.owner.mu.Unlock()
	w.closed = true
	if err := w.syncLocked(); err != nil {
		_ = w.Writer.Close()
		return err
	}
	return w.Writer.Close()
}

// Close completes every queued write, stops the background work and closes the database.
func (s *Store) Close() error {
	if !s.stop() {
		return nil
	}
	s.unmeasure()
	var errs []error
	if s.Err() == nil {
		errs = append(errs, s.checkpoint()) // the next Open replays nothing
	}
	errs = append(errs, s.wal.close(), s.closeDBs())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close log store: %w", err)
	}
	return nil
}

// stop completes every queued write and stops the writer and the trimmer. It reports
// false if the store was stopped already.
func (s *Store) stop() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	s.trims.stop()
	s.qmu.Lock()
	s.closing = true
	s.qmu.Unlock()
	s.wake()
	<-s.writerDone
	return true
}

// Err returns the error that put the store in fail-safe mode, or nil.
func (s *Store) Err() error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.failErr
}

// Failed is closed once the store is in fail-safe mode.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Writes: s.writes.Load(), Bytes: s.bytes.Load(), OnCallers: s.callerBatches.Load()}
}

// Marker returns the storage marker: the name of the node that wrote it, and whether it
// exists. A store without one is new, or was wiped.
func (s *Store) Marker() (string, bool, error) {
	v, err := s.meta.Get(keyMarker, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read storage marker: %w", err)
	}
	return string(v), true, nil
}

// Lost names what an earlier life of this node stored and lost: the loglets that existed
// when the store was replaced, and per log the highest segment index among them.
type Lost struct {
	Loglets  []uint64          `json:"loglets"`
	Segments map[uint32]uint32 `json:"segments"`
	// Pending is set until the nodes configuration lists Segments as lost (and the node
	// as read-write): a start that finds it set finishes what a crash interrupted.
	Pending bool `json:"pending,omitempty"`
}

// WriteMarker durably writes the storage marker naming node and, in the same write, what an
// earlier life of the node lost (nil: nothing).
func (s *Store) WriteMarker(node string, lost *Lost) error {
	var lostJSON []byte
	if lost != nil {
		var err error
		if lostJSON, err = json.Marshal(lost); err != nil {
			return err
		}
	}
	err := s.write(func(b *leveldb.Batch) {
		b.Put(keyMarker, []byte(node))
		if lostJSON != nil {
			b.Put(keyLost, lostJSON)
		}
	}, len(node)+len(lostJSON), true)
	if err != nil {
		return fmt.Errorf("write storage marker: %w", err)
	}
	return nil
}

// ReadLost returns what an earlier life of this node lost (empty if nothing).
func (s *Store) ReadLost() (*Lost, error) {
	v, err := s.meta.Get(keyLost, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return &Lost{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lost loglets: %w", err)
	}
	var lost Lost
	if err := json.Unmarshal(v, &lost); err != nil {
		return nil, fmt.Errorf("decode lost loglets: %w", err)
	}
	return &lost, nil
}
