package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/syndtr/goleveldb/leveldb/util"

	"gorestate.dev/shared/bincodec"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
)

// --- virtual object state ---

func (p *Partition) stateKey(service, key string, name []byte) []byte {
	return p.key(tState, objectKey(service, key), name)
}

// SetState sets one state entry of an object.
func (t *Txn) SetState(service, key string, name, value []byte) {
	t.put(t.p.stateKey(service, key, name), value)
}

// ClearState removes one state entry.
func (t *Txn) ClearState(service, key string, name []byte) {
	t.del(t.p.stateKey(service, key, name))
}

// ClearAllState removes every state entry of an object.
func (t *Txn) ClearAllState(service, key string) error {
	kvs, err := t.scan(t.p.stateKey(service, key, nil), 0)
	if err != nil {
		return err
	}
	for _, x := range kvs {
		t.del(x.k)
	}
	return nil
}

// StateEntry is one key/value of an object's state.
type StateEntry struct {
	Key, Value []byte
}

// State returns the whole state of an object from the snapshot.
func (s *Snapshot) State(service, key string) ([]StateEntry, error) {
	prefix := s.p.stateKey(service, key, nil)
	it := s.snap.NewIterator(prefixRange(prefix), nil)
	defer it.Release()
	var out []StateEntry
	// Each entry is followed by a seek past it rather than Next: an object's state is
	// rewritten by every invocation, and the memtable keeps every version of a key, which
	// Next would step through one by one (a counter updated a few hundred times a second
	// had thousands of versions, and loading its state took half the node's CPU).
	for ok := it.First(); ok; {
		k := append([]byte(nil), it.Key()...) // the iterator reuses its key buffer
		out = append(out, StateEntry{Key: k[len(prefix):], Value: append([]byte(nil), it.Value()...)})
		ok = it.Seek(append(k[:len(k):len(k)], 0))
	}
	return out, it.Error()
}

// --- object locks ---

// Lock returns the invocation holding an object's exclusive lock, or nil.
func (t *Txn) Lock(service, key string) ([]byte, error) {
	v, ok, err := t.get(t.p.key(tLock, objectKey(service, key)))
	if !ok {
		return nil, err
	}
	return v, err
}

// SetLock gives an object's lock to an invocation.
func (t *Txn) SetLock(service, key string, id []byte) {
	t.put(t.p.key(tLock, objectKey(service, key)), id)
}

// ReleaseLock frees an object's lock.
func (t *Txn) ReleaseLock(service, key string) {
	t.del(t.p.key(tLock, objectKey(service, key)))
}

// --- inboxes ---

// PushInbox enqueues an invocation behind an object's lock and returns its sequence number.
func (t *Txn) PushInbox(service, key string, id []byte) (uint64, error) {
	seq, err := t.nextSeq(metaInboxSeq)
	if err != nil {
		return 0, err
	}
	t.put(t.p.key(tInbox, objectKey(service, key), u64(seq)), id)
	return seq, nil
}

// An inbox entry is the 24-byte id of an invocation waiting for the object's lock, or a
// state patch waiting for it: inboxPatchMark, the length of the patch's binary form
// (logrecord.AppendPatchState) and that form, plus one zero byte if all that came to 24
// bytes, so that a patch is never taken for an id.
const inboxPatchMark = 'P'

// PushInboxPatch queues a state patch behind an object's lock.
func (t *Txn) PushInboxPatch(p *logrecord.PatchState) error {
	seq, err := t.nextSeq(metaInboxSeq)
	if err != nil {
		return err
	}
	t.put(t.p.key(tInbox, objectKey(p.Service, p.Key), u64(seq)), encodeInboxPatch(p))
	return nil
}

func encodeInboxPatch(p *logrecord.PatchState) []byte {
	body := logrecord.AppendPatchState(nil, p)
	v := binary.AppendUvarint([]byte{inboxPatchMark}, uint64(len(body)))
	v = append(v, body...)
	if len(v) == ids.InvocationIDLen {
		v = append(v, 0)
	}
	return v
}

