package store

import (
	"encoding/json"
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
	LastFailure           string  `json:"lf,omitempty"`
}

// Exclusive reports whether the invocation must hold its object's lock to run.
func (s *Status) Exclusive() bool {
	return s.Target.HandlerType == "EXCLUSIVE" || s.Target.HandlerType == "WORKFLOW"
}

func (p *Partition) statusKey(id []byte) []byte { return p.key(tStatus, id) }

func decodeStatus(v []byte) (*Status, error) {
	s := &Status{}
	if err := json.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("decode invocation status: %w", err)
	}
	return s, nil
}

// Status reads an invocation's status; nil if absent.
func (t *Txn) Status(id []byte) (*Status, error) {
	v, ok, err := t.get(t.p.statusKey(id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeStatus(v)
}

// PutStatus writes an invocation's status, and keeps the index of invoked ones.
func (t *Txn) PutStatus(id []byte, s *Status) error {
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode invocation status: %w", err)
	}
	t.put(t.p.statusKey(id), v)
	if s.Phase == PhaseInvoked {
		t.put(t.p.key(tInvoked, id), []byte{})
	} else {
		t.del(t.p.key(tInvoked, id))
	}
	return nil
}

// DeleteStatus removes an invocation's status.
func (t *Txn) DeleteStatus(id []byte) {
	t.del(t.p.statusKey(id))
	t.del(t.p.key(tInvoked, id))
}

// InvokedPage returns up to n ids of invocations in PhaseInvoked, in key order, starting
// after the id after (nil: from the first). It reads only the invoked index, not the
// statuses of the completed invocations that are retained beside them. A store written
// before the index existed gets it built here, once.
func (p *Partition) InvokedPage(after []byte, n int) ([][]byte, error) {
	if err := p.buildInvokedIndex(); err != nil {
		return nil, err
	}
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

// buildInvokedIndex indexes the invoked statuses of a store that has no index yet, in one
// batch with the flag that says it is complete.
func (p *Partition) buildInvokedIndex() error {
	flag := p.key(tMeta, []byte{metaInvokedIndex})
	if _, ok, err := p.get(flag); err != nil || ok {
		return err
	}
	var batch leveldb.Batch
	err := p.EachStatus(func(id []byte, st *Status) error {
		if st.Phase == PhaseInvoked {
			batch.Put(p.key(tInvoked, id), []byte{})
		}
		return nil
	})
	if err != nil {
		return err
	}
	batch.Put(flag, []byte{1})
	if err := p.db.Write(&batch, nil); err != nil {
		return fmt.Errorf("partition %d: index invoked invocations: %w", p.id, err)
	}
	return nil
}

// Status reads an invocation's status from the snapshot; nil if absent.
func (s *Snapshot) Status(id []byte) (*Status, error) {
	v, ok, err := s.get(s.p.statusKey(id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeStatus(v)
}

// StatusEntry is one row of a status scan.
type StatusEntry struct {
	ID     []byte
	Status *Status
}

// EachStatus calls fn for every invocation status of the partition, in id order, without
// holding them all in memory (completed invocations are retained, so there can be many).
func (p *Partition) EachStatus(fn func(id []byte, st *Status) error) error {
	prefix := p.key(tStatus)
	it := p.db.NewIterator(prefixRange(prefix), nil)
	defer it.Release()
	for it.Next() {
		s, err := decodeStatus(it.Value())
		if err != nil {
			return fmt.Errorf("partition %d status %x: %w", p.id, it.Key()[len(prefix):], err)
		}
		if err := fn(append([]byte(nil), it.Key()[len(prefix):]...), s); err != nil {
			return err
		}
	}
	return it.Error()
}
