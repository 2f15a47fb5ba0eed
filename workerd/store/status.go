package store

import (
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/logrecord"
)

// Phase is where an invocation is in its life.
type Phase string

const (
	PhaseScheduled Phase = "scheduled" // waiting for its execution time
	PhaseInboxed   Phase = "inboxed"   // waiting for its virtual object's lock
	PhaseInvoked   Phase = "invoked"   // running (or retrying) on the leader's invoker
	PhaseSuspended Phase = "suspended" // waiting for a notification
	PhasePaused    Phase = "paused"    // retries exhausted; waits for an operator
	PhaseCompleted Phase = "completed" // result kept for its retention
)

// Result is the outcome of a completed invocation.
type Result struct {
	Value   []byte `json:"v,omitempty"`
	Failed  bool   `json:"f,omitempty"`
	Code    uint32 `json:"c,omitempty"`
	Message string `json:"m,omitempty"`
}

// Status is the invocation status table row.
type Status struct {
	Phase          Phase              `json:"p"`
	Target         logrecord.Target   `json:"t"`
	IdempotencyKey string             `json:"ik,omitempty"`
	InvokedBy      string             `json:"by,omitempty"`
	Callers        []logrecord.Caller `json:"c,omitempty"`
	CreatedAt      int64              `json:"ca"`
	ModifiedAt     int64              `json:"ma"`
	ExecutionTime  int64              `json:"x,omitempty"`
	InboxSeq       uint64             `json:"iq,omitempty"`
	// Attempt numbers the invoker runs of this invocation that an operator cut short
	// (pause): effects carry the number they were started under, and effects of an older
	// run are dropped.
	Attempt uint32 `json:"at,omitempty"`
	// JournalLen counts journal entries (commands and notifications).
	JournalLen   uint32 `json:"jl"`
	CommandCount uint32 `json:"cc"`
	// Suspension: resume on any of these.
	WaitingCompletions []uint32 `json:"wc,omitempty"`
	WaitingSignals     []uint32 `json:"ws,omitempty"`
	WaitingNames       []string `json:"wn,omitempty"`
	// CompletionRetentionMs keeps the status and result after completion; JournalRetentionMs
	// keeps the journal (never longer than the status).
	CompletionRetentionMs int64   `json:"cr,omitempty"`
	JournalRetentionMs    int64   `json:"jr,omitempty"`
	CompletedAt           int64   `json:"cd,omitempty"`
	Result                *Result `json:"r,omitempty"`
	DeploymentID          string  `json:"dp,omitempty"`
	ProtocolVersion       uint32  `json:"pv,omitempty"`
	// LastFailure is the failure an EffectPause carried: earlier versions logged the last
	// attempt's there; it is no longer shown (nor logged).
	LastFailure string `json:"lf,omitempty"`
	// The first transitions to inboxed, scheduled and running (ms; 0 = never), which
	// introspection shows after the invocation has moved on (Restate's inboxed_at,
	// scheduled_at, running_at).
	InboxedAt   int64 `json:"ia,omitempty"`
	ScheduledAt int64 `json:"sa,omitempty"`
	RunningAt   int64 `json:"ra,omitempty"`
}

// Exclusive reports whether the invocation must hold its object's lock to run.
func (s *Status) Exclusive() bool {
	return s.Target.HandlerType == "EXCLUSIVE" || s.Target.HandlerType == "WORKFLOW"
}

func (p *Partition) statusKey(id []byte) []byte { return p.idKey(tStatus, id) }

