package processor

import (
	"bytes"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// Invoke records and the life of an invocation: creation, idempotent repeats, the object
// lock and its inbox, completion, and expiry of what completed invocations retain.

const workflowAlreadyInvoked = "the workflow method was already invoked"

func (a *applier) invoke(inv *logrecord.Invoke) error {
	id := inv.InvocationID
	st, err := a.status(id)
	if err != nil {
		return err
	}
	if st != nil {
		return a.invokeExisting(inv, st)
	}
	st = &store.Status{
		Target:                inv.Target,
		IdempotencyKey:        inv.IdempotencyKey,
		InvokedBy:             inv.InvokedBy,
		CreatedAt:             a.rec.Time,
		ModifiedAt:            a.rec.Time,
		CompletionRetentionMs: inv.CompletionRetentionMs,
		JournalRetentionMs:    min(inv.JournalRetentionMs, inv.CompletionRetentionMs),
	}
	if inv.Caller != nil {
		st.Callers = append(st.Callers, *inv.Caller)
	}
	input := &protocol.InputCommand{Value: protocol.NewValue(inv.Input)}
	for _, h := range inv.Headers {
		input.Headers = append(input.Headers, protocol.Header{Key: h.Key, Value: h.Value})
	}
	a.txn.PutJournalEntry(id, 0, store.JournalEntry{Type: uint16(protocol.InputCommandType), Payload: input.Marshal(), AppendedAt: a.rec.Time})
	st.JournalLen, st.CommandCount = 1, 1
	if inv.Send && inv.RequestID != 0 {
		resp := rpc.InvokeResponse{InvocationID: id, SendStatus: rpc.SendAccepted}
		if inv.ExecutionTime > a.rec.Time {
			resp.ExecutionTime = msTime(inv.ExecutionTime)
		}
		a.emit(ActReply{RequestID: inv.RequestID, Response: resp})
	}
	if inv.ExecutionTime > a.rec.Time {
		st.Phase, st.ScheduledAt = store.PhaseScheduled, a.rec.Time
		st.ExecutionTime = inv.ExecutionTime
		if err := a.addTimer(&logrecord.TimerFired{InvocationID: id, Kind: logrecord.TimerStart, WakeAt: inv.ExecutionTime, InvocationCreatedAt: a.rec.Time}); err != nil {
			return err
		}
		return a.putStatus(id, st)
	}
	return a.start(id, st)
}

// invokeExisting handles an Invoke for an id that already exists: idempotent retries,
// repeated workflow runs, or a one-way send repeated with its idempotency key.
func (a *applier) invokeExisting(inv *logrecord.Invoke, st *store.Status) error {
	id := inv.InvocationID
	workflowRun := st.Target.HandlerType == "WORKFLOW"
	if inv.Send {
		if inv.RequestID != 0 {
			// The time the first send scheduled it for, as Restate answers, not this one's.
			resp := rpc.InvokeResponse{InvocationID: id, SendStatus: rpc.SendPreviouslyAccepted}
			if st.ExecutionTime > 0 {
				resp.ExecutionTime = msTime(st.ExecutionTime)
			}
			a.emit(ActReply{RequestID: inv.RequestID, Response: resp})
		}
		return nil
	}
	if workflowRun {
		res := store.Result{Failed: true, Code: 409, Message: workflowAlreadyInvoked}
		if inv.Caller != nil {
			return a.deliver(*inv.Caller, res)
		}
		if inv.RequestID != 0 {
			a.emit(ActReply{RequestID: inv.RequestID, Response: responseOf(id, res, 0)})
		}
		return nil
	}
	if st.Phase == store.PhaseCompleted {
		if inv.Caller != nil {
			return a.deliver(*inv.Caller, *st.Result)
		}
		if inv.RequestID != 0 {
			a.emit(ActReply{RequestID: inv.RequestID, Response: responseOf(id, *st.Result, st.CompletedAt+st.CompletionRetentionMs)})
		}
		return nil
	}
	// Still running: the caller waits for the same result.
	if inv.Caller != nil {
		for _, c := range st.Callers {
			if bytes.Equal(c.InvocationID, inv.Caller.InvocationID) && c.CompletionID == inv.Caller.CompletionID {
				return nil
			}
		}
		st.Callers = append(st.Callers, *inv.Caller)
		if err := a.touch(st); err != nil {
			return err
		}
		return a.putStatus(id, st)
	}
	return nil // ingress callers wait on ActCompleted for this id
}

// start runs an invocation now, or queues it behind its object's lock.
func (a *applier) start(id []byte, st *store.Status) error {
	st.ModifiedAt = a.rec.Time
	if st.Exclusive() {
		holder, err := a.txn.Lock(st.Target.Service, st.Target.Key)
		if err != nil {
			return err
		}
		if holder != nil {
			seq, err := a.txn.PushInbox(st.Target.Service, st.Target.Key, id)
			if err != nil {
				return err
			}
			st.Phase, st.InboxSeq, st.InboxedAt = store.PhaseInboxed, seq, a.rec.Time
			return a.putStatus(id, st)
		}
		a.txn.SetLock(st.Target.Service, st.Target.Key, id)
	}
	st.Phase = store.PhaseInvoked
	if st.RunningAt == 0 {
		st.RunningAt = a.rec.Time
	}
	a.emit(ActInvoke{ID: id})
	return a.putStatus(id, st)
}

// complete ends an invocation: answers its callers, frees its object's lock for the next
// queued invocation and keeps the result only as long as its retention says.
func (a *applier) complete(id []byte, st *store.Status, res store.Result) error {
	for _, c := range st.Callers {
		if err := a.deliver(c, res); err != nil {
			return err
		}
	}
	var expires int64
	if st.CompletionRetentionMs > 0 {
		expires = a.rec.Time + st.CompletionRetentionMs
	}
	a.emit(ActCompleted{ID: id, Result: res, Service: st.Target.Service, Handler: st.Target.Handler, Millis: a.rec.Time - st.CreatedAt})
	if st.Exclusive() {
		switch holder, err := a.txn.Lock(st.Target.Service, st.Target.Key); {
		case err != nil:
			return err
		case bytes.Equal(holder, id):
			a.txn.ReleaseLock(st.Target.Service, st.Target.Key)
			if err := a.startNextInInbox(st.Target.Service, st.Target.Key); err != nil {
				return err
			}
		case st.Phase == store.PhaseInboxed:
			// Cancelled or killed while queued: leave the lock to its holder.
			a.txn.DeleteInboxEntry(st.Target.Service, st.Target.Key, st.InboxSeq)
		}
	}
	keepJournal := expires != 0 && st.JournalRetentionMs > 0
	if !keepJournal {
		if err := a.txn.DeleteJournal(id, st.JournalLen); err != nil {
			return err
		}
	}
	if expires == 0 {
		a.deleteStatus(id)
		return nil
	}
	done := &store.Status{
		Phase: store.PhaseCompleted, Target: st.Target, IdempotencyKey: st.IdempotencyKey,
		InvokedBy: st.InvokedBy, CreatedAt: st.CreatedAt, ModifiedAt: a.rec.Time,
		CompletedAt: a.rec.Time, CompletionRetentionMs: st.CompletionRetentionMs, Result: &res,
		DeploymentID: st.DeploymentID, ProtocolVersion: st.ProtocolVersion,
		InboxedAt: st.InboxedAt, ScheduledAt: st.ScheduledAt, RunningAt: st.RunningAt,
	}
	a.txn.PutExpiry(store.Expiry{At: expires, ID: id, Kind: store.ExpireStatus})
	if keepJournal {
		done.JournalRetentionMs, done.JournalLen, done.CommandCount = st.JournalRetentionMs, st.JournalLen, st.CommandCount
		if st.JournalRetentionMs < st.CompletionRetentionMs {
			a.txn.PutExpiry(store.Expiry{At: a.rec.Time + st.JournalRetentionMs, ID: id, Kind: store.ExpireJournal})
		}
	}
	*st = *done
	return a.putStatus(id, st)
}

// expireBatch bounds the work of one Expire record, so that a backlog of expired invocations
// (after downtime) is worked off in many small batches rather than one huge one.
const expireBatch = 500

// expire drops the retained data of completed invocations whose retention ended by the
// record's time. An index entry whose invocation has since been purged or re-created (ids of
// idempotent calls and workflows are deterministic) no longer matches its status and is just
// removed.
func (a *applier) expire() error {
	due, err := a.txn.DueExpiries(a.rec.Time, expireBatch)
	if err != nil {
		return err
	}
	for _, e := range due {
		a.txn.DeleteExpiry(e)
		st, err := a.status(e.ID)
		if err != nil {
			return err
		}
		if st == nil || st.Phase != store.PhaseCompleted {
			continue
		}
		switch e.Kind {
		case store.ExpireJournal:
			if st.JournalLen == 0 || st.CompletedAt+st.JournalRetentionMs != e.At {
				continue
			}
			if err := a.dropJournal(e.ID, st); err != nil {
				return err
			}
		case store.ExpireStatus:
			if st.CompletedAt+st.CompletionRetentionMs != e.At {
				continue
			}
			if err := a.dropCompleted(e.ID, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropJournal deletes a completed invocation's retained journal and keeps its status and
// result. The length goes to zero so that nothing reads or deletes the journal again; the
// journal retention stays, as Restate shows it after a purge-journal.
func (a *applier) dropJournal(id []byte, st *store.Status) error {
	if st.JournalLen == 0 {
		return nil
	}
	if err := a.txn.DeleteJournal(id, st.JournalLen); err != nil {
		return err
	}
	st.JournalLen, st.CommandCount = 0, 0
	return a.putStatus(id, st)
}

// dropCompleted deletes a completed invocation with its retained journal. A workflow run
// takes its promises and state along, so its key starts over.
func (a *applier) dropCompleted(id []byte, st *store.Status) error {
	if err := a.txn.DeleteJournal(id, st.JournalLen); err != nil {
		return err
	}
	a.deleteStatus(id)
	if st.Target.HandlerType != "WORKFLOW" {
		return nil
	}
	if err := a.txn.DeletePromises(st.Target.Service, st.Target.Key); err != nil {
		return err
	}
	return a.txn.ClearAllState(st.Target.Service, st.Target.Key)
}

// startNextInInbox hands a free object lock to the oldest invocation still waiting for it.
func (a *applier) startNextInInbox(service, key string) error {
	for {
		next, err := a.txn.PopInbox(service, key)
		if err != nil || next == nil {
			return err
		}
		patch, err := store.InboxPatch(next)
		if err != nil {
			return err
		}
		if patch != nil {
			if err := a.applyPatch(patch); err != nil {
				return err
			}
			continue
		}
		nst, err := a.status(next)
		if err != nil {
			return err
		}
		if nst != nil && nst.Phase == store.PhaseInboxed {
			nst.InboxSeq = 0
			return a.start(next, nst)
		}
	}
}
