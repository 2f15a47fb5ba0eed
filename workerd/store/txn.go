package store

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Txn collects the writes of applying log records and reads its own writes. Commit writes
// them in one atomic batch.
type Txn struct {
	p        *Partition
	batch    leveldb.Batch
	overlay  map[string][]byte // nil value = deleted
	epochSet bool              // SetEpoch was called: the epoch cache must forget it at commit
	heads    map[string]uint64 // inbox heads popped by this transaction (see inboxHeads)
}

// Begin starts a transaction on the partition.
func (p *Partition) Begin() *Txn {
	return &Txn{p: p, overlay: make(map[string][]byte)}
}

// Commit writes the transaction atomically. It does not fsync: see the package comment.
func (t *Txn) Commit() error {
	if t.batch.Len() == 0 {
		return nil
	}
	if err := t.addMarker(); err != nil {
		return err
	}
	err := t.p.db.Write(&t.batch, &opt.WriteOptions{Sync: false})
	if t.epochSet {
		t.p.epochs.forget(t.p.id) // also after a failed write, which may have landed
		t.epochSet = false
	}
	if err != nil {
		return fmt.Errorf("partition %d commit: %w", t.p.id, err)
	}
	if len(t.heads) > 0 {
		t.p.heads.set(t.heads)
		clear(t.heads)
	}
	storeWrites.Inc()
	t.batch.Reset()
	clear(t.overlay)
	return nil
}

func (t *Txn) put(k, v []byte) {
	if v == nil {
		v = []byte{} // nil in the overlay means deleted; an empty value is a value
	}
	t.batch.Put(k, v)
	t.overlay[string(k)] = v
}

func (t *Txn) del(k []byte) {
	t.batch.Delete(k)
	t.overlay[string(k)] = nil
}

func (t *Txn) get(k []byte) ([]byte, bool, error) {
	if v, ok := t.overlay[string(k)]; ok {
		return v, v != nil, nil
	}
	return t.p.get(k)
}

type kv struct {
	k, v []byte
}

// scan returns up to limit (0 = all) key/values under prefix in key order, merging the
// transaction's own writes.
func (t *Txn) scan(prefix []byte, limit int) ([]kv, error) {
	return t.scanRange(prefixRange(prefix), limit)
}

// scanRange is scan over the keys in r. With a limit it stops reading the database after
// limit keys: those and the transaction's own writes up to them hold the first limit keys
// of the merged view, so a bounded scan of a long range stays cheap.
func (t *Txn) scanRange(r *util.Range, limit int) ([]kv, error) {
	var out []kv
	it := t.p.db.NewIterator(r, nil)
	for it.Next() {
		k := it.Key()
		if _, shadowed := t.overlay[string(k)]; shadowed {
			continue
		}
		out = append(out, kv{append([]byte(nil), k...), append([]byte(nil), it.Value()...)})
		if limit > 0 && len(out) == limit {
			break
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("partition %d scan: %w", t.p.id, err)
	}
	for k, v := range t.overlay {
		if v != nil && bytes.Compare([]byte(k), r.Start) >= 0 && (r.Limit == nil || bytes.Compare([]byte(k), r.Limit) < 0) {
			out = append(out, kv{[]byte(k), v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].k, out[j].k) < 0 })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
