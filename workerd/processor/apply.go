// Package processor owns the partition processor: the deterministic state machine that
// applies partition log records to the partition store, and the loop that tails the log,
// applies records in LSN order and hands the resulting actions to the leader.
package processor

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
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
		st := a.statuses[id]
		if st == nil {
			a.txn.DeleteStatus([]byte(id))
			continue
		}
		if err := a.txn.PutStatus([]byte(id), st); err != nil {
			return err
		}
	}
	return nil
}

// Apply applies one record. Actions go to emit; the caller decides whether they run.
func (sm *StateMachine) Apply(txn *store.Txn, rec *logrecord.Record, emit func(Action)) error {
	a := &applier{sm: sm, txn: txn, rec: rec, emit: emit, statuses: map[string]*store.Status{}, dirty: map[string]bool{}}
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
	}
	return nil
}

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
	a.txn.PutJournalEntry(id, 0, store.JournalEntry{Type: uint16(protocol.InputCommandType), Payload: input.Marshal()})
	st.JournalLen, st.CommandCount = 1, 1
	if inv.Send && inv.RequestID != 0 {
		resp := rpc.InvokeResponse{InvocationID: id, SendStatus: rpc.SendAccepted}
		if inv.ExecutionTime > a.rec.Time {
			resp.ExecutionTime = msTime(inv.ExecutionTime)
		}
		a.emit(ActReply{RequestID: inv.RequestID, Response: resp})
	}
	if inv.ExecutionTime > a.rec.Time {
		st.Phase = store.PhaseScheduled
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
			a.emit(ActReply{RequestID: inv.RequestID, Response: rpc.InvokeResponse{InvocationID: id, SendStatus: rpc.SendPreviouslyAccepted}})
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
			st.Phase, st.InboxSeq = store.PhaseInboxed, seq
			return a.putStatus(id, st)
		}
		a.txn.SetLock(st.Target.Service, st.Target.Key, id)
	}
	st.Phase = store.PhaseInvoked
	a.emit(ActInvoke{ID: id})
	return a.putStatus(id, st)
}

func (a *applier) addTimer(tf *logrecord.TimerFired) error {
	if err := a.txn.PutTimer(tf); err != nil {
		return err
	}
	a.emit(ActTimer{Timer: tf})
	return nil
}

func (a *applier) effect(eff *logrecord.InvokerEffect) error {
	id := eff.InvocationID
	st, err := a.status(id)
	if err != nil {
		return err
	}
	if st == nil || st.Phase != store.PhaseInvoked || eff.Attempt != st.Attempt {
		return nil // a late effect of an attempt that no longer matters
	}
	st.ModifiedAt = a.rec.Time
	if st.DeploymentID == "" && eff.DeploymentID != "" {
		st.DeploymentID, st.ProtocolVersion = eff.DeploymentID, eff.ProtocolVersion
	}
	for i := range eff.Entries {
		if err := a.appendEntry(id, st, &eff.Entries[i]); err != nil {
			var bad *malformedError
			if errors.As(err, &bad) {
				// The invoker checks entries before logging them, so this means a bug or a
				// damaged record: every replica fails the invocation the same way rather than
				// stopping the partition.
				return a.complete(id, st, store.Result{Failed: true, Code: protocol.CodeProtocolViolation, Message: "malformed journal entry: " + bad.Error()})
			}
			return fmt.Errorf("invocation %s entry %d: %w", invString(id), st.JournalLen, err)
		}
	}
	switch eff.Kind {
	case logrecord.EffectSuspend:
		st.WaitingCompletions, st.WaitingSignals, st.WaitingNames = eff.WaitingCompletions, eff.WaitingSignals, eff.WaitingNames
		ready, err := a.anyNotified(id, st)
		if err != nil {
			return err
		}
		if ready {
			a.emit(ActInvoke{ID: id})
		} else {
			st.Phase = store.PhaseSuspended
		}
	case logrecord.EffectEnd:
		res := store.Result{}
		if st.Result != nil {
			res = *st.Result
		}
		return a.complete(id, st, res)
	case logrecord.EffectPause:
		st.Phase = store.PhasePaused
		st.LastFailure = eff.FailureMessage
	case logrecord.EffectFail:
		return a.complete(id, st, store.Result{Failed: true, Code: eff.FailureCode, Message: eff.FailureMessage})
	}
	return a.putStatus(id, st)
}

