// Package logrecord owns the records written to partition logs. Every state change of a
// partition is one of these records; the partition processor applies them in LSN order.
// Kind values are stable on-disk codes: append new ones, never reuse or renumber.
package logrecord

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Kind identifies a record type. Stored on disk: never renumber.
type Kind uint8

const (
	KindAnnounceLeader   Kind = 1
	KindInvoke           Kind = 2
	KindInvokerEffect    Kind = 3
	KindTimerFired       Kind = 4
	KindInvocationResult Kind = 5
	KindTruncateOutbox   Kind = 6
	KindSignal           Kind = 7
	KindManage           Kind = 8
	KindAttach           Kind = 9
	// KindExpire drops the retained data of completed invocations whose retention ended at
	// or before the record's Time (a bounded batch per record; it has no body).
	KindExpire Kind = 10
	// KindBinaryFormat has no body and changes nothing. Writers put it, in JSON, in front
	// of the first binary records they append to a log (a leader when its term starts, a
	// shuffler before its first delivery to each partition): a node of a version before
	// the binary encoding stops at it as a kind it does not know, instead of skipping the
	// binary records after it as undecodable bytes and diverging.
	KindBinaryFormat Kind = 11
	// KindTraceFormat is the marker of the second binary encoding (entries may carry a
	// trace context): it replaces KindBinaryFormat in front of a writer's records, so that
	// nodes of the versions that know only the first encoding stop at it too.
	KindTraceFormat Kind = 12
	// KindPatchState replaces the whole state of a virtual object or workflow (the admin
	// API's POST /services/{name}/state).
	KindPatchState Kind = 13
	// KindCalleeFormat is the marker of the third binary encoding (call entries carry the
	// uuid of their callee, Entry.CallUUID). It replaces KindTraceFormat in front of a
	// writer's records. Applying it also switches the partition to the apply rules that
	// came with it (see the processor's rules), so that replicas that applied the records
	// before it with the earlier rules, and those that apply them now, agree.
	KindCalleeFormat Kind = 14
	// KindManageFormat has the encoding of KindCalleeFormat and replaces it in front of a
	// writer's records: it only switches the partition to newer apply rules (operator
	// actions and modification times as Restate applies them; see the processor's rules).
	// Nodes of the versions before it stop at it as a kind they do not know, instead of
	// applying the records after it by the earlier rules.
	KindManageFormat Kind = 15
	// KindRestartAsNew starts a completed invocation again under a new id with a prefix of
	// its journal (the admin API's restart-as-new). A new kind rather than a new meaning of
	// an old one: nodes of the versions before it stop at it as a kind they do not know, and
	// what it writes to the store (a status, journal entries) is what they read already.
	KindRestartAsNew Kind = 16
	// KindJournalEvent records an event of an invocation's attempts beside its journal (a
	// retryable failure, a pause after the retries ran out), as sys_journal_events shows
	// them. The leader's invoker proposes it; the apply decides whether it is stored (see
	// the processor's dedup rule), so every replica stores the same events.
	KindJournalEvent Kind = 17
	// KindEventsFormat has the encoding of KindManageFormat and replaces it in front of a
	// writer's records: it switches the partition to the apply rules that store journal
	// events (a manual pause records one). Nodes of the versions before it stop at it.
	KindEventsFormat Kind = 18
)

// FormatMarker is the newest marker (KindEventsFormat), in JSON so that every version
// reads it.
func FormatMarker() []byte { return []byte(`{"k":18,"t":0}`) }

// Dedup identifies a record sent by another partition's shuffler, so the target drops
// duplicates after a resend.
type Dedup struct {
	Producer uint32 `json:"p"`
	Seq      uint64 `json:"s"`
}