// InboxPatch decodes an inbox entry holding a state patch; nil, nil for an invocation id.
func InboxPatch(v []byte) (*logrecord.PatchState, error) {
	if len(v) == ids.InvocationIDLen {
		return nil, nil
	}
	if len(v) == 0 || v[0] != inboxPatchMark {
		return nil, fmt.Errorf("inbox entry of %d bytes is neither an invocation id nor a state patch", len(v))
	}
	r := &bincodec.Reader{B: v[1:]}
	n := r.Count()
	if r.Err != nil {
		return nil, fmt.Errorf("inbox state patch: %w", r.Err)
	}
	body := &bincodec.Reader{B: r.B[:n]}
	p := logrecord.ReadPatchState(body)
	if err := body.Done(); err != nil {
		return nil, fmt.Errorf("inbox state patch: %w", err)
	}
	return p, nil
}

// DeleteInboxEntry removes one queued invocation (cancelled or killed while it waited).
func (t *Txn) DeleteInboxEntry(service, key string, seq uint64) {
	t.del(t.p.key(tInbox, objectKey(service, key), u64(seq)))
}

// PopInbox removes and returns the oldest invocation queued for an object, or nil.
func (t *Txn) PopInbox(service, key string) ([]byte, error) {
	prefix := t.p.key(tInbox, objectKey(service, key))
	r := prefixRange(prefix)
	// Start after the last entry popped: the deletes of earlier entries stay in the
	// memtable and the tables above them for a while, and an object that serves many
	// invocations in a row would otherwise scan past all of them on every pop.
	head, ok := t.heads[string(prefix)]
	if !ok {
		head, ok = t.p.heads.get(string(prefix))
	}
	if ok {
		r.Start = append(prefix[:len(prefix):len(prefix)], u64(head+1)...)
	}
	kvs, err := t.scanRange(r, 1)
	if err != nil || len(kvs) == 0 {
		return nil, err
	}
	t.del(kvs[0].k)
	if t.heads == nil {
		t.heads = map[string]uint64{}
	}
	t.heads[string(prefix)] = binary.BigEndian.Uint64(kvs[0].k[len(prefix):])
	return kvs[0].v, nil
}

// inboxHeads remembers, per object, the sequence number of the inbox entry popped last
// (committed). Entries are pushed with increasing sequence numbers and popped oldest
// first, so no entry of the object's inbox is at or below it: PopInbox may start its scan
// after it. Only a hint: an object without one scans from the start of its inbox. Wipes and
// imports, which reset the sequence numbers, drop every hint.
type inboxHeads struct {
	mu sync.Mutex
	m  map[string]uint64
}

// maxInboxHeads bounds the hints; past it they are dropped and learnt again.
const maxInboxHeads = 1 << 16

func (h *inboxHeads) get(prefix string) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, ok := h.m[prefix]
	return seq, ok
}

// set records the heads of a committed transaction.
func (h *inboxHeads) set(heads map[string]uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m)+len(heads) > maxInboxHeads {
		h.m = make(map[string]uint64, len(heads))
	}
	for prefix, seq := range heads {
		h.m[prefix] = max(h.m[prefix], seq)
	}
}

func (h *inboxHeads) clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m = nil
}

// --- timers ---

// TimerKey orders timers by wake-up time.
func (p *Partition) timerKey(tf *logrecord.TimerFired) []byte {
	return p.key(tTimer, u64(uint64(tf.WakeAt)), tf.InvocationID, []byte{byte(tf.Kind)}, u32(tf.CompletionID))
}

// PutTimer stores a durable timer.
func (t *Txn) PutTimer(tf *logrecord.TimerFired) error {
	v, err := json.Marshal(tf)
	if err != nil {
		return err
	}
	t.put(t.p.timerKey(tf), v)
	return nil
}

// TakeTimer deletes a timer and reports whether it existed (a timer fires at most once).
func (t *Txn) TakeTimer(tf *logrecord.TimerFired) (bool, error) {
	k := t.p.timerKey(tf)
	_, ok, err := t.get(k)
	if err != nil || !ok {
		return false, err
	}
	t.del(k)
	return true, nil
}

