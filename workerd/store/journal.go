package store

import (
	"encoding/binary"
	"fmt"
)

// JournalEntry is one stored journal entry: a service-protocol message type, its flags and
// its payload, byte for byte as the SDK sent it (or as the runtime built it).
type JournalEntry struct {
	Type    uint16
	Flags   uint16
	Payload []byte
}

func encodeEntry(e JournalEntry) []byte {
	b := make([]byte, 4, 4+len(e.Payload))
	binary.BigEndian.PutUint16(b, e.Type)
	binary.BigEndian.PutUint16(b[2:], e.Flags)
	return append(b, e.Payload...)
}

func decodeEntry(v []byte) (JournalEntry, error) {
	if len(v) < 4 {
		return JournalEntry{}, fmt.Errorf("journal entry of %d bytes", len(v))
	}
	return JournalEntry{
		Type:    binary.BigEndian.Uint16(v),
		Flags:   binary.BigEndian.Uint16(v[2:]),
		Payload: v[4:],
	}, nil
}

func (p *Partition) journalKey(id []byte, idx uint32) []byte {
	return p.idKey(tJournal, id, u32(idx))
}

// PutJournalEntry stores entry idx of an invocation's journal.
func (t *Txn) PutJournalEntry(id []byte, idx uint32, e JournalEntry) {
	t.put(t.p.journalKey(id, idx), encodeEntry(e))
}

// JournalEntry reads entry idx of an invocation's journal.
func (t *Txn) JournalEntry(id []byte, idx uint32) (JournalEntry, bool, error) {
	v, ok, err := t.get(t.p.journalKey(id, idx))
	if err != nil || !ok {
		return JournalEntry{}, ok, err
	}
	e, err := decodeEntry(v)
	return e, err == nil, err
}

// DeleteJournal removes an invocation's journal and its notification index. An error
// (the index could not be read) leaves the transaction to be discarded: a replica that
// skipped the index would differ from one that deleted it.
func (t *Txn) DeleteJournal(id []byte, length uint32) error {
	for i := uint32(0); i < length; i++ {
		t.del(t.p.journalKey(id, i))
	}
	kvs, err := t.scan(t.p.idKey(tNotified, id), 0)
	if err != nil {
		return fmt.Errorf("delete the journal of %x: %w", id, err)
	}
	for _, x := range kvs {
		t.del(x.k)
	}
	return nil
}

// Journal reads the first n entries of an invocation's journal from the snapshot.
func (s *Snapshot) Journal(id []byte, n uint32) ([]JournalEntry, error) {
	out := make([]JournalEntry, 0, n)
	if n <= journalGets {
		// Short journals (most, when an attempt starts) are cheaper to read key by key:
		// a goleveldb iterator merges an iterator of every table it may touch.
		for i := range n {
			v, ok, err := s.get(s.p.journalKey(id, uint32(i)))
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("journal of %x lacks entry %d of the %d its status counts", id, i, n)
			}
			e, err := decodeEntry(v)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	it := s.snap.NewIterator(prefixRange(s.p.idKey(tJournal, id)), nil)
	defer it.Release()
	for it.Next() && uint32(len(out)) < n {
		e, err := decodeEntry(append([]byte(nil), it.Value()...))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if uint32(len(out)) != n {
		return nil, fmt.Errorf("journal of %x has %d entries, status says %d", id, len(out), n)
	}
	return out, nil
}

// journalGets is the length up to which Journal reads entries by point lookups.
const journalGets = 8

// Notification id kinds in the notification index.
const (
	NotifyCompletion = 'c'
	NotifySignal     = 's'
	NotifyName       = 'n'
)

func (p *Partition) notifiedKey(id []byte, kind byte, ident []byte) []byte {
	return p.idKey(tNotified, id, []byte{kind}, ident)
}

// MarkNotified records that the journal holds a notification for a completion id, signal id
// or signal name.
func (t *Txn) MarkNotified(id []byte, kind byte, ident []byte, idx uint32) {
	t.put(t.p.notifiedKey(id, kind, ident), u32(idx))
}

// Notified reports whether the journal holds a notification for the given id.
func (t *Txn) Notified(id []byte, kind byte, ident []byte) (bool, error) {
	_, ok, err := t.get(t.p.notifiedKey(id, kind, ident))
	return ok, err
}

// NotifiedIndex returns the journal index of the notification for the given id.
func (t *Txn) NotifiedIndex(id []byte, kind byte, ident []byte) (uint32, bool, error) {
	v, ok, err := t.get(t.p.notifiedKey(id, kind, ident))
	if err != nil || !ok || len(v) != 4 {
		return 0, false, err
	}
	return binary.BigEndian.Uint32(v), true, nil
}

// CompletionIdent encodes a completion or signal id for the notification index.
func CompletionIdent(n uint32) []byte { return u32(n) }
