package metadata

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ErrClosed is returned by a store after Close.
var ErrClosed = errors.New("metadata: store closed")

// localKeyPrefix keeps object keys apart from anything else the database may hold later.
const localKeyPrefix = "obj/"

// LocalStore is the single-node Store: a goleveldb database in which each key's version and
// value are one record (8-byte big-endian version, then the value), so a crash can never
// separate them. Writes are serialized by a mutex, which is fine because metadata writes are
// rare; WaitNewer callers are woken by Put through per-key channels, not by polling.
type LocalStore struct {
	db *leveldb.DB

	mu      sync.Mutex
	closed  bool
	done    chan struct{}            // closed by Close, to release waiters
	changed map[string]chan struct{} // closed and removed by the next Put of the key
}

var _ Store = (*LocalStore)(nil)

// OpenLocal opens (creating if needed) the store in dir.
func OpenLocal(dir string) (*LocalStore, error) {
	// Metadata is small and rarely written: goleveldb's default 4 MiB memtable (allocated
	// in full at open) would be most of it, in the heap of every node.
	// A larger write grows a fresh memtable (DisableLargeBatchTransaction) instead of
	// being written into level-0 tables after a synchronous flush.
	db, err := leveldb.OpenFile(dir, &opt.Options{WriteBuffer: 256 << 10, DisableLargeBatchTransaction: true})
	if err != nil {
		return nil, fmt.Errorf("metadata: open local store %s: %w", dir, err)
	}
	return &LocalStore{db: db, done: make(chan struct{}), changed: map[string]chan struct{}{}}, nil
}

// Close releases the database and wakes every WaitNewer with ErrClosed.
func (s *LocalStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("metadata: close local store: %w", err)
	}
	return nil
}

// Get returns the newest value of key, or ErrNotFound.
func (s *LocalStore) Get(ctx context.Context, key string) (_ Versioned, err error) {
	defer ObserveOp("get", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return Versioned{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.readLocked(key)
	if err != nil {
		return Versioned{}, err
	}
	if v.Version == 0 {
		return Versioned{}, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return v, nil
}

// Put stores value as version expected+1 if key is at version expected; the write is synced
// to disk before Put returns.
func (s *LocalStore) Put(ctx context.Context, key string, value []byte, expected uint64) (_ uint64, err error) {
	defer ObserveOp("put", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.readLocked(key)
	if err != nil {
		return 0, err
	}
	if cur.Version != expected {
		return 0, fmt.Errorf("%w: key %q is at version %d, not %d", ErrVersionMismatch, key, cur.Version, expected)
	}
	next := expected + 1
	rec := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(rec, next)
	copy(rec[8:], value)
	if err := s.db.Put([]byte(localKeyPrefix+key), rec, &opt.WriteOptions{Sync: true}); err != nil {
		return 0, fmt.Errorf("metadata: put %q: %w", key, err)
	}
	if ch, ok := s.changed[key]; ok {
		close(ch)
		delete(s.changed, key)
	}
	return next, nil
}

// WaitNewer blocks until key has a version greater than version, ctx is done or the store is
// closed.
func (s *LocalStore) WaitNewer(ctx context.Context, key string, version uint64) (_ Versioned, err error) {
	defer ObserveOp("watch", time.Time{}, &err)
	for {
		s.mu.Lock()
		v, err := s.readLocked(key)
		if err != nil {
			s.mu.Unlock()
			return Versioned{}, err
		}
		if v.Version > version {
			s.mu.Unlock()
			return v, nil
		}
		// Taking the channel under the same lock as the read means a Put cannot slip in
		// between: it either happened before the read or will close this channel.
		ch, ok := s.changed[key]
		if !ok {
			ch = make(chan struct{})
			s.changed[key] = ch
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Versioned{}, ctx.Err()
		case <-s.done:
			return Versioned{}, ErrClosed
		}
	}
}

// All returns every object of the store with its version, for migrating the store into
// another one (the Raft store imports them keeping their versions).
func (s *LocalStore) All() (map[string]Versioned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte(localKeyPrefix)), nil)
	defer it.Release()
	out := map[string]Versioned{}
	for it.Next() {
		key := string(it.Key()[len(localKeyPrefix):])
		rec := it.Value()
		if len(rec) < 8 {
			return nil, fmt.Errorf("metadata: all: record of %q has %d bytes, too short", key, len(rec))
		}
		// The iterator reuses its buffers: keep copies.
		out[key] = Versioned{Version: binary.BigEndian.Uint64(rec), Value: bytes.Clone(rec[8:])}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("metadata: all: %w", err)
	}
	return out, nil
}

// readLocked returns key's record, with version 0 when absent. s.mu must be held.
func (s *LocalStore) readLocked(key string) (Versioned, error) {
	if s.closed {
		return Versioned{}, ErrClosed
	}
	rec, err := s.db.Get([]byte(localKeyPrefix+key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return Versioned{}, nil
	}
	if err != nil {
		return Versioned{}, fmt.Errorf("metadata: get %q: %w", key, err)
	}
	if len(rec) < 8 {
		return Versioned{}, fmt.Errorf("metadata: get %q: record of %d bytes is too short", key, len(rec))
	}
	return Versioned{Version: binary.BigEndian.Uint64(rec), Value: rec[8:]}, nil
}
