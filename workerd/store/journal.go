package store

import (
	"encoding/binary"
	"fmt"

	"gorestate.dev/shared/bincodec"
)

// JournalEntry is one stored journal entry: a service-protocol message type, its flags and
// its payload, byte for byte as the SDK sent it (or as the runtime built it), plus what
// introspection shows about it and the payload does not say.
type JournalEntry struct {
	Type    uint16
	Flags   uint16
	Payload []byte
	// AppendedAt is when the entry was appended: the time of the record that appended it
	// (ms since the epoch), so every replica stores the same. 0 for entries stored before
	// it was kept.
	AppendedAt int64
	// Call describes the callee of a Call or OneWayCall command as it was resolved when the
	// command was applied; nil for other entries and for entries stored before it was kept.
	Call *CallMeta
}

// CallMeta is what a Call or OneWayCall command's payload leaves out about its callee: the
// service and handler types and the retention it got (sys_journal shows them as Restate's
// invocation target and request).
type CallMeta struct {
	ServiceType           string // schema service type: SERVICE, VIRTUAL_OBJECT, WORKFLOW
	HandlerType           string // schema handler type: EXCLUSIVE, SHARED, WORKFLOW or ""
	CompletionRetentionMs int64
	JournalRetentionMs    int64
}

// The stored form of an entry is type u16 | flags u16 | payload. When entryExtFlag is set in
// the stored flags, an extension sits between the flags and the payload: its length
// (uvarint), then appended-at (varint), a call-metadata marker byte (0 or 1) and, with 1,
// service type and handler type (strings) and completion and journal retention (varints); a
// reader skips whatever follows. Entries stored before the extension existed never carry the flag. The flag is the
// store's own: the service protocol (V5-V7) defines none but 0x8000, and an SDK's use of
// this bit is dropped rather than mistaken for an extension.
const entryExtFlag uint16 = 0x4000

func encodeEntry(e JournalEntry) []byte {
	flags := e.Flags &^ entryExtFlag
	if e.AppendedAt == 0 && e.Call == nil {
		b := make([]byte, 4, 4+len(e.Payload))
		binary.BigEndian.PutUint16(b, e.Type)
		binary.BigEndian.PutUint16(b[2:], flags)
		return append(b, e.Payload...)
	}
	// On the stack for the usual sizes: the entry's bytes are its one allocation.
	var extBuf [64]byte
	ext := binary.AppendVarint(extBuf[:0], e.AppendedAt)
	if c := e.Call; c != nil {
		ext = append(ext, 1)
		ext = bincodec.AppendString(ext, c.ServiceType)
		ext = bincodec.AppendString(ext, c.HandlerType)
		ext = binary.AppendVarint(ext, c.CompletionRetentionMs)
		ext = binary.AppendVarint(ext, c.JournalRetentionMs)
	} else {
		ext = append(ext, 0)
	}
	b := make([]byte, 4, 4+binary.MaxVarintLen32+len(ext)+len(e.Payload))
	binary.BigEndian.PutUint16(b, e.Type)
	binary.BigEndian.PutUint16(b[2:], flags|entryExtFlag)
	b = binary.AppendUvarint(b, uint64(len(ext)))
	b = append(b, ext...)
	return append(b, e.Payload...)
}

func decodeEntry(v []byte) (JournalEntry, error) {
	if len(v) < 4 {
		return JournalEntry{}, fmt.Errorf("journal entry of %d bytes", len(v))
	}
	e := JournalEntry{
		Type:    binary.BigEndian.Uint16(v),
		Flags:   binary.BigEndian.Uint16(v[2:]),
		Payload: v[4:],
	}
	if e.Flags&entryExtFlag == 0 {
		return e, nil
	}
	e.Flags &^= entryExtFlag
	n, w := binary.Uvarint(e.Payload)
	if w <= 0 || n > uint64(len(e.Payload)-w) {
		return JournalEntry{}, fmt.Errorf("journal entry extension of %d bytes in %d", n, len(e.Payload))
	}
	r := &bincodec.Reader{B: e.Payload[w : w+int(n)]}
	e.Payload = e.Payload[w+int(n):]
	e.AppendedAt = r.Varint()
	switch r.Byte() {
	case 0:
	case 1:
		e.Call = &CallMeta{ServiceType: typeName(r), HandlerType: typeName(r), CompletionRetentionMs: r.Varint(), JournalRetentionMs: r.Varint()}
	default:
		r.Fail()
	}
	// Bytes after what this version reads are left for later versions to define.
	if r.Err != nil {
		return JournalEntry{}, fmt.Errorf("journal entry extension: %w", r.Err)
	}
	return e, nil
}

// typeName reads a service or handler type: one of a few names, which need no allocation
// per entry read (the invoker reads the journal at every attempt).
func typeName(r *bincodec.Reader) string {
	n := r.Count()
	if r.Err != nil {
		return ""
	}
	b := r.B[:n]
	r.B = r.B[n:]
	switch string(b) {
	case "":
		return ""
	case "SERVICE":
		return "SERVICE"
	case "VIRTUAL_OBJECT":
		return "VIRTUAL_OBJECT"
	case "WORKFLOW":
		return "WORKFLOW"
	case "EXCLUSIVE":
		return "EXCLUSIVE"
	case "SHARED":
		return "SHARED"
	}
	return string(b)
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

// DeleteJournal removes an invocation's journal, its notification index and its journal
// events. An error (the index could not be read) leaves the transaction to be discarded: a
// replica that skipped the index would differ from one that deleted it.
func (t *Txn) DeleteJournal(id []byte, length uint32) error {
	for i := uint32(0); i < length; i++ {
		t.del(t.p.journalKey(id, i))
	}
	if err := t.deleteJournalEvents(id); err != nil {
		return err
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

// Notified reports whether the journal holds a notification for the given id.
func (s *Snapshot) Notified(id []byte, kind byte, ident []byte) (bool, error) {
	_, ok, err := s.get(s.p.notifiedKey(id, kind, ident))
	return ok, err
}
