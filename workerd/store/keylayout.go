package store

import (
	"encoding/binary"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// appendKeyID appends the keyID of an invocation id to dst: how the id appears in the keys
// of its status, journal and notifications, a 24-byte id (partition key, then uuid) with
// the uuid first. A plain invocation's uuid is a ULID, which starts with its creation
// time, so these keys are written in nearly ascending order. Keyed by the id as it is,
// they landed all over the key space (the partition key is random for a service without
// keys), so with a day of retention every memtable flush overlapped all of level 1 and
// compactions rewrote the retained invocations again and again: a soak of 1,000,000
// invocations slowed to 0.65-0.76 of its first minute.
func appendKeyID(dst, id []byte) []byte {
	if len(id) != 24 {
		return append(dst, id...)
	}
	return append(append(dst, id[8:]...), id[:8]...)
}

// idKey is key(table, keyID(id), rest...), built in one allocation: statuses, journals and
// notifications are looked up on the apply path.
func (p *Partition) idKey(table byte, id []byte, rest ...[]byte) []byte {
	n := 5 + len(id)
	for _, x := range rest {
		n += len(x)
	}
	k := make([]byte, 5, n)
	binary.BigEndian.PutUint32(k, p.id)
	k[4] = table
	k = appendKeyID(k, id)
	for _, x := range rest {
		k = append(k, x...)
	}
	return k
}

// idOfKey turns a keyID back into the id (a copy).
func idOfKey(k []byte) []byte {
	if len(k) != 24 {
		return append([]byte(nil), k...)
	}
	id := make([]byte, 24)
	copy(id, k[16:])
	copy(id[8:], k[:16])
	return id
}

// migrateBatch is how many keys one batch of MigrateKeyLayout moves.
const migrateBatch = 1000

// MigrateKeyLayout moves the statuses, journals and notifications that a store of an
// earlier version keeps under the ids as they are into the tables keyed by keyID, and
// returns how many keys it moved. Each batch puts the new keys and deletes the old ones
// together, so a crash in between leaves every key in one place and the next call goes on.
// Cheap when there is nothing to move: three seeks.
func (p *Partition) MigrateKeyLayout() (int, error) {
	moved := 0
	for _, t := range []struct {
		from, to byte
		// split returns the id part of a key's rest (after the table byte) and the part
		// after it.
		split func(rest []byte) (id, tail []byte)
	}{
		{tStatusV1, tStatus, func(rest []byte) ([]byte, []byte) { return rest, nil }},
		{tJournalV1, tJournal, func(rest []byte) ([]byte, []byte) {
			if len(rest) < 4 {
				return nil, rest
			}
			return rest[:len(rest)-4], rest[len(rest)-4:]
		}},
		// The engine's ids are 24 bytes; a notification key is id, kind, then an
		// identifier of any length.
		{tNotifiedV1, tNotified, func(rest []byte) ([]byte, []byte) {
			if len(rest) <= 24 {
				return nil, rest
			}
			return rest[:24], rest[24:]
		}},
	} {
		prefix := p.key(t.from)
		r := prefixRange(prefix)
		for {
			var b leveldb.Batch
			// From after the last key moved: the deleted keys stay in the tree as
			// tombstones until compactions drop them, and skipping them all again for
			// every batch would take time quadratic in the store's size.
			it := p.db.NewIterator(r, bulk)
			for b.Len() < 2*migrateBatch && it.Next() {
				id, tail := t.split(it.Key()[len(prefix):])
				b.Put(p.idKey(t.to, id, tail), it.Value())
				b.Delete(it.Key())
				r = &util.Range{Start: append(append([]byte(nil), it.Key()...), 0), Limit: r.Limit}
			}
			it.Release()
			if err := it.Error(); err != nil {
				return moved, fmt.Errorf("partition %d: move keys of table %q: %w", p.id, t.from, err)
			}
			if b.Len() == 0 {
				break
			}
			if err := p.db.Write(&b, nil); err != nil {
				return moved, fmt.Errorf("partition %d: move keys of table %q: %w", p.id, t.from, err)
			}
			moved += b.Len() / 2
		}
	}
	return moved, nil
}
