package processor

import (
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

// Journal events (sys_journal_events): what the leader's invoker proposes about an
// invocation's attempts, decided here so that every replica stores the same rows.

// journalEvent applies an event the leader's invoker proposed for a run of an invocation.
// A Paused event also pauses it (its retries ran out).
func (a *applier) journalEvent(ev *logrecord.JournalEvent) error {
	id := ev.InvocationID
	st, err := a.status(id)
	if err != nil {
		return err
	}
	if st == nil || st.Phase != store.PhaseInvoked || ev.Attempt != st.Attempt {
		return nil // an event of a run that no longer matters
	}
	switch ev.Type {
	case logrecord.EventTransientError:
		return a.storeEvent(id, st, ev.Type, ev.Failure)
	case logrecord.EventPaused:
		if err := a.storeEvent(id, st, ev.Type, ev.Failure); err != nil {
			return err
		}
		st.Phase, st.ModifiedAt = store.PhasePaused, a.rec.Time
		return a.putStatus(id, st)
	}
	return nil
}

// storeEvent stores an event of an invocation after its earlier ones. The dedup rule, as
// Restate's invoker applies it to the failures of one invocation: a TransientError is not
// stored again while it repeats, that is when the invocation's latest event is a
// TransientError with the same code, message and related command and no command was added
// to the journal since. A different failure in between, a new command or a pause (any
// other event) lets the same failure be stored again.
func (a *applier) storeEvent(id []byte, st *store.Status, typ logrecord.EventType, f *logrecord.EventFailure) error {
	last, ok, err := a.txn.LastJournalEvent(id)
	if err != nil {
		return err
	}
	var seq uint32
	if ok {
		seq = last.Seq + 1
		if typ == logrecord.EventTransientError && last.Type == logrecord.EventTransientError &&
			last.Commands == st.CommandCount && last.Failure.SameAs(f) {
			return nil
		}
	}
	a.txn.PutJournalEvent(id, seq, store.JournalEvent{
		Type: typ, AppendedAt: a.rec.Time, AfterEntryIndex: max(st.JournalLen, 1) - 1,
		Commands: st.CommandCount, Failure: f,
	})
	return nil
}

// lastFailure is the failure a manual pause of an invocation records: the failure of its
// latest event if that is a TransientError and no command was added since (the invocation
// is retrying that failure), else none.
func (a *applier) lastFailure(id []byte, st *store.Status) (*logrecord.EventFailure, error) {
	last, ok, err := a.txn.LastJournalEvent(id)
	if err != nil || !ok {
		return nil, err
	}
	if last.Type != logrecord.EventTransientError || last.Commands != st.CommandCount {
		return nil, nil
	}
	return last.Failure, nil
}

// pausedEvent stores the Paused event of a manual pause, by rulesEvents, with the failure
// the invocation was retrying, if any.
func (a *applier) pausedEvent(id []byte, st *store.Status) error {
	if ok, err := a.rules(rulesEvents); err != nil || !ok {
		return err
	}
	f, err := a.lastFailure(id, st)
	if err != nil {
		return err
	}
	return a.storeEvent(id, st, logrecord.EventPaused, f)
}
