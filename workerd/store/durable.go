package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// The store's writes are not synced (see the package comment), so after a crash the store
// may lack a suffix of its batches, which the processor re-applies from the log. After a
// power loss it could also lack an earlier batch but keep a later one (pages of the journal
// reach the disk out of order, and recovery skips a damaged chunk): then the state is wrong
// and must be rebuilt. Two things make that detectable and bound what trimming may rely on:
//
//   - Every commit that advances the applied LSN also writes a batch marker keyed by the new
//     applied LSN whose value is the applied LSN before it. The markers after the durable
//     checkpoint form a chain; a missing batch breaks it.
//   - Checkpoint syncs the store (one synced write syncs the journal, and with it every
//     batch before) and records the applied LSN it covers: the durable applied LSN. The
//     markers it covers are deleted in the same write.

// ErrLostWrites says a partition store lost a batch that a later batch depends on.
var ErrLostWrites = errors.New("partition store lost writes")

// Meta keys of the durability bookkeeping; neither is part of a partition's state, so
// digests leave them out (replicas checkpoint at different times).
const (
	metaBatch   = 'b' // + u64 applied LSN → u64 previous applied LSN
	metaDurable = 'd' // u64 durable applied LSN
	// metaReplacing is set (synced) while the partition is wiped or an import replaces
	// it: both write in unsynced batches, so a crash in between leaves part of the old or
	// part of the new state, possibly with an applied LSN that claims all of it.
	metaReplacing = 'w'
)

func (p *Partition) markerKey(lsn uint64) []byte {
	return p.key(tMeta, []byte{metaBatch}, u64(lsn))
}

// bookkeeping reports whether k (without the partition prefix) is durability bookkeeping.
func bookkeeping(k []byte) bool {
	return len(k) >= 2 && k[0] == tMeta && (k[1] == metaBatch || k[1] == metaDurable || k[1] == metaReplacing)
}

// addMarker adds the batch marker to a commit that advances the applied LSN.
func (t *Txn) addMarker() error {
	appliedKey := t.p.key(tMeta, []byte{metaApplied})
	v, ok := t.overlay[string(appliedKey)]
	if !ok || v == nil {
		return nil
	}
	prev, found, err := t.p.get(appliedKey) // the committed value, not this batch's
	if err != nil {
		return err
	}
	var prevLSN uint64
	if found {
		prevLSN = binary.BigEndian.Uint64(prev)
	}
	if lsn := binary.BigEndian.Uint64(v); lsn != prevLSN {
		t.batch.Put(t.p.markerKey(lsn), u64(prevLSN))
	}
	return nil
}

// Durable returns the durable applied LSN: every record up to it is applied and synced.
func (p *Partition) Durable() (uint64, error) { return p.Begin().meta(metaDurable) }

// Checkpoint syncs everything written so far and records the applied LSN it covers as the
// durable applied LSN, which it returns. Call it from the goroutine that commits the
// partition's batches.
func (p *Partition) Checkpoint() (uint64, error) {
	applied, err := p.Applied()
	if err != nil {
		return 0, err
	}
	var b leveldb.Batch
	b.Put(p.key(tMeta, []byte{metaDurable}), u64(applied))
	prefix := p.key(tMeta, []byte{metaBatch})
	it := p.db.NewIterator(prefixRange(prefix), nil)
	for it.Next() {
		if binary.BigEndian.Uint64(it.Key()[len(prefix):]) > applied {
			break
		}
		b.Delete(append([]byte(nil), it.Key()...))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("partition %d checkpoint: %w", p.id, err)
	}
	storeSyncs.Inc()
	if err := p.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return 0, fmt.Errorf("partition %d checkpoint: %w", p.id, err)
	}
	return applied, nil
}

// Verify checks that no batch after the durable checkpoint is missing: the markers after it
// must chain from the durable applied LSN to the applied LSN. A store written before the
// markers existed passes as long as it has none.
func (p *Partition) Verify() error {
	txn := p.Begin()
	if _, replacing, err := txn.get(p.replacingKey()); err != nil {
		return err
	} else if replacing {
		return fmt.Errorf("%w: partition %d: a wipe or an import of a snapshot was interrupted, and the state is part old, part new", ErrLostWrites, p.id)
	}
	applied, err := txn.meta(metaApplied)
	if err != nil {
		return err
	}
	durable, hasDurable, err := txn.get(p.key(tMeta, []byte{metaDurable}))
	if err != nil {
		return err
	}
	prefix := p.key(tMeta, []byte{metaBatch})
	it := p.db.NewIterator(prefixRange(prefix), nil)
	defer it.Release()
	var expect uint64
	chained := false
	if hasDurable {
		expect, chained = binary.BigEndian.Uint64(durable), true
	}
	for it.Next() {
		lsn := binary.BigEndian.Uint64(it.Key()[len(prefix):])
		prev := binary.BigEndian.Uint64(it.Value())
		if chained && prev != expect {
			return fmt.Errorf("%w: partition %d: the batch after applied LSN %d is missing (the next one follows %d)", ErrLostWrites, p.id, expect, prev)
		}
		expect, chained = lsn, true
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("partition %d verify: %w", p.id, err)
	}
	if chained && expect != applied {
		return fmt.Errorf("%w: partition %d: applied LSN %d, but its batches end at %d", ErrLostWrites, p.id, applied, expect)
	}
	return nil
}

// Wipe deletes everything of the partition, for a rebuild from the log.
func (p *Partition) Wipe() error {
	if err := p.beginReplace(); err != nil {
		return err
	}
	return p.endReplace(nil)
}

func (p *Partition) replacingKey() []byte { return p.key(tMeta, []byte{metaReplacing}) }

// beginReplace marks the partition as being replaced (durably, before anything is deleted)
// and deletes everything else of it. endReplace ends what beginReplace started.
func (p *Partition) beginReplace() (err error) {
	defer p.epochs.forget(p.id)
	defer p.heads.clear()
	defer func() {
		if err != nil {
			err = fmt.Errorf("partition %d wipe: %w", p.id, err)
		}
	}()
	var b leveldb.Batch
	b.Put(p.replacingKey(), nil)
	if err := p.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return err
	}
	b.Reset()
	marker := p.replacingKey()
	it := p.db.NewIterator(prefixRange(u32(p.id)), nil)
	defer it.Release()
	for it.Next() {
		if bytes.Equal(it.Key(), marker) {
			continue
		}
		b.Delete(append([]byte(nil), it.Key()...))
		if b.Len() >= 1000 {
			if err := p.db.Write(&b, nil); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return p.db.Write(&b, nil)
}

// endReplace writes last (may be nil) and removes the mark of beginReplace in one synced
// write, which also makes every unsynced write before it durable.
func (p *Partition) endReplace(last *leveldb.Batch) error {
	if last == nil {
		last = new(leveldb.Batch)
	}
	last.Delete(p.replacingKey())
	if err := p.db.Write(last, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("partition %d wipe: %w", p.id, err)
	}
	return nil
}