// Timers returns the timers of the partition that wake up at or after from and before
// until (ms), in wake-up order: the first limit of them (0: all).
func (p *Partition) Timers(from, until int64, limit int) ([]*logrecord.TimerFired, error) {
	it := p.db.NewIterator(&util.Range{Start: p.key(tTimer, u64(uint64(max(from, 0)))), Limit: p.key(tTimer, u64(uint64(max(until, 0))))}, nil)
	defer it.Release()
	var out []*logrecord.TimerFired
	for (limit <= 0 || len(out) < limit) && it.Next() {
		tf := &logrecord.TimerFired{}
		if err := json.Unmarshal(it.Value(), tf); err != nil {
			return nil, fmt.Errorf("decode timer: %w", err)
		}
		out = append(out, tf)
	}
	return out, it.Error()
}

// --- outbox ---

// OutboxMessage is a record waiting to be appended to another partition's log.
type OutboxMessage struct {
	Seq       uint64
	Partition uint32
	Record    []byte
}

// PushOutbox stores a record for another partition and returns its sequence number.
func (t *Txn) PushOutbox(partition uint32, record []byte) (uint64, error) {
	seq, err := t.nextSeq(metaOutboxSeq)
	if err != nil {
		return 0, err
	}
	v := binary.BigEndian.AppendUint32(nil, partition)
	t.put(t.p.key(tOutbox, u64(seq)), append(v, record...))
	return seq, nil
}

// TruncateOutbox drops outbox messages up to and including seq. It reads only those keys,
// not the messages queued after them.
func (t *Txn) TruncateOutbox(seq uint64) error {
	kvs, err := t.scanRange(&util.Range{Start: t.p.key(tOutbox), Limit: t.p.key(tOutbox, u64(seq+1))}, 0)
	if err != nil {
		return err
	}
	for _, x := range kvs {
		t.del(x.k)
	}
	return nil
}

// outboxAfter is the key range of the outbox messages with seq > after.
func (p *Partition) outboxAfter(after uint64) *util.Range {
	return &util.Range{Start: p.key(tOutbox, u64(after+1)), Limit: prefixRange(p.key(tOutbox)).Limit}
}

// Outbox returns the pending outbox messages with seq > after, reading no others.
func (p *Partition) Outbox(after uint64) ([]OutboxMessage, error) {
	it := p.db.NewIterator(p.outboxAfter(after), nil)
	defer it.Release()
	var out []OutboxMessage
	for it.Next() {
		k, v := it.Key(), it.Value()
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		if seq <= after || len(v) < 4 {
			continue
		}
		out = append(out, OutboxMessage{Seq: seq, Partition: binary.BigEndian.Uint32(v), Record: append([]byte(nil), v[4:]...)})
	}
	return out, it.Error()
}

// --- dedup ---

// SeenDedup reports whether a message from producer with seq was applied already, and if
// not, records it.
func (t *Txn) SeenDedup(producer uint32, seq uint64) (bool, error) {
	k := t.p.key(tDedup, u32(producer))
	v, ok, err := t.get(k)
	if err != nil {
		return false, err
	}
	if ok && binary.BigEndian.Uint64(v) >= seq {
		return true, nil
	}
	t.put(k, u64(seq))
	return false, nil
}

// --- meta ---

func (t *Txn) nextSeq(which byte) (uint64, error) {
	k := t.p.key(tMeta, []byte{which})
	v, ok, err := t.get(k)
	if err != nil {
		return 0, err
	}
	var seq uint64 = 1
	if ok {
		seq = binary.BigEndian.Uint64(v) + 1
	}
	t.put(k, u64(seq))
	return seq, nil
}

// SetApplied records the LSN of the last applied record.
func (t *Txn) SetApplied(lsn uint64) { t.put(t.p.key(tMeta, []byte{metaApplied}), u64(lsn)) }

