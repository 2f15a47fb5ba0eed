package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/opt"

	"gorestate.dev/shared/ids"
)

// Read-only scans over a snapshot, for introspection (the admin API's SQL tables). They read
// whole tables of one partition, so they belong off the apply path.

// bulk is for reads of whole tables (introspection, snapshots): their blocks are read once,
// and must not push the blocks that the apply path reads again and again out of the small
// block cache.
var bulk = &opt.ReadOptions{DontFillCache: true}

// EachStatus calls fn with every invocation status of the partition as of the snapshot, in
// key order (keyID: by uuid, then partition key), without holding them all. fn returns
// false to stop early.
func (s *Snapshot) EachStatus(fn func(id []byte, st *Status) (bool, error)) error {
	return s.EachStatusWhere(nil, fn)
}

// EachStatusWhere is EachStatus for the statuses whose head keep accepts (nil: all): a
// status that keep refuses is neither decoded nor passed to fn. Statuses stored as JSON
// (by versions before the binary encoding) have no head and always reach fn.
func (s *Snapshot) EachStatusWhere(keep func(StatusHead) bool, fn func(id []byte, st *Status) (bool, error)) error {
	prefix := s.p.key(tStatus)
	it := s.snap.NewIterator(prefixRange(prefix), bulk)
	defer it.Release()
	for it.Next() {
		if keep != nil {
			if h, ok := decodeStatusHead(it.Value()); ok && !keep(h) {
				continue
			}
		}
		st, err := decodeStatus(it.Value())
		if err != nil {
			return fmt.Errorf("partition %d status %x: %w", s.p.id, it.Key()[len(prefix):], err)
		}
		more, err := fn(idOfKey(it.Key()[len(prefix):]), st)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("partition %d scan statuses: %w", s.p.id, err)
	}
	return nil
}

// IndexedEntry is a journal entry with the invocation it belongs to and its index.
type IndexedEntry struct {
	ID    []byte
	Index uint32
	JournalEntry
}

// Journals calls fn for every stored journal entry of the partition (of invocation id
// only, if not nil), grouped by invocation and in index order within one. Unlike Journal it
// trusts the keys rather than a status's JournalLen, so it shows what is stored even for an
// invocation whose status is gone.
func (s *Snapshot) Journals(id []byte, fn func(e IndexedEntry) error) error {
	prefix := s.p.key(tJournal)
	it := s.snap.NewIterator(prefixRange(s.p.idKey(tJournal, id)), nil)
	defer it.Release()
	for it.Next() {
		rest := it.Key()[len(prefix):]
		if len(rest) < 4 {
			return fmt.Errorf("partition %d: journal key %x too short", s.p.id, it.Key())
		}
		if id != nil && len(rest) != len(id)+4 {
			continue // a longer id that starts with id
		}
		e, err := decodeEntry(append([]byte(nil), it.Value()...))
		if err != nil {
			return fmt.Errorf("partition %d journal of %x: %w", s.p.id, rest[:len(rest)-4], err)
		}
		err = fn(IndexedEntry{
			ID:           idOfKey(rest[:len(rest)-4]),
			Index:        binary.BigEndian.Uint32(rest[len(rest)-4:]),
			JournalEntry: e,
		})
		if err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("partition %d scan journals: %w", s.p.id, err)
	}
	return nil
}

// ObjectStateEntry is one state entry of some object.
type ObjectStateEntry struct {
	Service, Key string
	StateEntry
}

// AllState returns every state entry of the partition's objects of service (of every
// service if ""), or of one object if key is not nil, ordered by object and then by state
// key.
func (s *Snapshot) AllState(service string, key *string) ([]ObjectStateEntry, error) {
	prefix := s.p.key(tState)
	scope := prefix
	switch {
	case key != nil:
		scope = s.p.key(tState, objectKey(service, *key))
	case service != "":
		scope = s.p.key(tState, objectKey(service, "")[:2+len(service)])
	}
	it := s.snap.NewIterator(prefixRange(scope), bulk)
	defer it.Release()
	var out []ObjectStateEntry
	for it.Next() {
		service, key, rest, err := splitObjectKey(it.Key()[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("partition %d state key %x: %w", s.p.id, it.Key(), err)
		}
		out = append(out, ObjectStateEntry{Service: service, Key: key, StateEntry: StateEntry{
			Key:   append([]byte(nil), rest...),
			Value: append([]byte(nil), it.Value()...),
		}})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("partition %d scan state: %w", s.p.id, err)
	}
	return out, nil
}

// InboxEntry is one invocation waiting for an object's lock.
type InboxEntry struct {
	Service, Key string
	Seq          uint64
	ID           []byte
}

// Inboxes returns every queued invocation of the partition, ordered by object and then by
// sequence number (the order in which each object's queue is served).
func (s *Snapshot) Inboxes() ([]InboxEntry, error) {
	prefix := s.p.key(tInbox)
	it := s.snap.NewIterator(prefixRange(prefix), bulk)
	defer it.Release()
	var out []InboxEntry
	for it.Next() {
		service, key, rest, err := splitObjectKey(it.Key()[len(prefix):])
		if err != nil || len(rest) != 8 {
			return nil, fmt.Errorf("partition %d: malformed inbox key %x (%v)", s.p.id, it.Key(), err)
		}
		if len(it.Value()) != ids.InvocationIDLen {
			continue // a state patch waiting for the lock, not an invocation
		}
		out = append(out, InboxEntry{
			Service: service, Key: key,
			Seq: binary.BigEndian.Uint64(rest),
			ID:  append([]byte(nil), it.Value()...),
		})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("partition %d scan inboxes: %w", s.p.id, err)
	}
	return out, nil
}

// LockEntry is an object's exclusive lock and the invocation holding it.
type LockEntry struct {
	Service, Key string
	ID           []byte
}

// Locks returns every held object lock of the partition.
func (s *Snapshot) Locks() ([]LockEntry, error) {
	prefix := s.p.key(tLock)
	it := s.snap.NewIterator(prefixRange(prefix), bulk)
	defer it.Release()
	var out []LockEntry
	for it.Next() {
		service, key, rest, err := splitObjectKey(it.Key()[len(prefix):])
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("partition %d: malformed lock key %x (%v)", s.p.id, it.Key(), err)
		}
		out = append(out, LockEntry{Service: service, Key: key, ID: append([]byte(nil), it.Value()...)})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("partition %d scan locks: %w", s.p.id, err)
	}
	return out, nil
}