// Record is one entry of a partition log.
type Record struct {
	Kind Kind `json:"k"`
	// Epoch is the leader epoch of the appender; records of a superseded epoch are ignored.
	Epoch uint64 `json:"e,omitempty"`
	// Time is the appender's wall clock in ms since the Unix epoch. Apply uses it as "now"
	// so that every replica computes the same state.
	Time  int64  `json:"t"`
	Dedup *Dedup `json:"d,omitempty"`

	AnnounceLeader   *AnnounceLeader   `json:"al,omitempty"`
	Invoke           *Invoke           `json:"inv,omitempty"`
	InvokerEffect    *InvokerEffect    `json:"ie,omitempty"`
	TimerFired       *TimerFired       `json:"tf,omitempty"`
	InvocationResult *InvocationResult `json:"ir,omitempty"`
	TruncateOutbox   *TruncateOutbox   `json:"to,omitempty"`
	Signal           *Signal           `json:"sg,omitempty"`
	Manage           *Manage           `json:"mg,omitempty"`
	Attach           *Attach           `json:"at,omitempty"`
	PatchState       *PatchState       `json:"ps,omitempty"`
	RestartAsNew     *RestartAsNew     `json:"ra,omitempty"`
	JournalEvent     *JournalEvent     `json:"je,omitempty"`
}

// EventType is the type of a journal event, as Restate numbers them. Stored: never renumber.
type EventType uint8

const (
	EventTransientError EventType = 1
	EventPaused         EventType = 2
)

// JournalEvent is an event of an invocation's attempts, proposed by the leader's invoker.
type JournalEvent struct {
	InvocationID []byte    `json:"id"`
	Type         EventType `json:"ty"`
	// Attempt is the status's attempt number when the run that failed started: an event of
	// a run that no longer matters (the invocation was paused, resumed or completed since)
	// is dropped.
	Attempt uint32 `json:"at,omitempty"`
	// Failure is the attempt's failure: the error of a TransientError, the last failure of
	// a Paused event (nil when it had none).
	Failure *EventFailure `json:"f,omitempty"`
}

// EventFailure is a failure as journal events keep it: the error an attempt ended with and
// the command the SDK related it to, each optional part nil or "" when absent.
type EventFailure struct {
	Code       uint32 `json:"c"`
	Message    string `json:"m,omitempty"`
	Stacktrace string `json:"st,omitempty"`
	// DocCode is the code of Restate's error catalogue (RT0007), "" for none.
	DocCode      string  `json:"dc,omitempty"`
	RelatedIndex *uint32 `json:"ri,omitempty"`
	RelatedName  *string `json:"rn,omitempty"`
	// RelatedType is the related command's message type code (protocol.MessageType).
	RelatedType *uint32 `json:"rt,omitempty"`
}

