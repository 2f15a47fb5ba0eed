// Package processor owns the partition processor: the deterministic state machine that
// applies partition log records to the partition store, and the loop that tails the log,
// applies records in LSN order and hands the resulting actions to the leader.
package processor

import (
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

// StateMachine applies records of one partition. It keeps no state of its own besides the
// partition's identity: everything lives in the store, so that replay from any applied LSN
// gives the same result.
type StateMachine struct {
	Partition     uint32
	NumPartitions uint32
}

// applier carries what one Apply call needs.
type applier struct {
	sm   *StateMachine
	txn  *store.Txn
	rec  *logrecord.Record
	emit func(Action)
	// statuses caches the statuses this record touches (nil = deleted), so that nested
	// applies (a call routed to an invocation of the same partition) share one copy.
	statuses map[string]*store.Status
	dirty    map[string]bool
	// loaded is what the stored statuses that this record read were indexed by (nil: none
	// stored), so that writing them back touches only the index entries that change.
	loaded map[string]*store.Indexed
}

func (a *applier) status(id []byte) (*store.Status, error) {
	if st, ok := a.statuses[string(id)]; ok {
		return st, nil
	}
	st, err := a.txn.Status(id)
	if err != nil {
		return nil, err
	}
	a.statuses[string(id)] = st
	if _, ok := a.loaded[string(id)]; !ok {
		var ix *store.Indexed
		if st != nil {
			v := st.Indexed()
			ix = &v
		}
		a.loaded[string(id)] = ix
	}
	return st, nil
}

func (a *applier) putStatus(id []byte, st *store.Status) error {
	a.statuses[string(id)] = st
	a.dirty[string(id)] = true
	return nil
}

func (a *applier) deleteStatus(id []byte) {
	a.statuses[string(id)] = nil
	a.dirty[string(id)] = true
}

func (a *applier) flush() error {
	for id := range a.dirty {
		prev, known := a.loaded[id] // prev nil and !known: PutStatus rewrites every index
		st := a.statuses[id]
		if st == nil {
			if known && prev == nil {
				continue // created and deleted by this record: nothing was stored
			}
			if err := a.txn.DeleteStatus([]byte(id), prev); err != nil {
				return err
			}
			continue
		}
		if err := a.txn.PutStatus([]byte(id), st, prev); err != nil {
			return err
		}
	}
	return nil
}

// Apply applies one record. Actions go to emit; the caller decides whether they run.
func (sm *StateMachine) Apply(txn *store.Txn, rec *logrecord.Record, emit func(Action)) error {
	a := &applier{sm: sm, txn: txn, rec: rec, emit: emit, statuses: map[string]*store.Status{}, dirty: map[string]bool{}, loaded: map[string]*store.Indexed{}}
	if err := a.apply(); err != nil {
		return err
	}
	return a.flush()
}

func (a *applier) apply() error {
	txn, rec := a.txn, a.rec
	if rec.Epoch != 0 {
		current, err := txn.Epoch()
		if err != nil {
			return err
		}
		if rec.Kind == logrecord.KindAnnounceLeader {
			if rec.Epoch > current {
				txn.SetEpoch(rec.Epoch)
				a.emit(ActAnnounced{Epoch: rec.Epoch, Node: rec.AnnounceLeader.Node})
			}
			return nil
		}
		if rec.Epoch != current {
			// Written by a deposed leader (or by one whose announcement was overtaken):
			// epochs are claimed by compare-and-set, so only the leader of the current
			// epoch writes with it. Every replica drops the record alike.
			return nil
		}
	}
	if rec.Dedup != nil {
		seen, err := txn.SeenDedup(rec.Dedup.Producer, rec.Dedup.Seq)
		if err != nil || seen {
			return err
		}
	}
	return a.applyBody()
}

// applyBody applies what a record says, once fencing and deduplication let it through.
func (a *applier) applyBody() error {
	rec := a.rec
	switch rec.Kind {
	case logrecord.KindInvoke:
		return a.invoke(rec.Invoke)
	case logrecord.KindInvokerEffect:
		return a.effect(rec.InvokerEffect)
	case logrecord.KindTimerFired:
		return a.timerFired(rec.TimerFired)
	case logrecord.KindInvocationResult:
		return a.invocationResult(rec.InvocationResult)
	case logrecord.KindTruncateOutbox:
		return a.txn.TruncateOutbox(rec.TruncateOutbox.Seq)
	case logrecord.KindSignal:
		return a.signal(rec.Signal)
	case logrecord.KindManage:
		return a.manage(rec.Manage)
	case logrecord.KindAttach:
		return a.attach(rec.Attach)
	case logrecord.KindExpire:
		return a.expire()
	case logrecord.KindPatchState:
		return a.patchState(rec.PatchState)
	case logrecord.KindRestartAsNew:
		return a.restartAsNew(rec.RestartAsNew)
	case logrecord.KindJournalEvent:
		return a.journalEvent(rec.JournalEvent)
	case logrecord.KindCalleeFormat, logrecord.KindManageFormat, logrecord.KindEventsFormat:
		return a.switchRules(rec.Kind)
	}
	return nil
}

type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

func malformed(err error) error { return &malformedError{err} }

// route applies a record addressed to a partition: here if it is ours, else through the
// outbox.
func (a *applier) route(pk ids.PartitionKey, rec *logrecord.Record) error {
	p := ids.PartitionOf(pk, a.sm.NumPartitions)
	if p == a.sm.Partition {
		inner := &applier{sm: a.sm, txn: a.txn, rec: rec, emit: a.emit, statuses: a.statuses, dirty: a.dirty, loaded: a.loaded}
		return inner.applyBody()
	}
	b, err := logrecord.Encode(rec)
	if err != nil {
		return err
	}
	seq, err := a.txn.PushOutbox(p, b)
	if err != nil {
		return err
	}
	a.emit(ActOutbox{Seq: seq, To: p})
	return nil
}
