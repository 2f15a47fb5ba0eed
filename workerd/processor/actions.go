package processor

import (
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// Action is a side effect that applying a record asks of the partition leader. Followers
// discard actions; a new leader re-derives pending ones from the store.
type Action interface{ isAction() }

// ActInvoke starts (or resumes) an attempt of an invocation.
type ActInvoke struct{ ID []byte }

// ActNotify hands a notification just added to an invocation's journal to its running attempt.
type ActNotify struct {
	ID    []byte
	Index uint32
	Entry store.JournalEntry
}

// ActCompleted tells the ingress callers waiting on an invocation its result.
type ActCompleted struct {
	ID     []byte
	Result store.Result
	// For the processing-latency metric: the target, and the time from creation to
	// completion (record times, ms).
	Service, Handler string
	Millis           int64
}

// ActReply answers the ingress request that appended an Invoke record.
type ActReply struct {
	RequestID uint64
	Response  rpc.InvokeResponse
}

// ActTimer registers a durable timer with the leader's timer service.
type ActTimer struct{ Timer *logrecord.TimerFired }

// ActOutbox tells the shuffler that the outbox has a new message: Seq, for partition To.
type ActOutbox struct {
	Seq uint64
	To  uint32
}

// ActAbort stops the running attempt of a killed invocation and its retries; Pause says the
// invocation was paused instead: the invoker keeps what it knows of its attempts for
// introspection (Invoker.Pause).
type ActAbort struct {
	ID    []byte
	Pause bool
}

// ActRetryNow cuts short the wait of an invocation backing off before its next attempt (an
// operator resumed it).
type ActRetryNow struct{ ID []byte }

// ActManageReply answers the admin request that appended a Manage record.
type ActManageReply struct {
	RequestID uint64
	Outcome   rpc.ManageOutcome
}

// ActRestartReply answers the admin request that appended a RestartAsNew record.
type ActRestartReply struct {
	RequestID uint64
	Outcome   rpc.RestartOutcome
}

// ActAnnounced reports that a leader's announcement raised the partition's epoch: a
// leader of another epoch is deposed.
type ActAnnounced struct {
	Epoch uint64
	Node  string
}

func (ActInvoke) isAction()       {}
func (ActAnnounced) isAction()    {}
func (ActNotify) isAction()       {}
func (ActCompleted) isAction()    {}
func (ActReply) isAction()        {}
func (ActTimer) isAction()        {}
func (ActOutbox) isAction()       {}
func (ActAbort) isAction()        {}
func (ActRetryNow) isAction()     {}
func (ActManageReply) isAction()  {}
func (ActRestartReply) isAction() {}