// SameAs reports whether f and o are the same failure for deduplication: the code, the
// message and the related command agree (the stacktrace and catalogue code may differ).
func (f *EventFailure) SameAs(o *EventFailure) bool {
	if f == nil || o == nil {
		return f == o
	}
	return f.Code == o.Code && f.Message == o.Message && eqPtr(f.RelatedIndex, o.RelatedIndex) &&
		eqPtr(f.RelatedName, o.RelatedName) && eqPtr(f.RelatedType, o.RelatedType)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// RestartAsNew starts the completed invocation InvocationID again as NewInvocationID, as
// Restate's restart-as-new does: the new invocation gets the entries 0..From of the old
// journal (From included: commands, notifications and all) and, from the entries after
// them, the notifications that complete the copied commands, and runs on the deployment the
// old one was pinned to, or on DeploymentID. The apply checks the old invocation's status
// again and copies from its own store, so every replica builds the same journal; the
// leader checked the rest (the protocol version, the deployment, that every copied command
// has its completions) before it appended the record.
type RestartAsNew struct {
	InvocationID    []byte `json:"id"`
	NewInvocationID []byte `json:"new"`
	From            uint32 `json:"from,omitempty"`
	// DeploymentID, if set, replaces the deployment the restarted invocation was pinned to
	// (an invocation that was never pinned stays unpinned); "" keeps it.
	DeploymentID string `json:"dp,omitempty"`
	// RequestID identifies the admin request waiting on the leader that appended the
	// record, so the apply can answer it; 0 when none waits.
	RequestID uint64 `json:"r,omitempty"`
}

// PatchState replaces an object's state by State, applied once no invocation holds the
// object's lock (it waits in the object's inbox otherwise).
type PatchState struct {
	Service string `json:"s"`
	Key     string `json:"k"`
	// Version, if set, is the version of the state the operator read (see Restate's state
	// mutation version); the patch is dropped when the state at apply time has another.
	Version *string `json:"v,omitempty"`
	// State is the new state, every entry of it: entries it does not name are removed.
	State []StateEntry `json:"st,omitempty"`
}

// StateEntry is one key/value of an object's state.
type StateEntry struct {
	Key   []byte `json:"k"`
	Value []byte `json:"v"`
}

// Attach asks for an invocation's result on behalf of another invocation (the
// AttachInvocation and GetInvocationOutput commands).
type Attach struct {
	InvocationID []byte `json:"id"` // the invocation whose result is wanted
	Caller       Caller `json:"c"`
	// Wait until completion (attach); otherwise answer void while it runs (output).
	Wait bool `json:"w,omitempty"`
}

// Signal adds a signal notification to an invocation's journal: the cancel signal (1), an
// awakeable completion (17 and up) or a named signal.
type Signal struct {
	InvocationID []byte `json:"id"`
	SignalID     uint32 `json:"s,omitempty"`
	SignalName   string `json:"n,omitempty"`
	Value        []byte `json:"v,omitempty"`
	Failed       bool   `json:"f,omitempty"`
	FailureCode  uint32 `json:"fc,omitempty"`
	FailureMsg   string `json:"fm,omitempty"`
}

// ManageOp is an operator action on an invocation.
type ManageOp string

const (
	ManageCancel ManageOp = "cancel"
	ManageKill   ManageOp = "kill"
	ManagePurge  ManageOp = "purge"
	ManageResume ManageOp = "resume"
	ManagePause  ManageOp = "pause"
	// ManagePurgeJournal drops a completed invocation's journal, keeping its status and
	// result. Newer than the others: a processor that predates it leaves the journal in
	// place, so every worker must run a version that knows it before it is used.
	ManagePurgeJournal ManageOp = "purge-journal"
)

// Manage applies an operator action (admin API) to an invocation.
type Manage struct {
	InvocationID []byte   `json:"id"`
	Op           ManageOp `json:"op"`
	RequestID    uint64   `json:"r,omitempty"`
}

// AnnounceLeader starts a leader's term.
type AnnounceLeader struct {
	NodeID uint32 `json:"n"`
	// Node is the leader's node name (absent in records written before it was added).
	Node string `json:"node,omitempty"`
}

// Header is one header of an invocation's input.
type Header struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Target names the handler an invocation runs.
type Target struct {
	Service     string `json:"s"`
	Handler     string `json:"h"`
	Key         string `json:"k,omitempty"`
	ServiceType string `json:"st"`
	HandlerType string `json:"ht,omitempty"`
}

// Caller is the invocation waiting for a call's result.
type Caller struct {
	InvocationID []byte `json:"id"`
	CompletionID uint32 `json:"c"`
	// NotificationType is the notification the result arrives as (0 = CallCompletion).
	NotificationType uint16 `json:"nt,omitempty"`
}

// Invoke creates an invocation (or, for a known id, attaches to it).
type Invoke struct {
	InvocationID   []byte   `json:"id"`
	Target         Target   `json:"t"`
	Input          []byte   `json:"i,omitempty"`
	Headers        []Header `json:"h,omitempty"`
	IdempotencyKey string   `json:"ik,omitempty"`
	// RequestID identifies the ingress request on the leader that appended the record, so the
	// apply can answer it; 0 when no ingress request waits.
	RequestID uint64  `json:"r,omitempty"`
	Send      bool    `json:"snd,omitempty"`
	Caller    *Caller `json:"c,omitempty"`
	// ExecutionTime (ms) delays the start.
	ExecutionTime int64 `json:"x,omitempty"`
	// CompletionRetentionMs keeps the status and result after completion; JournalRetentionMs
	// keeps the journal too (at most as long as the status).
	CompletionRetentionMs int64 `json:"cr,omitempty"`
	JournalRetentionMs    int64 `json:"jr,omitempty"`
	// InvokedBy is the invocation id string of the caller for introspection ("" = ingress),
	// or InvokedByRestart and the id of the invocation that restart-as-new restarted.
	InvokedBy string `json:"by,omitempty"`
}

// InvokedByRestart starts the InvokedBy of an invocation that restart-as-new created; the id
// of the restarted invocation follows. Introspection shows it as Restate does: invoked_by
// "restart_as_new" and restarted_from.
const InvokedByRestart = "restart_as_new:"

// Entry is one journal entry exactly as the service protocol frames it.
type Entry struct {
	Type    uint16 `json:"t"`
	Flags   uint16 `json:"f,omitempty"`
	Payload []byte `json:"p,omitempty"`
	// CallTarget is the callee of a Call/OneWayCall command, resolved against the schema by
	// the invoker before the entry is logged, so that apply needs no schema.
	CallTarget *Target `json:"ct,omitempty"`
	// CallRetention is the callee's retention, also resolved by the invoker.
	CallRetention *Retention `json:"cr,omitempty"`
	// TraceParent and TraceState are the W3C trace context that the callee of a call or
	// send continues (the caller's attempt span with tracing on, else the caller's own), set
	// by the invoker; apply gives them to the callee as its traceparent and tracestate.
	TraceParent string `json:"tp,omitempty"`
	TraceState  string `json:"ts,omitempty"`
	// CallUUID is the uuid of a call's or send's callee, chosen at random by the invoker
	// (as Restate does), so that a run of a workflow or idempotent request that reuses its
	// id after an earlier one does not reach the earlier run's callees. Absent in records of
	// earlier versions, whose callees are derived from the caller.
	CallUUID []byte `json:"cu,omitempty"`
}

// Retention says how long a completed invocation keeps its status (result) and journal.
type Retention struct {
	CompletionMs int64 `json:"c,omitempty"`
	JournalMs    int64 `json:"j,omitempty"`
}

// EffectKind is what an invoker effect does besides adding journal entries.
type EffectKind uint8

const (
	EffectEntries EffectKind = 0 // only journal entries
	EffectSuspend EffectKind = 1
	EffectEnd     EffectKind = 2
	EffectPause   EffectKind = 3
	EffectFail    EffectKind = 4 // terminal failure decided by the runtime (e.g. retries exhausted with Kill)
)

// InvokerEffect carries what an invocation attempt produced.
type InvokerEffect struct {
	InvocationID []byte     `json:"id"`
	Entries      []Entry    `json:"en,omitempty"`
	Kind         EffectKind `json:"k,omitempty"`
	// Suspension: resume when any of these has a notification.
	WaitingCompletions []uint32 `json:"wc,omitempty"`
	WaitingSignals     []uint32 `json:"ws,omitempty"`
	WaitingNames       []string `json:"wn,omitempty"`
	// Failure for EffectFail. Earlier versions put the last attempt's error on an
	// EffectPause too; the invoker no longer does (nobody shows it).
	FailureCode    uint32 `json:"fc,omitempty"`
	FailureMessage string `json:"fm,omitempty"`
	// Attempt is the status's attempt number when the run that produced this effect started.
	Attempt uint32 `json:"at,omitempty"`
	// DeploymentID and ProtocolVersion pin the invocation on its first effect.
	DeploymentID    string `json:"dp,omitempty"`
	ProtocolVersion uint32 `json:"pv,omitempty"`
}

// TimerKind says what a timer does when it fires.
type TimerKind uint8

const (
	TimerSleep   TimerKind = 1 // complete a Sleep command
	TimerStart   TimerKind = 2 // start a delayed invocation
	TimerCleanup TimerKind = 3 // drop a completed invocation after its retention
)

// TimerFired fires a durable timer.
type TimerFired struct {
	InvocationID []byte    `json:"id"`
	Kind         TimerKind `json:"k"`
	CompletionID uint32    `json:"c,omitempty"`
	WakeAt       int64     `json:"w"`
	// InvocationCreatedAt ties the timer to one life of the invocation: deterministic ids
	// (idempotency keys, workflows) are reused after retention, and an old timer must not
	// fire into the new invocation.
	InvocationCreatedAt int64 `json:"ic,omitempty"`
}

// InvocationResult delivers a callee's result to a waiting caller.
type InvocationResult struct {
	InvocationID []byte `json:"id"` // the caller
	CompletionID uint32 `json:"c"`
	Value        []byte `json:"v,omitempty"`
	Failed       bool   `json:"f,omitempty"`
	FailureCode  uint32 `json:"fc,omitempty"`
	FailureMsg   string `json:"fm,omitempty"`
	// NotificationType is the notification the result arrives as (0 = CallCompletion).
	NotificationType uint16 `json:"nt,omitempty"`
	// Void answers "no result yet" (GetInvocationOutput of a running invocation).
	Void bool `json:"vo,omitempty"`
}

// TruncateOutbox drops outbox messages up to and including Seq once the shuffler has
// delivered them.
type TruncateOutbox struct {
	Seq uint64 `json:"s"`
}

// Encode serialises a record for the log, in the binary encoding (binary.go).
func Encode(r *Record) ([]byte, error) {
	return encodeBinary(r)
}

// EncodeJSON serialises a record as versions before the binary encoding did (tests of
// logs written then, and readable renderings).
func EncodeJSON(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record kind %d: %w", r.Kind, err)
	}
	return b, nil
}

