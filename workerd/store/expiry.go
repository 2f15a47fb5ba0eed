package store

import (
	"encoding/binary"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// ExpiryKind says what of a completed invocation expires.
type ExpiryKind byte

const (
	ExpireJournal ExpiryKind = 'j' // the journal (journal retention)
	ExpireStatus  ExpiryKind = 's' // the status with its result, and any journal left
)

// Expiry is one entry of the expiry index: completed invocations ordered by the time their
// retained data may go. One index entry per retained invocation is cheaper than a durable
// timer each, and lets one log record expire a whole batch.
type Expiry struct {
	At   int64 // ms
	ID   []byte
	Kind ExpiryKind
}

func (p *Partition) expiryKey(e Expiry) []byte {
	return p.key(tExpiry, u64(uint64(max(e.At, 0))), e.ID, []byte{byte(e.Kind)})
}

// PutExpiry adds an entry to the expiry index.
func (t *Txn) PutExpiry(e Expiry) { t.put(t.p.expiryKey(e), []byte{}) } // non-nil: nil marks a delete in the overlay

// DeleteExpiry removes an entry from the expiry index.
func (t *Txn) DeleteExpiry(e Expiry) { t.del(t.p.expiryKey(e)) }

// DueExpiries returns up to limit index entries due at or before until, oldest first,
// including the transaction's own writes (so that several expiry records applied in one
// batch see the same entries as when applied one by one).
func (t *Txn) DueExpiries(until int64, limit int) ([]Expiry, error) {
	r := &util.Range{Start: t.p.key(tExpiry), Limit: t.p.key(tExpiry, u64(uint64(max(until, 0))+1))}
	kvs, err := t.scanRange(r, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Expiry, 0, len(kvs))
	for _, kv := range kvs {
		e, err := decodeExpiryKey(kv.k)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// NextExpiry returns the earliest expiry index entry, or false if there is none.
func (p *Partition) NextExpiry() (Expiry, bool, error) {
	it := p.db.NewIterator(prefixRange(p.key(tExpiry)), nil)
	defer it.Release()
	if !it.Next() {
		return Expiry{}, false, it.Error()
	}
	e, err := decodeExpiryKey(it.Key())
	if err != nil {
		return Expiry{}, false, err
	}
	return e, true, nil
}

func decodeExpiryKey(k []byte) (Expiry, error) {
	// partition (4) + table (1) + at (8) + id + kind (1)
	if len(k) < 5+8+1+1 {
		return Expiry{}, fmt.Errorf("expiry index key of %d bytes is too short", len(k))
	}
	at := int64(binary.BigEndian.Uint64(k[5:13]))
	return Expiry{At: at, ID: append([]byte(nil), k[13:len(k)-1]...), Kind: ExpiryKind(k[len(k)-1])}, nil
}
