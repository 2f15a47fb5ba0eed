package store

import (
	"encoding/binary"
	"fmt"
	"strings"

	"gorestate.dev/shared/bincodec"
	"gorestate.dev/shared/logrecord"
)

// Journal events (sys_journal_events) live beside the journal they belong to, keyed by
// keyID(id) and a sequence number per invocation, and go with it: DeleteJournal removes
// them too (completion without journal retention, purge, purge-journal, retention expiry).
// Stores of earlier versions have none of these keys and need no upgrade.

// JournalEvent is one stored event of an invocation.
type JournalEvent struct {
	Type logrecord.EventType
	// AppendedAt is the time of the record that stored it.
	AppendedAt int64
	// AfterEntryIndex is the index of the journal's last entry when it was stored (the
	// journal length minus one, 0 for an empty journal), as Restate orders events among
	// entries.
	AfterEntryIndex uint32
	// Commands is the journal's command count when it was stored: a failure repeated
	// without a command in between is not stored again.
	Commands uint32
	Failure  *logrecord.EventFailure
}

// IndexedEvent is a journal event with its invocation and its position among the
// invocation's events.
type IndexedEvent struct {
	ID  []byte
	Seq uint32
	JournalEvent
}

// eventFormat is the first byte of a stored event, so that a later layout can be told apart.
const eventFormat = 1

func encodeEvent(e JournalEvent) []byte {
	b := make([]byte, 0, 64)
	b = append(b, eventFormat, byte(e.Type))
	b = binary.AppendVarint(b, e.AppendedAt)
	b = binary.AppendUvarint(b, uint64(e.AfterEntryIndex))
	b = binary.AppendUvarint(b, uint64(e.Commands))
	return logrecord.AppendEventFailure(b, e.Failure)
}

func decodeEvent(v []byte) (JournalEvent, error) {
	if len(v) < 2 || v[0] != eventFormat {
		return JournalEvent{}, fmt.Errorf("journal event of an unknown format")
	}
	r := &bincodec.Reader{B: v[2:]}
	e := JournalEvent{Type: logrecord.EventType(v[1]), AppendedAt: r.Varint(), AfterEntryIndex: r.U32(), Commands: r.U32()}
	e.Failure = logrecord.ReadEventFailure(r)
	if err := r.Done(); err != nil {
		return JournalEvent{}, fmt.Errorf("decode journal event: %w", err)
	}
	return e, nil
}

// JournalEvents returns an invocation's events in the order they were stored.
func (t *Txn) JournalEvents(id []byte) ([]IndexedEvent, error) {
	prefix := t.p.idKey(tEvent, id)
	kvs, err := t.scan(prefix, 0)
	if err != nil {
		return nil, fmt.Errorf("journal events of %x: %w", id, err)
	}
	out := make([]IndexedEvent, 0, len(kvs))
	for _, x := range kvs {
		if len(x.k) != len(prefix)+4 {
			continue
		}
		e, err := decodeEvent(x.v)
		if err != nil {
			return nil, fmt.Errorf("journal events of %x: %w", id, err)
		}
		out = append(out, IndexedEvent{ID: id, Seq: binary.BigEndian.Uint32(x.k[len(prefix):]), JournalEvent: e})
	}
	return out, nil
}

// LastJournalEvent returns an invocation's latest event (ok false when it has none). It
// reads the one key at the end of the invocation's events, not all of them: the apply asks
// for it at every new event, and an invocation alternating between two failures for ever
// piles up events without bound (as in Restate).
func (t *Txn) LastJournalEvent(id []byte) (e IndexedEvent, ok bool, err error) {
	prefix := t.p.idKey(tEvent, id)
	var last kv
	it := t.p.db.NewIterator(prefixRange(prefix), nil)
	for more := it.Last(); more; more = it.Prev() {
		k := it.Key()
		if _, shadowed := t.overlay[string(k)]; shadowed || len(k) != len(prefix)+4 {
			continue
		}
		last, ok = kv{append([]byte(nil), k...), append([]byte(nil), it.Value()...)}, true
		break
	}
	it.Release()
	if err := it.Error(); err != nil {
		return IndexedEvent{}, false, fmt.Errorf("last journal event of %x: %w", id, err)
	}
	for k, v := range t.overlay { // this transaction's own events
		if v != nil && len(k) == len(prefix)+4 && strings.HasPrefix(k, string(prefix)) && (!ok || k > string(last.k)) {
			last, ok = kv{[]byte(k), v}, true
		}
	}
	if !ok {
		return IndexedEvent{}, false, nil
	}
	ev, err := decodeEvent(last.v)
	if err != nil {
		return IndexedEvent{}, false, fmt.Errorf("last journal event of %x: %w", id, err)
	}
	return IndexedEvent{ID: id, Seq: binary.BigEndian.Uint32(last.k[len(prefix):]), JournalEvent: ev}, true, nil
}

// PutJournalEvent stores event seq of an invocation.
func (t *Txn) PutJournalEvent(id []byte, seq uint32, e JournalEvent) {
	t.put(t.p.idKey(tEvent, id, u32(seq)), encodeEvent(e))
}

// deleteJournalEvents removes every event of an invocation.
func (t *Txn) deleteJournalEvents(id []byte) error {
	kvs, err := t.scan(t.p.idKey(tEvent, id), 0)
	if err != nil {
		return fmt.Errorf("delete the journal events of %x: %w", id, err)
	}
	for _, x := range kvs {
		t.del(x.k)
	}
	return nil
}

// JournalEvents calls fn for every stored event of the partition (of invocation id only, if
// not nil), grouped by invocation and in the order they were stored within one.
func (s *Snapshot) JournalEvents(id []byte, fn func(e IndexedEvent) error) error {
	prefix := s.p.key(tEvent)
	it := s.snap.NewIterator(prefixRange(s.p.idKey(tEvent, id)), nil)
	defer it.Release()
	for it.Next() {
		rest := it.Key()[len(prefix):]
		if len(rest) < 4 || id != nil && len(rest) != len(id)+4 {
			continue // not an event key of id (a longer id that starts with it)
		}
		e, err := decodeEvent(append([]byte(nil), it.Value()...))
		if err != nil {
			return fmt.Errorf("partition %d journal events of %x: %w", s.p.id, rest[:len(rest)-4], err)
		}
		err = fn(IndexedEvent{ID: idOfKey(rest[:len(rest)-4]), Seq: binary.BigEndian.Uint32(rest[len(rest)-4:]), JournalEvent: e})
		if err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("partition %d scan journal events: %w", s.p.id, err)
	}
	return nil
}