// ErrUnknownKind is a record of a kind this version does not know: written by a newer
// version. A replica must stop rather than skip it (it would diverge from replicas that
// apply it).
var ErrUnknownKind = errors.New("decode record: unknown record kind")

// Decode decodes and checks a record. An error wrapping ErrUnknownKind means a newer
// version wrote it; any other error means the bytes are not a record.
func Decode(b []byte) (*Record, error) {
	if len(b) > 0 && (b[0] == binaryV1 || b[0] == binaryV2 || b[0] == binaryV3) {
		r, err := decodeBinary(b)
		if err != nil {
			return nil, err
		}
		if err := r.validate(); err != nil {
			return nil, err
		}
		return r, nil
	}
	r := &Record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Record) validate() error {
	var ok bool
	switch r.Kind {
	case KindAnnounceLeader:
		ok = r.AnnounceLeader != nil
	case KindInvoke:
		ok = r.Invoke != nil && len(r.Invoke.InvocationID) == 24
	case KindInvokerEffect:
		ok = r.InvokerEffect != nil && len(r.InvokerEffect.InvocationID) == 24
	case KindTimerFired:
		ok = r.TimerFired != nil && len(r.TimerFired.InvocationID) == 24
	case KindInvocationResult:
		ok = r.InvocationResult != nil && len(r.InvocationResult.InvocationID) == 24
	case KindTruncateOutbox:
		ok = r.TruncateOutbox != nil
	case KindSignal:
		ok = r.Signal != nil && len(r.Signal.InvocationID) == 24
	case KindManage:
		ok = r.Manage != nil && len(r.Manage.InvocationID) == 24
	case KindAttach:
		ok = r.Attach != nil && len(r.Attach.InvocationID) == 24 && len(r.Attach.Caller.InvocationID) == 24
	case KindPatchState:
		ok = r.PatchState != nil && r.PatchState.Service != ""
	case KindRestartAsNew:
		ok = r.RestartAsNew != nil && len(r.RestartAsNew.InvocationID) == 24 && len(r.RestartAsNew.NewInvocationID) == 24
	case KindJournalEvent:
		ok = r.JournalEvent != nil && len(r.JournalEvent.InvocationID) == 24 &&
			(r.JournalEvent.Type == EventPaused || r.JournalEvent.Type == EventTransientError && r.JournalEvent.Failure != nil)
	case KindExpire:
		ok = true // no body: the record's Time says what is due
	case KindBinaryFormat, KindTraceFormat, KindCalleeFormat, KindManageFormat, KindEventsFormat:
		ok = true
	default:
		return fmt.Errorf("%w %d", ErrUnknownKind, r.Kind)
	}
	if !ok {
		return fmt.Errorf("decode record: kind %d without a valid body", r.Kind)
	}
	return nil
}