// Status reads an invocation's status; nil if absent.
func (t *Txn) Status(id []byte) (*Status, error) {
	v, ok, err := t.get(t.p.statusKey(id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeStatus(v)
}

// Indexed is what a status's index entries depend on: the indexes of invoked and of
// unfinished invocations, and the index by creation time.
type Indexed struct {
	Phase     Phase
	CreatedAt int64
}

// Indexed returns the facts s is indexed by.
func (s *Status) Indexed() Indexed { return Indexed{Phase: s.Phase, CreatedAt: s.CreatedAt} }

// createdKey and activeKey order an index by creation time, then id.
func (p *Partition) createdKey(createdAt int64, id []byte) []byte {
	return p.key(tCreated, u64(uint64(max(createdAt, 0))), id)
}

func (p *Partition) activeKey(createdAt int64, id []byte) []byte {
	return p.key(tActive, u64(uint64(max(createdAt, 0))), id)
}

// PutStatus writes an invocation's status and keeps its indexes. prev is what the stored
// status was indexed by, or nil if there was none or the caller does not know (then every
// index entry of s is written, and the invoked entry deleted if s is not invoked).
func (t *Txn) PutStatus(id []byte, s *Status, prev *Indexed) error {
	v, err := encodeStatus(s)
	if err != nil {
		return fmt.Errorf("encode invocation status: %w", err)
	}
	t.put(t.p.statusKey(id), v)
	if prev != nil && prev.CreatedAt != s.CreatedAt {
		// Another invocation under the same id (the old one expired in this batch).
		t.delIndexes(id, *prev)
		prev = nil
	}
	if prev != nil && prev.Phase == s.Phase {
		return nil
	}
	switch {
	case s.Phase == PhaseInvoked:
		t.put(t.p.key(tInvoked, id), []byte{})
	case prev == nil || prev.Phase == PhaseInvoked:
		t.del(t.p.key(tInvoked, id))
	}
	switch done := s.Phase == PhaseCompleted; {
	case !done && (prev == nil || prev.Phase == PhaseCompleted):
		t.put(t.p.activeKey(s.CreatedAt, id), []byte{})
	case done && (prev == nil || prev.Phase != PhaseCompleted):
		t.del(t.p.activeKey(s.CreatedAt, id))
	}
	if prev == nil {
		t.put(t.p.createdKey(s.CreatedAt, id), []byte{})
	}
	return nil
}

// DeleteStatus removes an invocation's status and its index entries. prev is what the
// stored status is indexed by, or nil to read it.
func (t *Txn) DeleteStatus(id []byte, prev *Indexed) error {
	if prev == nil {
		st, err := t.Status(id)
		if err != nil {
			return err
		}
		if st == nil {
			return nil
		}
		ix := st.Indexed()
		prev = &ix
	}
	t.del(t.p.statusKey(id))
	t.delIndexes(id, *prev)
	return nil
}

func (t *Txn) delIndexes(id []byte, ix Indexed) {
	t.del(t.p.key(tInvoked, id))
	t.del(t.p.activeKey(ix.CreatedAt, id))
	t.del(t.p.createdKey(ix.CreatedAt, id))
}

// InvokedPage returns up to n ids of invocations in PhaseInvoked, in key order, starting
// after the id after (nil: from the first). It reads only the invoked index, not the
// statuses of the completed invocations that are retained beside them.
func (p *Partition) InvokedPage(after []byte, n int) ([][]byte, error) {
	prefix := p.key(tInvoked)
	r := prefixRange(prefix)
	if after != nil {
		// The smallest key above prefix+after.
		r.Start = append(append(append([]byte(nil), prefix...), after...), 0)
	}
	it := p.db.NewIterator(r, nil)
	defer it.Release()
	var ids [][]byte
	for len(ids) < n && it.Next() {
		ids = append(ids, append([]byte(nil), it.Key()[len(prefix):]...))
	}
	return ids, it.Error()
}

// BuildIndexes indexes every status of a partition that has not been indexed as a whole
// yet: stores written before an index existed, imports of such stores, and partitions
// that were new when the last indexes were added. It must run before records are applied
// (the processor calls it at start). It returns how many statuses it indexed (0 if the
// partition was indexed already).
func (p *Partition) BuildIndexes() (int, error) {
	flag := p.key(tMeta, []byte{metaIndexes})
	if v, ok, err := p.get(flag); err != nil || ok && len(v) == 1 && v[0] >= indexesVersion {
		return 0, err
	}
	var batch leveldb.Batch
	n := 0
	err := p.EachStatus(func(id []byte, st *Status) error {
		if st.Phase == PhaseInvoked {
			batch.Put(p.key(tInvoked, id), []byte{})
		}
		if st.Phase != PhaseCompleted {
			batch.Put(p.activeKey(st.CreatedAt, id), []byte{})
		}
		batch.Put(p.createdKey(st.CreatedAt, id), []byte{})
		n++
		if batch.Len() >= 3000 {
			if err := p.db.Write(&batch, nil); err != nil {
				return err
			}
			batch.Reset()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("partition %d: index invocations: %w", p.id, err)
	}
	// The flag goes last: a crash before it leaves a partial index that the next start
	// completes (every put is idempotent).
	batch.Put(flag, []byte{indexesVersion})
	if err := p.db.Write(&batch, nil); err != nil {
		return 0, fmt.Errorf("partition %d: index invocations: %w", p.id, err)
	}
	return n, nil
}

// Status reads an invocation's status from the snapshot; nil if absent.
func (s *Snapshot) Status(id []byte) (*Status, error) {
	v, ok, err := s.get(s.p.statusKey(id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeStatus(v)
}

// EachStatus calls fn for every invocation status of the partition, in key order (keyID:
// by uuid, then partition key), without holding them all in memory (completed invocations
// are retained, so there can be many).
func (p *Partition) EachStatus(fn func(id []byte, st *Status) error) error {
	snap, err := p.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Release()
	return snap.EachStatus(func(id []byte, st *Status) (bool, error) { return true, fn(id, st) })
}

// VerifyIndexes checks that the status indexes hold exactly the entries the statuses call
// for (tests and diagnostics).
func (p *Partition) VerifyIndexes() error {
	want := map[string]bool{}
	err := p.EachStatus(func(id []byte, st *Status) error {
		if st.Phase == PhaseInvoked {
			want[string(p.key(tInvoked, id))] = true
		}
		if st.Phase != PhaseCompleted {
			want[string(p.activeKey(st.CreatedAt, id))] = true
		}
		want[string(p.createdKey(st.CreatedAt, id))] = true
		return nil
	})
	if err != nil {
		return err
	}
	for _, table := range []byte{tInvoked, tActive, tCreated} {
		it := p.db.NewIterator(prefixRange(p.key(table)), nil)
		for it.Next() {
			if !want[string(it.Key())] {
				it.Release()
				return fmt.Errorf("partition %d: index entry %q without a status that calls for it", p.id, it.Key())
			}
			delete(want, string(it.Key()))
		}
		it.Release()
		if err := it.Error(); err != nil {
			return err
		}
	}
	for k := range want {
		return fmt.Errorf("partition %d: index entry %q missing", p.id, k)
	}
	return nil
}