// splitObjectKey undoes objectKey at the start of b and returns what follows it.
func splitObjectKey(b []byte) (service, key string, rest []byte, err error) {
	if len(b) < 2 {
		return "", "", nil, fmt.Errorf("object key of %d bytes", len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+4 {
		return "", "", nil, fmt.Errorf("object key truncated in the service name")
	}
	service, b = string(b[:n]), b[n:]
	m := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(len(b)) < uint64(m) {
		return "", "", nil, fmt.Errorf("object key truncated in the key")
	}
	return service, string(b[:m]), b[m:], nil
}

// PromiseEntry is one workflow promise.
type PromiseEntry struct {
	Service, Key, Name string
	Promise            *Promise
}

// Promises returns every workflow promise of the partition, ordered by workflow and name.
func (s *Snapshot) Promises() ([]PromiseEntry, error) {
	prefix := s.p.key(tPromise)
	it := s.snap.NewIterator(prefixRange(prefix), bulk)
	defer it.Release()
	var out []PromiseEntry
	for it.Next() {
		service, key, name, err := splitObjectKey(it.Key()[len(prefix):])
		if err != nil {
			return nil, fmt.Errorf("partition %d promise key %x: %w", s.p.id, it.Key(), err)
		}
		pr := &Promise{}
		if err := json.Unmarshal(it.Value(), pr); err != nil {
			return nil, fmt.Errorf("partition %d: decode promise %s/%s/%s: %w", s.p.id, service, key, name, err)
		}
		out = append(out, PromiseEntry{Service: service, Key: key, Name: string(name), Promise: pr})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("partition %d scan promises: %w", s.p.id, err)
	}
	return out, nil
}

// NewestFirst calls fn with the id and creation time (ms) of every invocation whose status
// the snapshot holds, newest first (ties in descending id order), or of the unfinished ones
// only; it reads an index, not the statuses. fn returns false to stop early.
func (s *Snapshot) NewestFirst(unfinished bool, fn func(id []byte, createdAt int64) (bool, error)) error {
	table := byte(tCreated)
	if unfinished {
		table = tActive
	}
	prefix := s.p.key(table)
	it := s.snap.NewIterator(prefixRange(prefix), bulk)
	defer it.Release()
	for ok := it.Last(); ok; ok = it.Prev() {
		rest := it.Key()[len(prefix):]
		if len(rest) < 8 {
			return fmt.Errorf("partition %d: index key %x too short", s.p.id, it.Key())
		}
		more, err := fn(append([]byte(nil), rest[8:]...), int64(binary.BigEndian.Uint64(rest)))
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("partition %d scan index: %w", s.p.id, err)
	}
	return nil
}

// QueueDepths counts the partition's inbox entries (invocations queued behind their
// object's lock), unfinished invocations and invoked ones (running, suspended or backing
// off). It reads index keys only, not the statuses.
func (p *Partition) QueueDepths() (inboxed, unfinished, invoked int, err error) {
	for _, c := range []struct {
		table byte
		n     *int
	}{{tInbox, &inboxed}, {tActive, &unfinished}, {tInvoked, &invoked}} {
		it := p.db.NewIterator(prefixRange(p.key(c.table)), bulk)
		for it.Next() {
			*c.n++
		}
		it.Release()
		if err = it.Error(); err != nil {
			return 0, 0, 0, fmt.Errorf("partition %d: count queued invocations: %w", p.id, err)
		}
	}
	return inboxed, unfinished, invoked, nil
}
