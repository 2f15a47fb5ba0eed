package processor

import (
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

// Apply rules. Every replica must apply a record the same way, whatever version of this
// code it runs, or the replicas diverge. So when a version changes what a record does, the
// change takes effect from a point in the log on: the format marker that the version's
// writers put in front of their records (logrecord.FormatMarker). Replicas of earlier
// versions stop at that marker, and every replica applies the records before it by the
// earlier rules. The partition store keeps the rules in effect (store.Txn.Rules).
const (
	// rulesCallee came with logrecord.KindCalleeFormat:
	//   - a call's or send's callee takes the uuid the invoker logged (Entry.CallUUID)
	//     instead of one derived from the caller, which a later run of the caller's id (a
	//     workflow run, an idempotent request after its retention) derived again;
	//   - a call to a virtual object or workflow runs on its key's partition, also when the
	//     key is empty (as the ingress and Restate place it);
	//   - a call to a workflow's run handler is the workflow's one run even when it carries
	//     an idempotency key (Restate ignores the key there);
	//   - an attach to an idempotent request that names a key (even an empty one) looks on
	//     that key's partition, where the request runs;
	//   - killing an invocation that never started (scheduled or queued behind its object's
	//     lock) frees it, as cancelling does, instead of keeping a "killed" result for its
	//     retention;
	//   - killing an invocation also kills what it sent (one-way calls), as Restate does.
	rulesCallee = 1
	// rulesManage came with logrecord.KindManageFormat (as restate-server 1.7.12 does):
	//   - pausing a suspended invocation leaves it suspended (answered done, not
	//     accepted): what it waits for still wakes it;
	//   - resuming a suspended invocation runs it again at once, and one that waits to
	//     retry retries at once (the leader's invoker only: no change of the status);
	//   - a workflow's run does not hold back a state patch of its key (only an object's
	//     lock holder does);
	//   - every change of an invocation's status stamps modified_at: a notification
	//     appended to its journal (also the one that wakes it from suspension), a caller
	//     attached to it, a cancel that resumes it from a pause.
	rulesManage = 2
	// rulesEvents came with logrecord.KindEventsFormat: pausing a running invocation stores
	// a Paused journal event (sys_journal_events), as restate-server 1.7.12 records one.
	rulesEvents = 3
)

// rulesOf is the rules version a format marker switches to (0 for other records).
func rulesOf(k logrecord.Kind) uint64 {
	switch k {
	case logrecord.KindCalleeFormat:
		return rulesCallee
	case logrecord.KindManageFormat:
		return rulesManage
	case logrecord.KindEventsFormat:
		return rulesEvents
	}
	return 0
}

// rules reports whether the partition applies records by rules v or newer.
func (a *applier) rules(v uint64) (bool, error) {
	cur, err := a.txn.Rules()
	return cur >= v, err
}

// switchRules applies a format marker.
func (a *applier) switchRules(k logrecord.Kind) error {
	v := rulesOf(k)
	cur, err := a.txn.Rules()
	if err != nil || v <= cur {
		return err
	}
	a.txn.SetRules(v)
	return nil
}

// touch stamps a change of an invocation's status with the record's time, by rulesManage
// (as Restate stamps every change of a status); the earlier rules stamped only some.
func (a *applier) touch(st *store.Status) error {
	stamp, err := a.rules(rulesManage)
	if err == nil && stamp {
		st.ModifiedAt = a.rec.Time
	}
	return err
}
