package processor

import (
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// Manage records: operator actions on an invocation (cancel, kill, purge, purge-journal,
// pause, resume).

// killedResult is what a killed invocation completes with.
var killedResult = store.Result{Failed: true, Code: 409, Message: "killed"}

func (a *applier) manage(m *logrecord.Manage) error {
	reply := func(o rpc.ManageOutcome) {
		if m.RequestID != 0 {
			a.emit(ActManageReply{RequestID: m.RequestID, Outcome: o})
		}
	}
	st, err := a.status(m.InvocationID)
	if err != nil {
		return err
	}
	if st == nil {
		reply(rpc.ManageNotFound)
		return nil
	}
	completed := st.Phase == store.PhaseCompleted
	purge := m.Op == logrecord.ManagePurge || m.Op == logrecord.ManagePurgeJournal
	if completed && !purge {
		reply(rpc.ManageCompleted) // nothing left to cancel, kill, pause or resume
		return nil
	}
	if !completed && purge {
		reply(rpc.ManageNotCompleted)
		return nil
	}
	switch m.Op {
	case logrecord.ManagePurge:
		// Purging a workflow's run frees its key: a new run starts from scratch.
		if err := a.dropCompleted(m.InvocationID, st); err != nil {
			return err
		}
	case logrecord.ManagePurgeJournal:
		if err := a.dropJournal(m.InvocationID, st); err != nil {
			return err
		}
	case logrecord.ManageCancel:
		started := st.Phase != store.PhaseScheduled && st.Phase != store.PhaseInboxed
		if err := a.signal(&logrecord.Signal{InvocationID: m.InvocationID, SignalID: protocol.CancelSignalID}); err != nil {
			return err
		}
		if started {
			reply(rpc.ManageAccepted)
			return nil
		}
	case logrecord.ManageResume:
		resume := st.Phase == store.PhasePaused
		switch st.Phase {
		case store.PhaseScheduled, store.PhaseInboxed:
			// Restate refuses it (425): there is nothing to resume yet. Only the answer
			// changed (it was "done"); the status never did.
			reply(rpc.ManageNotStarted)
			return nil
		case store.PhaseSuspended:
			// Restate runs a suspended invocation again at once (the attempt replays the
			// journal and finds what it waits for); the earlier rules left it suspended.
			if resume, err = a.rules(rulesManage); err != nil {
				return err
			}
		case store.PhaseInvoked:
			// Restate has an invocation that waits to retry try again at once.
			now, err := a.rules(rulesManage)
			if err != nil {
				return err
			}
			if now {
				a.emit(ActRetryNow{ID: m.InvocationID})
			}
		}
		if resume { // anything else is running already: nothing to do
			if st.Phase == store.PhaseSuspended {
				st.WaitingCompletions, st.WaitingSignals, st.WaitingNames = nil, nil, nil
			}
			st.Phase, st.ModifiedAt = store.PhaseInvoked, a.rec.Time
			a.emit(ActInvoke{ID: m.InvocationID})
			if err := a.putStatus(m.InvocationID, st); err != nil {
				return err
			}
		}
	case logrecord.ManagePause:
		switch st.Phase {
		case store.PhaseScheduled, store.PhaseInboxed:
			reply(rpc.ManageNotRunning)
			return nil
		case store.PhaseSuspended:
			// Restate leaves a suspended invocation as it is (and answers 200): what it
			// waits for still wakes it. The earlier rules paused it like a running one.
			left, err := a.rules(rulesManage)
			if err != nil {
				return err
			}
			if left {
				break
			}
			fallthrough
		case store.PhaseInvoked:
			if err := a.pausedEvent(m.InvocationID, st); err != nil {
				return err
			}
			a.emit(ActAbort{ID: m.InvocationID, Pause: true})
			st.Attempt++ // whatever the aborted run still logs is dropped
			st.Phase, st.ModifiedAt = store.PhasePaused, a.rec.Time
			st.WaitingCompletions, st.WaitingSignals, st.WaitingNames = nil, nil, nil
			if err := a.putStatus(m.InvocationID, st); err != nil {
				return err
			}
			reply(rpc.ManageAccepted) // the SDK's run is aborted asynchronously
			return nil
		}
	case logrecord.ManageKill:
		a.emit(ActAbort{ID: m.InvocationID})
		if err := a.killChildren(m.InvocationID, st); err != nil {
			return err
		}
		if st.Phase == store.PhaseScheduled || st.Phase == store.PhaseInboxed {
			// Never started: callers get "killed" and, as when cancelled, nothing is kept.
			freed, err := a.rules(rulesCallee)
			if err != nil {
				return err
			}
			if freed {
				st.CompletionRetentionMs, st.JournalRetentionMs = 0, 0
			}
		}
		if err := a.complete(m.InvocationID, st, killedResult); err != nil {
			return err
		}
	}
	reply(rpc.ManageDone)
	return nil
}

// killChildren kills the callees an invocation still waits for: without the SDK there is
// nobody to cancel them, and nobody would ever read their results. By rulesCallee it also
// kills what the invocation sent, as Restate does (a callee that completed ignores it).
func (a *applier) killChildren(id []byte, st *store.Status) error {
	sends, err := a.rules(rulesCallee)
	if err != nil {
		return err
	}
	for idx := uint32(0); idx < st.JournalLen; idx++ {
		e, ok, err := a.txn.JournalEntry(id, idx)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		var idIdx uint32
		switch protocol.MessageType(e.Type) {
		case protocol.CallCommandType:
			c := &protocol.CallCommand{}
			if c.Unmarshal(e.Payload) != nil {
				continue
			}
			if done, err := a.txn.Notified(id, store.NotifyCompletion, store.CompletionIdent(c.ResultCompletionID)); err != nil || done {
				if err != nil {
					return err
				}
				continue
			}
			idIdx = c.InvocationIDNotificationIdx
		case protocol.OneWayCallCommandType:
			c := &protocol.OneWayCallCommand{}
			if !sends || c.Unmarshal(e.Payload) != nil {
				continue
			}
			idIdx = c.InvocationIDNotificationIdx
		default:
			continue
		}
		callee, err := a.calleeOf(id, idIdx)
		if err != nil {
			return err
		}
		if callee == nil {
			if !sends {
				return nil // the earlier rules stopped at the first callee not found
			}
			continue
		}
		kill := &logrecord.Manage{InvocationID: callee.Bytes(), Op: logrecord.ManageKill}
		if err := a.route(callee.PartitionKey, &logrecord.Record{Kind: logrecord.KindManage, Time: a.rec.Time, Manage: kill}); err != nil {
			return err
		}
	}
	return nil
}

// calleeOf finds the callee id that a CallInvocationId notification recorded.
func (a *applier) calleeOf(id []byte, idIdx uint32) (*ids.InvocationID, error) {
	v, ok, err := a.txn.NotifiedIndex(id, store.NotifyCompletion, store.CompletionIdent(idIdx))
	if err != nil || !ok {
		return nil, err
	}
	e, ok, err := a.txn.JournalEntry(id, v)
	if err != nil || !ok {
		return nil, err
	}
	n := &protocol.Notification{}
	if n.Unmarshal(e.Payload) != nil || n.Result != protocol.ResultInvocationID {
		return nil, nil
	}
	callee, err := ids.ParseInvocationID(n.InvocationID)
	if err != nil {
		return nil, nil
	}
	return &callee, nil
}