// SetEpoch records the current leader epoch.
func (t *Txn) SetEpoch(epoch uint64) {
	t.put(t.p.key(tMeta, []byte{metaEpoch}), u64(epoch))
	t.epochSet = true
}

// Epoch returns the current leader epoch: this transaction's own write, or the committed
// one, which the store keeps in memory (see epochCache).
func (t *Txn) Epoch() (uint64, error) {
	if v, ok := t.overlay[string(t.p.key(tMeta, []byte{metaEpoch}))]; ok {
		if v == nil {
			return 0, nil
		}
		return binary.BigEndian.Uint64(v), nil
	}
	epoch, gen, ok := t.p.epochs.lookup(t.p.id)
	if ok {
		return epoch, nil
	}
	epoch, err := t.meta(metaEpoch)
	if err != nil {
		return 0, err
	}
	t.p.epochs.fill(t.p.id, gen, epoch)
	return epoch, nil
}

// epochCache keeps each partition's committed leader epoch in memory. Every applied record
// checks the epoch, and its key is written once per leadership, so it sinks to the deepest
// level of the tree, where a read passes through every level above: after a million
// retained invocations those reads took 9 % of a node's CPU. Writes of the epoch (commits
// of SetEpoch, wipes, imports) drop the cached value and count a generation, so that a
// read of the database that raced with such a write does not cache what it read.
type epochCache struct {
	mu    sync.Mutex
	known map[uint32]uint64
	gens  map[uint32]uint64
}

// lookup returns the cached epoch, or the generation a read of the database must fill in.
func (c *epochCache) lookup(id uint32) (epoch, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	epoch, ok = c.known[id]
	return epoch, c.gens[id], ok
}

// fill caches epoch, read from the database after lookup returned gen, unless the epoch
// was written since.
func (c *epochCache) fill(id uint32, gen, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[id] != gen {
		return
	}
	if c.known == nil {
		c.known = map[uint32]uint64{}
	}
	c.known[id] = epoch
}

// forget drops the cached epoch; call it after the epoch was written in the database.
func (c *epochCache) forget(id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.known, id)
	if c.gens == nil {
		c.gens = map[uint32]uint64{}
	}
	c.gens[id]++
}

func (t *Txn) meta(which byte) (uint64, error) {
	v, ok, err := t.get(t.p.key(tMeta, []byte{which}))
	if err != nil || !ok {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// Rules is the version of the apply rules that the partition's log switched to (0: the
// first ones); the processor owns what they mean.
func (t *Txn) Rules() (uint64, error) { return t.meta(metaRules) }

// SetRules records a switch of the apply rules.
func (t *Txn) SetRules(v uint64) { t.put(t.p.key(tMeta, []byte{metaRules}), u64(v)) }

// Applied returns the LSN of the last applied record (0 if none).
func (p *Partition) Applied() (uint64, error) { return p.Begin().meta(metaApplied) }

// Epoch returns the stored leader epoch.
func (p *Partition) Epoch() (uint64, error) { return p.Begin().Epoch() }

// StateValue reads one state entry of an object.
func (t *Txn) StateValue(service, key string, name []byte) ([]byte, bool, error) {
	return t.get(t.p.stateKey(service, key, name))
}

// StateEntries returns the whole state of an object, ordered by key.
func (t *Txn) StateEntries(service, key string) ([]StateEntry, error) {
	prefix := t.p.stateKey(service, key, nil)
	kvs, err := t.scan(prefix, 0)
	if err != nil {
		return nil, err
	}
	out := make([]StateEntry, 0, len(kvs))
	for _, x := range kvs {
		out = append(out, StateEntry{Key: x.k[len(prefix):], Value: x.v})
	}
	return out, nil
}

// StateKeys lists the state keys of an object.
func (t *Txn) StateKeys(service, key string) ([][]byte, error) {
	prefix := t.p.stateKey(service, key, nil)
	kvs, err := t.scan(prefix, 0)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(kvs))
	for _, x := range kvs {
		out = append(out, x.k[len(prefix):])
	}
	return out, nil
}
