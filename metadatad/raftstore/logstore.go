package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/raft"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// logStore is raft's LogStore and StableStore in one goleveldb database (raft-boltdb does
// not build with our raft version, see shared/DEPENDENCIES.md). Log entries live under
// 'l' + big-endian index, so that key order is index order and First/Last are one seek;
// stable values under 's' + key. Every write is synced: raft treats a returned StoreLogs
// or Set as durable, and votes and terms must survive a crash.
type logStore struct {
	db *leveldb.DB
}

const (
	logKeyPrefix    = 'l'
	stableKeyPrefix = 's'
)

// errKeyNotFound is what raft expects from a StableStore for an absent key: it compares
// the error text with "not found" (raft-boltdb's wording).
var errKeyNotFound = errors.New("not found")

var syncWrite = &opt.WriteOptions{Sync: true}

var (
	_ raft.LogStore    = (*logStore)(nil)
	_ raft.StableStore = (*logStore)(nil)
)

func openLogStore(dir string) (*logStore, error) {
	// Raft entries of metadata are small; goleveldb's default 4 MiB memtable is allocated
	// in full at open.
	// A larger write grows a fresh memtable (DisableLargeBatchTransaction) instead of
	// being written into level-0 tables after a synchronous flush.
	db, err := leveldb.OpenFile(dir, &opt.Options{WriteBuffer: 1 << 20, DisableLargeBatchTransaction: true})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open log store %s: %w", dir, err)
	}
	return &logStore{db: db}, nil
}

func (s *logStore) Close() error { return s.db.Close() }

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = logKeyPrefix
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// logRange covers the log keys of indexes min..max inclusive.
func logRange(min, max uint64) *util.Range {
	r := &util.Range{Start: logKey(min), Limit: []byte{logKeyPrefix + 1}}
	if max < math.MaxUint64 {
		r.Limit = logKey(max + 1)
	}
	return r
}

func (s *logStore) FirstIndex() (uint64, error) { return s.edgeIndex(true) }
func (s *logStore) LastIndex() (uint64, error)  { return s.edgeIndex(false) }

// edgeIndex returns the first or last stored index, 0 when the log is empty.
func (s *logStore) edgeIndex(first bool) (uint64, error) {
	it := s.db.NewIterator(logRange(0, math.MaxUint64), nil)
	defer it.Release()
	ok := false
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	if !ok {
		return 0, it.Error()
	}
	if len(it.Key()) != 9 {
		return 0, fmt.Errorf("%w: log key of %d bytes", errCorrupt, len(it.Key()))
	}
	return binary.BigEndian.Uint64(it.Key()[1:]), nil
}

func (s *logStore) GetLog(index uint64, log *raft.Log) error {
	b, err := s.db.Get(logKey(index), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	if err := decodeLog(b, log); err != nil {
		return fmt.Errorf("raftstore: log %d: %w", index, err)
	}
	if log.Index != index {
		return fmt.Errorf("raftstore: %w: log key %d holds entry %d", errCorrupt, index, log.Index)
	}
	return nil
}

func (s *logStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs writes the entries in one synced batch: all or none survive a crash.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	var batch leveldb.Batch
	for _, l := range logs {
		batch.Put(logKey(l.Index), encodeLog(l))
	}
	if err := s.db.Write(&batch, syncWrite); err != nil {
		return fmt.Errorf("raftstore: store %d log entries: %w", len(logs), err)
	}
	return nil
}

// DeleteRange deletes the entries min..max that exist. It iterates rather than counting
// from min to max, because raft may pass a range far larger than what is stored.
func (s *logStore) DeleteRange(min, max uint64) error {
	var batch leveldb.Batch
	it := s.db.NewIterator(logRange(min, max), nil)
	for it.Next() {
		batch.Delete(append([]byte(nil), it.Key()...))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("raftstore: delete logs %d..%d: %w", min, max, err)
	}
	if err := s.db.Write(&batch, syncWrite); err != nil {
		return fmt.Errorf("raftstore: delete logs %d..%d: %w", min, max, err)
	}
	return nil
}

func stableKey(key []byte) []byte { return append([]byte{stableKeyPrefix}, key...) }

func (s *logStore) Set(key, val []byte) error {
	if err := s.db.Put(stableKey(key), val, syncWrite); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	return nil
}

func (s *logStore) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(stableKey(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	return v, nil
}

func (s *logStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

func (s *logStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftstore: %w: stable value %q has %d bytes, want 8", errCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// logHeaderLen is index, term, type and append time.
const logHeaderLen = 8 + 8 + 1 + 8

// encodeLog encodes an entry: index, term, type, append time (Unix nanoseconds, 0 for the
// zero time), then data and extensions, each length-prefixed.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, logHeaderLen, logHeaderLen+2*binary.MaxVarintLen64+len(l.Data)+len(l.Extensions))
	binary.BigEndian.PutUint64(b[0:], l.Index)
	binary.BigEndian.PutUint64(b[8:], l.Term)
	b[16] = byte(l.Type)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	binary.BigEndian.PutUint64(b[17:], uint64(at))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

// decodeLog fills every field of l from b (raft reuses Log values, so none may be left
// over). Data and Extensions are copies, as leveldb and callers may reuse b.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < logHeaderLen {
		return fmt.Errorf("%w: log entry of %d bytes", errCorrupt, len(b))
	}
	l.Index = binary.BigEndian.Uint64(b[0:])
	l.Term = binary.BigEndian.Uint64(b[8:])
	l.Type = raft.LogType(b[16])
	l.AppendedAt = time.Time{}
	if at := int64(binary.BigEndian.Uint64(b[17:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	r := reader{b: b[logHeaderLen:]}
	data := r.bytes(r.uvarint())
	ext := r.bytes(r.uvarint())
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after log entry", errCorrupt, len(r.b))
	}
	l.Data = cloneOrNil(data)
	l.Extensions = cloneOrNil(ext)
	return nil
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