// anyNotified reports whether a notification a suspended invocation waits for is already in
// its journal.
func (a *applier) anyNotified(id []byte, st *store.Status) (bool, error) {
	check := func(kind byte, ident []byte) (bool, error) { return a.txn.Notified(id, kind, ident) }
	for _, c := range st.WaitingCompletions {
		if ok, err := check(store.NotifyCompletion, store.CompletionIdent(c)); ok || err != nil {
			return ok, err
		}
	}
	for _, s := range st.WaitingSignals {
		if ok, err := check(store.NotifySignal, store.CompletionIdent(s)); ok || err != nil {
			return ok, err
		}
	}
	for _, n := range st.WaitingNames {
		if ok, err := check(store.NotifyName, []byte(n)); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// appendEntry adds one entry produced by an attempt to the journal and applies what the
// command means.
func (a *applier) appendEntry(id []byte, st *store.Status, e *logrecord.Entry) error {
	t := protocol.MessageType(e.Type)
	if t.IsNotification() {
		n := &protocol.Notification{}
		if err := n.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		return a.addNotification(id, st, store.JournalEntry{Type: e.Type, Flags: e.Flags, Payload: e.Payload}, n)
	}
	idx := st.JournalLen
	a.txn.PutJournalEntry(id, idx, store.JournalEntry{Type: e.Type, Flags: e.Flags, Payload: e.Payload})
	st.JournalLen++
	if !t.IsCommand() {
		return nil // custom entries are only stored
	}
	st.CommandCount++
	key := st.Target.Key
	switch t {
	case protocol.OutputCommandType:
		c := &protocol.OutputCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		if c.Failure != nil {
			st.Result = &store.Result{Failed: true, Code: c.Failure.Code, Message: c.Failure.Message}
		} else {
			st.Result = &store.Result{Value: valueOf(c.Value)}
		}
	case protocol.SetStateCommandType:
		c := &protocol.SetStateCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		a.txn.SetState(st.Target.Service, key, c.Key, valueOf(c.Value))
	case protocol.ClearStateCommandType:
		c := &protocol.ClearStateCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		a.txn.ClearState(st.Target.Service, key, c.Key)
	case protocol.ClearAllStateCommandType:
		return a.txn.ClearAllState(st.Target.Service, key)
	case protocol.SleepCommandType:
		c := &protocol.SleepCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		return a.addTimer(&logrecord.TimerFired{InvocationID: id, Kind: logrecord.TimerSleep, CompletionID: c.ResultCompletionID, WakeAt: int64(c.WakeUpTime), InvocationCreatedAt: st.CreatedAt})
	case protocol.CallCommandType:
		c := &protocol.CallCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		return a.call(id, st, e.CallTarget, callSpec{
			parameter: c.Parameter, headers: c.Headers, key: c.Key, idempotencyKey: c.IdempotencyKey,
			idIdx: c.InvocationIDNotificationIdx, resultID: c.ResultCompletionID, hasResult: true,
			retention: e.CallRetention,
		})
	case protocol.GetLazyStateCommandType:
		c := &protocol.GetLazyStateCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		v, ok, err := a.txn.StateValue(st.Target.Service, key, c.Key)
		if err != nil {
			return err
		}
		n := protocol.CompletionNotification(c.ResultCompletionID)
		if ok {
			n.WithValue(v)
		} else {
			n.WithVoid()
		}
		return a.addNotification(id, st, store.JournalEntry{Type: uint16(protocol.GetLazyStateCompletionType), Payload: n.Marshal()}, n)
	case protocol.GetLazyStateKeysCommandType:
		c := &protocol.GetLazyStateKeysCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		keys, err := a.txn.StateKeys(st.Target.Service, key)
		if err != nil {
			return err
		}
		n := protocol.CompletionNotification(c.ResultCompletionID).WithStateKeys(keys)
		return a.addNotification(id, st, store.JournalEntry{Type: uint16(protocol.GetLazyStateKeysCompletionType), Payload: n.Marshal()}, n)
	case protocol.AttachInvocationCommandType:
		c := &protocol.AttachInvocationCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		return a.attachCommand(id, st, c.Target, c.ResultCompletionID, protocol.AttachInvocationCompletionType, true)
	case protocol.GetInvocationOutputCommandType:
		c := &protocol.GetInvocationOutputCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		return a.attachCommand(id, st, c.Target, c.ResultCompletionID, protocol.GetInvocationOutputCompletionType, false)
	case protocol.GetPromiseCommandType, protocol.PeekPromiseCommandType, protocol.CompletePromiseCommandType:
		return a.promiseCommand(id, st, t, e.Payload)
	case protocol.SendSignalCommandType:
		c := &protocol.SendSignalCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		target, err := ids.ParseInvocationID(c.TargetInvocationID)
		if err != nil {
			return nil // the SDK named no valid invocation: nothing to signal
		}
		sg := &logrecord.Signal{InvocationID: target.Bytes()}
		if c.SignalIdx != nil {
			sg.SignalID = *c.SignalIdx
		}
		if c.SignalName != nil {
			sg.SignalName = *c.SignalName
		}
		setSignalResult(sg, c.Value, c.Failure)
		return a.route(target.PartitionKey, &logrecord.Record{Kind: logrecord.KindSignal, Time: a.rec.Time, Signal: sg})
	case protocol.CompleteAwakeableCommandType:
		c := &protocol.CompleteAwakeableCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		target, idx, err := ids.ParseAwakeableID(c.AwakeableID)
		if err != nil || idx < protocol.FirstAwakeableSignalID {
			return nil // not an awakeable of this server: nothing to complete
		}
		sg := &logrecord.Signal{InvocationID: target.Bytes(), SignalID: idx}
		setSignalResult(sg, c.Value, c.Failure)
		return a.route(target.PartitionKey, &logrecord.Record{Kind: logrecord.KindSignal, Time: a.rec.Time, Signal: sg})
	case protocol.OneWayCallCommandType:
		c := &protocol.OneWayCallCommand{}
		if err := c.Unmarshal(e.Payload); err != nil {
			return malformed(err)
		}
		return a.call(id, st, e.CallTarget, callSpec{
			parameter: c.Parameter, headers: c.Headers, key: c.Key, idempotencyKey: c.IdempotencyKey,
			idIdx: c.InvocationIDNotificationIdx, invokeTime: int64(c.InvokeTime),
			retention: e.CallRetention,
		})
	}
	return nil
}

type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

func malformed(err error) error { return &malformedError{err} }

// calleeID is the id of a plain call: derived from the caller and the command's id
// notification index, so every replica (and a replay) creates the same callee. Plain service
// calls stay on the caller's partition; object calls go to the key's.
func calleeID(caller ids.InvocationID, key string, idIdx uint32) ids.InvocationID {
	pk := caller.PartitionKey
	if key != "" {
		pk = ids.PartitionKeyOf(key)
	}
	h := sha256.New()
	h.Write(caller.Bytes())
	h.Write(binary.BigEndian.AppendUint32(nil, idIdx))
	callee := ids.InvocationID{PartitionKey: pk}
	copy(callee.UUID[:], h.Sum(nil))
	return callee
}

type callSpec struct {
	parameter      []byte
	headers        []protocol.Header
	key            string
	idempotencyKey *string
	idIdx          uint32
	resultID       uint32
	hasResult      bool
	invokeTime     int64
	retention      *logrecord.Retention // resolved by the invoker; nil in logs of older versions
}

// call creates the callee of a Call or OneWayCall command and answers the command's
// invocation-id notification.
func (a *applier) call(callerID []byte, st *store.Status, target *logrecord.Target, c callSpec) error {
	if target == nil {
		return fmt.Errorf("call without a resolved target")
	}
	caller, err := ids.InvocationIDFromBytes(callerID)
	if err != nil {
		return err
	}
	var callee ids.InvocationID
	switch {
	case c.idempotencyKey != nil:
		pk := ids.PartitionKeyOf(*c.idempotencyKey)
		if c.key != "" {
			pk = ids.PartitionKeyOf(c.key)
		}
		callee = ids.IdempotentInvocationID(pk, target.Service, c.key, target.Handler, *c.idempotencyKey)
	case target.HandlerType == "WORKFLOW":
		callee = ids.WorkflowInvocationID(ids.PartitionKeyOf(c.key), target.Service, c.key)
	default:
		callee = calleeID(caller, c.key, c.idIdx)
	}
	tgt := *target
	tgt.Key = c.key
	inv := &logrecord.Invoke{
		InvocationID:  callee.Bytes(),
		Target:        tgt,
		Input:         c.parameter,
		InvokedBy:     caller.String(),
		ExecutionTime: c.invokeTime,
	}
	if c.idempotencyKey != nil {
		inv.IdempotencyKey = *c.idempotencyKey
	}
	if c.retention != nil {
		inv.CompletionRetentionMs, inv.JournalRetentionMs = c.retention.CompletionMs, c.retention.JournalMs
	}
	for _, h := range c.headers {
		inv.Headers = append(inv.Headers, logrecord.Header{Key: h.Key, Value: h.Value})
	}
	if c.hasResult {
		inv.Caller = &logrecord.Caller{InvocationID: callerID, CompletionID: c.resultID}
	}
	// The id notification goes first: the SDK sees the callee id before its result.
	n := &protocol.Notification{Kind: protocol.NotificationIDCompletion, CompletionID: c.idIdx, Result: protocol.ResultInvocationID, InvocationID: callee.String()}
	if err := a.addNotification(callerID, st, store.JournalEntry{Type: uint16(protocol.CallInvocationIDCompletionType), Payload: n.Marshal()}, n); err != nil {
		return err
	}
	return a.route(callee.PartitionKey, &logrecord.Record{Kind: logrecord.KindInvoke, Time: a.rec.Time, Invoke: inv})
}

// route applies a record addressed to a partition: here if it is ours, else through the
// outbox.
func (a *applier) route(pk ids.PartitionKey, rec *logrecord.Record) error {
	p := ids.PartitionOf(pk, a.sm.NumPartitions)
	if p == a.sm.Partition {
		inner := &applier{sm: a.sm, txn: a.txn, rec: rec, emit: a.emit, statuses: a.statuses, dirty: a.dirty}
		return inner.applyBody()
	}
	b, err := logrecord.Encode(rec)
	if err != nil {
		return err
	}
	if _, err := a.txn.PushOutbox(p, b); err != nil {
		return err
	}
	a.emit(ActOutbox{})
	return nil
}

// addNotification appends a notification to a journal and wakes whoever waits for it. A
// completion is added once: a second result for the same completion id is dropped.
func (a *applier) addNotification(id []byte, st *store.Status, e store.JournalEntry, n *protocol.Notification) error {
	var dup bool
	var err error
	switch n.Kind {
	case protocol.NotificationIDCompletion:
		dup, err = a.txn.Notified(id, store.NotifyCompletion, store.CompletionIdent(n.CompletionID))
	case protocol.NotificationIDSignal:
		dup, err = a.txn.Notified(id, store.NotifySignal, store.CompletionIdent(n.SignalID))
	case protocol.NotificationIDSignalName:
		dup, err = a.txn.Notified(id, store.NotifyName, []byte(n.SignalName))
	}
	if err != nil || dup {
		return err // the first completion of a completion, awakeable or signal wins
	}
	idx := st.JournalLen
	a.txn.PutJournalEntry(id, idx, e)
	st.JournalLen++
	switch n.Kind {
	case protocol.NotificationIDCompletion:
		a.txn.MarkNotified(id, store.NotifyCompletion, store.CompletionIdent(n.CompletionID), idx)
	case protocol.NotificationIDSignal:
		a.txn.MarkNotified(id, store.NotifySignal, store.CompletionIdent(n.SignalID), idx)
	case protocol.NotificationIDSignalName:
		a.txn.MarkNotified(id, store.NotifyName, []byte(n.SignalName), idx)
	}
	switch st.Phase {
	case store.PhaseInvoked:
		a.emit(ActNotify{ID: id, Index: idx, Entry: e})
	case store.PhaseSuspended:
		if waitsFor(st, n) {
			st.Phase = store.PhaseInvoked
			st.WaitingCompletions, st.WaitingSignals, st.WaitingNames = nil, nil, nil
			a.emit(ActInvoke{ID: id})
		}
	}
	return nil
}

func waitsFor(st *store.Status, n *protocol.Notification) bool {
	switch n.Kind {
	case protocol.NotificationIDCompletion:
		for _, c := range st.WaitingCompletions {
			if c == n.CompletionID {
				return true
			}
		}
	case protocol.NotificationIDSignal:
		for _, s := range st.WaitingSignals {
			if s == n.SignalID {
				return true
			}
		}
	case protocol.NotificationIDSignalName:
		for _, s := range st.WaitingNames {
			if s == n.SignalName {
				return true
			}
		}
	}
	return false
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
	a.emit(ActCompleted{ID: id, Result: res})
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
		a.txn.DeleteJournal(id, st.JournalLen)
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
			a.txn.DeleteJournal(e.ID, st.JournalLen)
			st.JournalLen, st.CommandCount = 0, 0
			if err := a.putStatus(e.ID, st); err != nil {
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

// dropCompleted deletes a completed invocation with its retained journal. A workflow run
// takes its promises and state along, so its key starts over.
func (a *applier) dropCompleted(id []byte, st *store.Status) error {
	a.txn.DeleteJournal(id, st.JournalLen)
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

// deliver sends a callee's result to its caller.
func (a *applier) deliver(c logrecord.Caller, res store.Result) error {
	return a.sendResult(c, &logrecord.InvocationResult{Value: res.Value, Failed: res.Failed, FailureCode: res.Code, FailureMsg: res.Message})
}

// sendResult addresses ir to the caller's completion and routes it to the caller's partition.
func (a *applier) sendResult(c logrecord.Caller, ir *logrecord.InvocationResult) error {
	caller, err := ids.InvocationIDFromBytes(c.InvocationID)
	if err != nil {
		return err
	}
	ir.InvocationID, ir.CompletionID, ir.NotificationType = c.InvocationID, c.CompletionID, c.NotificationType
	return a.route(caller.PartitionKey, &logrecord.Record{Kind: logrecord.KindInvocationResult, Time: a.rec.Time, InvocationResult: ir})
}

func (a *applier) invocationResult(ir *logrecord.InvocationResult) error {
	st, err := a.status(ir.InvocationID)
	if err != nil || st == nil || st.Phase == store.PhaseCompleted {
		return err
	}
	n := &protocol.Notification{Kind: protocol.NotificationIDCompletion, CompletionID: ir.CompletionID}
	switch {
	case ir.Void:
		n.WithVoid()
	case ir.Failed:
		n.Result = protocol.ResultFailure
		n.Failure = &protocol.Failure{Code: ir.FailureCode, Message: ir.FailureMsg}
	default:
		n.Result = protocol.ResultValue
		n.Value = ir.Value
	}
	typ := protocol.CallCompletionType
	if ir.NotificationType != 0 {
		typ = protocol.MessageType(ir.NotificationType)
	}
	if err := a.addNotification(ir.InvocationID, st, store.JournalEntry{Type: uint16(typ), Payload: n.Marshal()}, n); err != nil {
		return err
	}
	return a.putStatus(ir.InvocationID, st)
}

func (a *applier) timerFired(tf *logrecord.TimerFired) error {
	existed, err := a.txn.TakeTimer(tf)
	if err != nil || !existed {
		return err
	}
	st, err := a.status(tf.InvocationID)
	if err != nil || st == nil {
		return err
	}
	if tf.InvocationCreatedAt != 0 && tf.InvocationCreatedAt != st.CreatedAt {
		return nil // the timer of an earlier invocation that had the same (deterministic) id
	}
	switch tf.Kind {
	case logrecord.TimerSleep:
		if st.Phase == store.PhaseCompleted {
			return nil
		}
		n := &protocol.Notification{Kind: protocol.NotificationIDCompletion, CompletionID: tf.CompletionID, Result: protocol.ResultVoid}
		if err := a.addNotification(tf.InvocationID, st, store.JournalEntry{Type: uint16(protocol.SleepCompletionType), Payload: n.Marshal()}, n); err != nil {
			return err
		}
		return a.putStatus(tf.InvocationID, st)
	case logrecord.TimerStart:
		if st.Phase != store.PhaseScheduled {
			return nil
		}
		return a.start(tf.InvocationID, st)
	case logrecord.TimerCleanup:
		// Cleanup timers come from logs written before the expiry index existed.
		if st.Phase == store.PhaseCompleted {
			return a.dropCompleted(tf.InvocationID, st)
		}
	}
	return nil
}

func setSignalResult(sg *logrecord.Signal, value *protocol.Value, failure *protocol.Failure) {
	switch {
	case failure != nil:
		sg.Failed, sg.FailureCode, sg.FailureMsg = true, failure.Code, failure.Message
	case value != nil:
		sg.Value = value.Content
		if sg.Value == nil {
			sg.Value = []byte{}
		}
	}
}

// cancelledResult is what a cancelled invocation that never started completes with.
var cancelledResult = store.Result{Failed: true, Code: 409, Message: "Cancelled"}

// signal adds a signal notification to an invocation. Cancelling an invocation that has not
// started completes it at once; a started one gets the cancel signal and unwinds in the SDK.
func (a *applier) signal(sg *logrecord.Signal) error {
	st, err := a.status(sg.InvocationID)
	if err != nil || st == nil || st.Phase == store.PhaseCompleted {
		return err
	}
	if sg.SignalID == protocol.CancelSignalID && sg.SignalName == "" {
		switch st.Phase {
		case store.PhaseScheduled, store.PhaseInboxed:
			// Never started: callers get "Cancelled", and nothing is kept (as Restate does,
			// even for idempotent calls).
			st.CompletionRetentionMs, st.JournalRetentionMs = 0, 0
			return a.complete(sg.InvocationID, st, cancelledResult)
		}
	}
	var n *protocol.Notification
	if sg.SignalName != "" {
		n = protocol.NamedSignalNotification(sg.SignalName)
	} else {
		n = protocol.SignalNotification(sg.SignalID)
	}
	switch {
	case sg.Failed:
		n.WithFailure(protocol.Failure{Code: sg.FailureCode, Message: sg.FailureMsg})
	case sg.Value != nil:
		n.WithValue(sg.Value)
	default:
		n.WithVoid()
	}
	if err := a.addNotification(sg.InvocationID, st, store.JournalEntry{Type: uint16(protocol.SignalNotificationType), Payload: n.Marshal()}, n); err != nil {
		return err
	}
	if st.Phase == store.PhasePaused && sg.SignalID == protocol.CancelSignalID {
		st.Phase = store.PhaseInvoked // a paused invocation resumes to handle its cancellation
		a.emit(ActInvoke{ID: sg.InvocationID})
	}
	return a.putStatus(sg.InvocationID, st)
}

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
	if completed && m.Op != logrecord.ManagePurge {
		reply(rpc.ManageCompleted) // nothing left to cancel, kill, pause or resume
		return nil
	}
	switch m.Op {
	case logrecord.ManagePurge:
		if !completed {
			reply(rpc.ManageNotCompleted)
			return nil
		}
		// Purging a workflow's run frees its key: a new run starts from scratch.
		if err := a.dropCompleted(m.InvocationID, st); err != nil {
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
		if st.Phase == store.PhasePaused { // anything else is running already: nothing to do
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
		case store.PhaseInvoked, store.PhaseSuspended:
			a.emit(ActAbort{ID: m.InvocationID})
			st.Attempt++ // whatever the aborted run still logs is dropped
			st.Phase, st.ModifiedAt = store.PhasePaused, a.rec.Time
			st.WaitingCompletions, st.WaitingSignals, st.WaitingNames = nil, nil, nil
			if err := a.putStatus(m.InvocationID, st); err != nil {
				return err
			}
		}
	case logrecord.ManageKill:
		a.emit(ActAbort{ID: m.InvocationID})
		if err := a.killChildren(m.InvocationID, st); err != nil {
			return err
		}
		if err := a.complete(m.InvocationID, st, killedResult); err != nil {
			return err
		}
	}
	reply(rpc.ManageDone)
	return nil
}

// promiseCommand applies GetPromise, PeekPromise and CompletePromise: durable promises scoped
// to the workflow (service and key) of the invocation.
func (a *applier) promiseCommand(id []byte, st *store.Status, t protocol.MessageType, payload []byte) error {
	svc, key := st.Target.Service, st.Target.Key
	var name string
	var cid uint32
	var complete *store.Result
	switch t {
	case protocol.GetPromiseCommandType:
		c := &protocol.GetPromiseCommand{}
		if err := c.Unmarshal(payload); err != nil {
			return malformed(err)
		}
		name, cid = c.Key, c.ResultCompletionID
	case protocol.PeekPromiseCommandType:
		c := &protocol.PeekPromiseCommand{}
		if err := c.Unmarshal(payload); err != nil {
			return malformed(err)
		}
		name, cid = c.Key, c.ResultCompletionID
	case protocol.CompletePromiseCommandType:
		c := &protocol.CompletePromiseCommand{}
		if err := c.Unmarshal(payload); err != nil {
			return malformed(err)
		}
		name, cid = c.Key, c.ResultCompletionID
		complete = &store.Result{Value: valueOf(c.CompletionValue)}
		if c.CompletionFailure != nil {
			complete = &store.Result{Failed: true, Code: c.CompletionFailure.Code, Message: c.CompletionFailure.Message}
		}
	}
	pr, err := a.txn.Promise(svc, key, name)
	if err != nil {
		return err
	}
	notify := func(to []byte, toSt *store.Status, typ protocol.MessageType, n *protocol.Notification) error {
		return a.addNotification(to, toSt, store.JournalEntry{Type: uint16(typ), Payload: n.Marshal()}, n)
	}
	resultOf := func(n *protocol.Notification, r store.Result) *protocol.Notification {
		if r.Failed {
			return n.WithFailure(protocol.Failure{Code: r.Code, Message: r.Message})
		}
		return n.WithValue(r.Value)
	}
	switch t {
	case protocol.GetPromiseCommandType:
		if pr.Completed {
			return notify(id, st, protocol.GetPromiseCompletionType, resultOf(protocol.CompletionNotification(cid), pr.Result))
		}
		pr.Waiters = append(pr.Waiters, store.PromiseWaiter{InvocationID: id, CompletionID: cid})
		return a.txn.PutPromise(svc, key, name, pr)
	case protocol.PeekPromiseCommandType:
		n := protocol.CompletionNotification(cid)
		if pr.Completed {
			n = resultOf(n, pr.Result)
		} else {
			n.WithVoid()
		}
		return notify(id, st, protocol.PeekPromiseCompletionType, n)
	}
	// CompletePromise
	if pr.Completed {
		n := protocol.CompletionNotification(cid).WithFailure(protocol.Failure{Code: 409, Message: "promise was already completed"})
		return notify(id, st, protocol.CompletePromiseCompletionType, n)
	}
	pr.Completed, pr.Result = true, *complete
	waiters := pr.Waiters
	pr.Waiters = nil
	if err := a.txn.PutPromise(svc, key, name, pr); err != nil {
		return err
	}
	for _, w := range waiters {
		wst := st
		if !bytes.Equal(w.InvocationID, id) {
			if wst, err = a.status(w.InvocationID); err != nil {
				return err
			}
		}
		if wst == nil || wst.Phase == store.PhaseCompleted {
			continue
		}
		if err := notify(w.InvocationID, wst, protocol.GetPromiseCompletionType, resultOf(protocol.CompletionNotification(w.CompletionID), *complete)); err != nil {
			return err
		}
		if wst != st {
			if err := a.putStatus(w.InvocationID, wst); err != nil {
				return err
			}
		}
	}
	return notify(id, st, protocol.CompletePromiseCompletionType, protocol.CompletionNotification(cid).WithVoid())
}

// attachCommand resolves the target of an AttachInvocation or GetInvocationOutput command
// and asks the target's partition for its result.
func (a *applier) attachCommand(id []byte, st *store.Status, t protocol.InvocationTarget, cid uint32, typ protocol.MessageType, wait bool) error {
	var target ids.InvocationID
	switch {
	case t.InvocationID != nil:
		parsed, err := ids.ParseInvocationID(*t.InvocationID)
		if err != nil {
			n := protocol.CompletionNotification(cid).WithFailure(protocol.Failure{Code: 400, Message: "bad invocation id: " + err.Error()})
			return a.addNotification(id, st, store.JournalEntry{Type: uint16(typ), Payload: n.Marshal()}, n)
		}
		target = parsed
	case t.Workflow != nil:
		target = ids.WorkflowInvocationID(ids.PartitionKeyOf(t.Workflow.WorkflowKey), t.Workflow.WorkflowName, t.Workflow.WorkflowKey)
	case t.IdempotentRequest != nil:
		r := t.IdempotentRequest
		key := ""
		if r.ServiceKey != nil {
			key = *r.ServiceKey
		}
		pk := ids.PartitionKeyOf(r.IdempotencyKey)
		if key != "" {
			pk = ids.PartitionKeyOf(key)
		}
		target = ids.IdempotentInvocationID(pk, r.ServiceName, key, r.HandlerName, r.IdempotencyKey)
	default:
		n := protocol.CompletionNotification(cid).WithFailure(protocol.Failure{Code: 400, Message: "attach without a target"})
		return a.addNotification(id, st, store.JournalEntry{Type: uint16(typ), Payload: n.Marshal()}, n)
	}
	at := &logrecord.Attach{InvocationID: target.Bytes(), Wait: wait,
		Caller: logrecord.Caller{InvocationID: id, CompletionID: cid, NotificationType: uint16(typ)}}
	return a.route(target.PartitionKey, &logrecord.Record{Kind: logrecord.KindAttach, Time: a.rec.Time, Attach: at})
}

// attach answers a request for an invocation's result from another invocation.
func (a *applier) attach(at *logrecord.Attach) error {
	st, err := a.status(at.InvocationID)
	if err != nil {
		return err
	}
	switch {
	case st == nil:
		return a.deliver(at.Caller, store.Result{Failed: true, Code: 404, Message: "invocation not found"})
	case st.Phase == store.PhaseCompleted && st.Result != nil:
		return a.deliver(at.Caller, *st.Result)
	case !at.Wait:
		return a.deliverVoid(at.Caller)
	}
	for _, c := range st.Callers {
		if bytes.Equal(c.InvocationID, at.Caller.InvocationID) && c.CompletionID == at.Caller.CompletionID {
			return nil
		}
	}
	st.Callers = append(st.Callers, at.Caller)
	return a.putStatus(at.InvocationID, st)
}

// deliverVoid answers "not completed yet" to a GetInvocationOutput.
func (a *applier) deliverVoid(c logrecord.Caller) error {
	return a.sendResult(c, &logrecord.InvocationResult{Void: true})
}

// killChildren kills the callees an invocation still waits for: without the SDK there is
// nobody to cancel them, and nobody would ever read their results.
func (a *applier) killChildren(id []byte, st *store.Status) error {
	for idx := uint32(0); idx < st.JournalLen; idx++ {
		e, ok, err := a.txn.JournalEntry(id, idx)
		if err != nil {
			return err
		}
		if !ok || protocol.MessageType(e.Type) != protocol.CallCommandType {
			continue
		}
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
		callee, err := a.calleeOf(id, c.InvocationIDNotificationIdx)
		if err != nil || callee == nil {
			return err
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
