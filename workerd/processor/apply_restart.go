package processor

import (
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// RestartAsNew records: a completed invocation runs again under a new id with a prefix of
// its journal, which its handler replays (the admin API's restart-as-new, as
// restate-server 1.7.12 does it). The leader checked what needs the schema or may refuse
// the request (restart.go); the apply checks the old invocation's status again, since it
// may have changed in between, and copies the journal from its own store.

func (a *applier) restartAsNew(r *logrecord.RestartAsNew) error {
	reply := func(o rpc.RestartOutcome) {
		if r.RequestID != 0 {
			a.emit(ActRestartReply{RequestID: r.RequestID, Outcome: o})
		}
	}
	old, err := a.status(r.InvocationID)
	if err != nil {
		return err
	}
	switch {
	case old == nil:
		reply(rpc.RestartNotFound)
		return nil
	case old.Phase == store.PhaseScheduled || old.Phase == store.PhaseInboxed:
		reply(rpc.RestartNotStarted)
		return nil
	case old.Phase != store.PhaseCompleted:
		reply(rpc.RestartStillRunning)
		return nil
	case r.From >= old.JournalLen:
		// Also a journal purged since the leader looked (its length is 0 then).
		reply(rpc.RestartIndexOutOfRange)
		return nil
	}
	if taken, err := a.status(r.NewInvocationID); err != nil || taken != nil {
		// The leader draws new ids at random: a record that names one in use (or the old
		// invocation's own) was written by no leader of this version. Nothing changes.
		if err == nil {
			reply(rpc.RestartNotFound)
		}
		return err
	}
	st := &store.Status{
		Target:                old.Target,
		InvokedBy:             logrecord.InvokedByRestart + invString(r.InvocationID),
		CreatedAt:             a.rec.Time,
		ModifiedAt:            a.rec.Time,
		CompletionRetentionMs: old.CompletionRetentionMs,
		JournalRetentionMs:    old.JournalRetentionMs,
		// As in Restate, the new invocation speaks the protocol version the old one was
		// pinned to, on the same deployment unless the record names another; one that was
		// never pinned picks the latest deployment when it first runs.
		DeploymentID:    old.DeploymentID,
		ProtocolVersion: old.ProtocolVersion,
	}
	if r.DeploymentID != "" && st.DeploymentID != "" {
		st.DeploymentID = r.DeploymentID
	}
	if err := a.copyJournalPrefix(r.InvocationID, r.NewInvocationID, old.JournalLen, r.From, st); err != nil {
		return err
	}
	if err := a.start(r.NewInvocationID, st); err != nil {
		return err
	}
	reply(rpc.RestartDone)
	return nil
}

// copyJournalPrefix copies the entries 0..from of the journal of old (length n) to the
// journal of id, then, in journal order, the notifications after them that complete the
// commands copied: the copied commands' completions come along wherever they were in the
// old journal, other notifications past from (signals, awakeables) do not. Entries are
// copied as stored (their append times included) and nothing they mean is applied again:
// a copied call is not made again, a copied state change not redone. st counts them, and
// takes the result of a copied Output command, which the handler's replay ends with.
func (a *applier) copyJournalPrefix(old, id []byte, n, from uint32, st *store.Status) error {
	missing := map[uint32]bool{}
	put := func(e store.JournalEntry, n *protocol.Notification) {
		idx := st.JournalLen
		a.txn.PutJournalEntry(id, idx, e)
		st.JournalLen++
		if n == nil {
			return
		}
		if kind, ident, ok := notifiedKey(n); ok {
			a.txn.MarkNotified(id, kind, ident, idx)
		}
	}
	for i := uint32(0); i <= from; i++ {
		e, ok, err := a.txn.JournalEntry(old, i)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		m := protocol.Message{Type: protocol.MessageType(e.Type), Payload: e.Payload}
		switch {
		case m.Type.IsCommand():
			st.CommandCount++
			// The leader refused commands whose completions it could not tell.
			cids, _ := protocol.CommandCompletionIDs(m)
			for _, c := range cids {
				missing[c] = true
			}
			if m.Type == protocol.OutputCommandType {
				out := &protocol.OutputCommand{}
				if out.Unmarshal(e.Payload) == nil {
					st.Result = outputResult(out)
				}
			}
			put(e, nil)
		case m.Type.IsNotification():
			nt := &protocol.Notification{}
			if nt.Unmarshal(e.Payload) != nil {
				nt = nil
			} else if nt.Kind == protocol.NotificationIDCompletion {
				delete(missing, nt.CompletionID)
			}
			put(e, nt)
		default:
			put(e, nil) // custom entries are only stored
		}
	}
	for i := from + 1; i < n && len(missing) > 0; i++ {
		e, ok, err := a.txn.JournalEntry(old, i)
		if err != nil {
			return err
		}
		if !ok || !protocol.MessageType(e.Type).IsNotification() {
			continue
		}
		nt := &protocol.Notification{}
		if nt.Unmarshal(e.Payload) != nil || nt.Kind != protocol.NotificationIDCompletion || !missing[nt.CompletionID] {
			continue
		}
		delete(missing, nt.CompletionID)
		put(e, nt)
	}
	return nil
}
