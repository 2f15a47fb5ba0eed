// Package logstore owns a log server's durable state in one goleveldb database: the
// payloads of every loglet's records, each loglet's metadata (pinned sequencer, trim point,
// seal, last known global tail), the storage marker and the format version. Writes are
// committed one batch at a time, many requests per batch (group commit), by a writer
// goroutine or by a caller of CommitQueued, and complete only once the batch is on disk:
// in the write-ahead log (wal.go) first, then in goleveldb.
//
// Key layout (BIFROST.md §10; "|" is concatenation, integers are big-endian so that keys
// sort by loglet, then offset):
//
//	d|loglet u64|offset u64   record payload
//	m|s|loglet u64            pinned sequencer: generation u64 | node name
//	m|t|loglet u64            trim point u64 (records at or below it may be gone)
//	m|Z|loglet u64            present once the loglet is sealed (empty value)
//	m|g|loglet u64            last known global tail u64, written best-effort
//	!marker                   storage marker: the name of the node that owns the store
//	!format                   format version u32
//	~walcheckpoint            seq u64 of the last WAL record goleveldb holds durably
//
// Keys that are written again and again sort above the records ('m' and '~' after 'd'):
// a memtable flush then spans from the oldest loglet it appends to up to those keys, not
// from the first key of the store. With one loglet appended (bench-log), compacting a flush
// into level 1 rewrites the level's last table instead of all of it (with the checkpoint at
// "!walcheckpoint", version 2 rewrote all of level 1 on every compaction, which took 40 % of
// a log server's CPU under append load). Several loglets appended at once, or trims in the
// flush, still widen its span.
package logstore

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"

	"gorestate.dev/shared/bifrost"
)

// FormatVersion is the on-disk format this build reads and writes. Version 2 added the
// write-ahead log: a store of version 1 (every batch synced in goleveldb) is upgraded at
// Open; a build that reads only version 1 refuses a version 2 store, whose newest records
// may be in the WAL alone. Version 3 moved the WAL checkpoint from "!walcheckpoint" to
// "~walcheckpoint" (see the key layout): a version 2 store is upgraded at Open, and a
// build that reads only version 2 refuses a version 3 store rather than replay the WAL
// from a stale checkpoint.
const FormatVersion = 3

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
	// Tests: sync replaces datasync, wrapStorage wraps goleveldb's file storage, and
	// writeBuffer replaces goleveldb's write buffer size.
	sync        func(*os.File) error
	wrapStorage func(storage.Storage) storage.Storage
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
	db     *leveldb.DB
	stor   storage.Storage
	opts   Options
	logger hclog.Logger

	// Used only by the goroutine that commits: the one that set busy (and Open/Close
	// around the writer).
	wal     *wal
	walLast uint64 // seq of the last WAL record applied to goleveldb
	// dropApplies (tests) keeps batches out of goleveldb, as if a crash lost them there.
	// walLast still advances: a test using it must not roll a WAL file nor Close.
	dropApplies bool

	batch leveldb.Batch
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	fileStor, err := storage.OpenFile(dir, false)
	if err != nil {
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	var files storage.Storage = fileStor
	if opts.wrapStorage != nil {
		files = opts.wrapStorage(fileStor)
	}
	stor := syncedJournals{files}
	db, err := leveldb.Open(stor, &opt.Options{
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
		stor.Close()
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	s := &Store{
		db:         db,
		stor:       stor,
		opts:       opts,
		logger:     opts.Logger,
		kick:       make(chan struct{}, 1),
		failed:     make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if err := s.recover(filepath.Join(dir, "wal")); err != nil {
		db.Close()
		stor.Close()
		return nil, fmt.Errorf("open log store %s: %w", dir, err)
	}
	s.trims.init(s)
	s.unmeasure = storeSize.Add(dir)
	go s.runWriter()
	go s.trims.run()
	return s, nil
}

// recover checks the format version (writing it into a new store, upgrading versions 1
// and 2),
// replays the WAL records goleveldb may lack and opens the WAL for appends.
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
		return s.db.Write(&batch, nil)
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

// checkFormat writes the format version into a new store, upgrades a store of version 1
// or 2 and refuses a store of any other version.
func (s *Store) checkFormat() error {
	db := s.db
	v, err := db.Get(keyFormat, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		it := db.NewIterator(nil, nil)
		nonEmpty := it.First()
		it.Release()
		if nonEmpty {
			return fmt.Errorf("log store has data but no format version (this build reads version %d): not a log store?", FormatVersion)
		}
		return db.Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion), &opt.WriteOptions{Sync: true})
	case err != nil:
		return fmt.Errorf("read format version: %w", err)
	case len(v) != 4:
		return fmt.Errorf("log store format version is %d bytes, want 4", len(v))
	}
	switch got := binary.BigEndian.Uint32(v); got {
	case FormatVersion:
		return nil
	case 1, 2:
		// Version 1 synced every batch in goleveldb and has no WAL: nothing to convert.
		// Version 2 has its checkpoint under the old key: moved in the same synced batch
		// as the new version, so a crash leaves either store whole.
		var b leveldb.Batch
		if got == 2 {
			cp, err := db.Get(keyWALCheckpointV2, nil)
			switch {
			case err == nil:
				b.Put(keyWALCheckpoint, cp)
				b.Delete(keyWALCheckpointV2)
			case !errors.Is(err, leveldb.ErrNotFound):
				return fmt.Errorf("read version 2 WAL checkpoint: %w", err)
			}
		}
		b.Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion))
		s.logger.Info("upgrading the log store format", "from", got, "to", FormatVersion)
		return db.Write(&b, &opt.WriteOptions{Sync: true})
	default:
		return fmt.Errorf("log store format version %d is not supported (this build reads versions 1 to %d)", got, FormatVersion)
	}
}

// walCheckpoint returns the seq of the last WAL record goleveldb holds durably (0: none).
func (s *Store) walCheckpoint() (uint64, error) {
	v, err := s.db.Get(keyWALCheckpoint, nil)
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

// checkpoint durably records that goleveldb holds every WAL record up to s.walLast. A
// synced write makes every earlier goleveldb write durable too: the current journal is
// fsynced, and earlier journals were fsynced when goleveldb closed them
// (syncedJournals), before they were flushed to synced tables.
func (s *Store) checkpoint() error {
	if err := s.db.Put(keyWALCheckpoint, u64(s.walLast), &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("write WAL checkpoint: %w", err)
	}
	return nil
}

// syncedJournals is goleveldb's file storage with journals fsynced when goleveldb closes
// them (at every memtable switch): goleveldb itself syncs a journal only for a synced
// write, and the WAL checkpoint relies on every journal write before it being durable.
type syncedJournals struct{ storage.Storage }

func (s syncedJournals) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := s.Storage.Create(fd)
	if err != nil || fd.Type != storage.TypeJournal {
		return w, err
	}
	return syncOnClose{w}, nil
}

type syncOnClose struct{ storage.Writer }

func (w syncOnClose) Close() error {
	if err := w.Writer.Sync(); err != nil {
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
	errs = append(errs, s.wal.close(), s.db.Close(), s.stor.Close())
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
	v, err := s.db.Get(keyMarker, nil)
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
	}, len(node)+len(lostJSON))
	if err != nil {
		return fmt.Errorf("write storage marker: %w", err)
	}
	return nil
}

// ReadLost returns what an earlier life of this node lost (empty if nothing).
func (s *Store) ReadLost() (*Lost, error) {
	v, err := s.db.Get(keyLost, nil)
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
