package processor

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// InvokerEffect records: the journal entries an attempt produced and what each command
// means (state, timers, calls, promises, attach), suspension and the end of an attempt.

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
	// As in Restate, the attempt's deployment is pinned by the first entry it produces: an
	// attempt that only suspended or failed leaves the next one free to pick the latest.
	// The invoker decides that and logs it (it names the deployment only on an effect with
	// entries); apply pins on whatever the record names, as earlier versions did, so that
	// their records (which named the deployment on an attempt's first effect, entries or
	// not) pin on every replica whatever its version.
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
// command means. Command bodies are decoded here, once, by protocol.ParseBody.
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
	se := store.JournalEntry{Type: e.Type, Flags: e.Flags, Payload: e.Payload, AppendedAt: a.rec.Time}
	if e.CallTarget != nil && (t == protocol.CallCommandType || t == protocol.OneWayCallCommandType) {
		se.Call = &store.CallMeta{ServiceType: e.CallTarget.ServiceType, HandlerType: e.CallTarget.HandlerType}
		if r := e.CallRetention; r != nil {
			se.Call.CompletionRetentionMs, se.Call.JournalRetentionMs = r.CompletionMs, r.JournalMs
		}
	}
	a.txn.PutJournalEntry(id, idx, se)
	st.JournalLen++
	if !t.IsCommand() {
		return nil // custom entries are only stored
	}
	st.CommandCount++
	body, err := protocol.ParseBody(protocol.Message{Type: t, Payload: e.Payload})
	if err != nil {
		if errors.Is(err, protocol.ErrUnknownMessageType) {
			return nil // a command of a newer protocol that we store but do not act on
		}
		return malformed(err)
	}
	return a.command(id, st, e, body)
}

// command applies what a journaled command means.
func (a *applier) command(id []byte, st *store.Status, e *logrecord.Entry, body protocol.Body) error {
	key := st.Target.Key
	switch c := body.(type) {
	case *protocol.OutputCommand:
		st.Result = outputResult(c)
	case *protocol.SetStateCommand:
		a.txn.SetState(st.Target.Service, key, c.Key, valueOf(c.Value))
	case *protocol.ClearStateCommand:
		a.txn.ClearState(st.Target.Service, key, c.Key)
	case *protocol.ClearAllStateCommand:
		return a.txn.ClearAllState(st.Target.Service, key)
	case *protocol.SleepCommand:
		return a.addTimer(&logrecord.TimerFired{InvocationID: id, Kind: logrecord.TimerSleep, CompletionID: c.ResultCompletionID, WakeAt: int64(c.WakeUpTime), InvocationCreatedAt: st.CreatedAt})
	case *protocol.CallCommand:
		return a.call(id, st, e.CallTarget, callSpec{
			parameter: c.Parameter, headers: c.Headers, key: c.Key, idempotencyKey: c.IdempotencyKey,
			idIdx: c.InvocationIDNotificationIdx, resultID: c.ResultCompletionID, hasResult: true,
			retention: e.CallRetention, traceParent: e.TraceParent, traceState: e.TraceState, uuid: e.CallUUID,
		})
	case *protocol.OneWayCallCommand:
		return a.call(id, st, e.CallTarget, callSpec{
			parameter: c.Parameter, headers: c.Headers, key: c.Key, idempotencyKey: c.IdempotencyKey,
			idIdx: c.InvocationIDNotificationIdx, invokeTime: int64(c.InvokeTime),
			retention: e.CallRetention, traceParent: e.TraceParent, traceState: e.TraceState, uuid: e.CallUUID,
		})
	case *protocol.GetLazyStateCommand:
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
	case *protocol.GetLazyStateKeysCommand:
		keys, err := a.txn.StateKeys(st.Target.Service, key)
		if err != nil {
			return err
		}
		n := protocol.CompletionNotification(c.ResultCompletionID).WithStateKeys(keys)
		return a.addNotification(id, st, store.JournalEntry{Type: uint16(protocol.GetLazyStateKeysCompletionType), Payload: n.Marshal()}, n)
	case *protocol.AttachInvocationCommand:
		return a.attachCommand(id, st, c.Target, c.ResultCompletionID, protocol.AttachInvocationCompletionType, true)
	case *protocol.GetInvocationOutputCommand:
		return a.attachCommand(id, st, c.Target, c.ResultCompletionID, protocol.GetInvocationOutputCompletionType, false)
	case *protocol.GetPromiseCommand:
		return a.getPromise(id, st, c.Key, c.ResultCompletionID, false)
	case *protocol.PeekPromiseCommand:
		return a.getPromise(id, st, c.Key, c.ResultCompletionID, true)
	case *protocol.CompletePromiseCommand:
		res := store.Result{Value: valueOf(c.CompletionValue)}
		if c.CompletionFailure != nil {
			res = store.Result{Failed: true, Code: c.CompletionFailure.Code, Message: c.CompletionFailure.Message}
		}
		return a.completePromise(id, st, c.Key, c.ResultCompletionID, res)
	case *protocol.SendSignalCommand:
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
	case *protocol.CompleteAwakeableCommand:
		target, idx, err := ids.ParseAwakeableID(c.AwakeableID)
		if err != nil || idx < protocol.FirstAwakeableSignalID {
			return nil // not an awakeable of this server: nothing to complete
		}
		sg := &logrecord.Signal{InvocationID: target.Bytes(), SignalID: idx}
		setSignalResult(sg, c.Value, c.Failure)
		return a.route(target.PartitionKey, &logrecord.Record{Kind: logrecord.KindSignal, Time: a.rec.Time, Signal: sg})
	}
	return nil // commands without durable meaning here (Input, Run, eager state reads)
}

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

// calleeOfCall is the id of a call's callee by rulesCallee: a workflow's run, an
// idempotent request, or a fresh invocation with the uuid the invoker logged. A virtual
// object or workflow runs on its key's partition (an empty key is a key too); an
// idempotent request to a plain service on its idempotency key's; any other call on its
// caller's.
func calleeOfCall(caller ids.InvocationID, target *logrecord.Target, c callSpec) ids.InvocationID {
	keyed := target.ServiceType == "VIRTUAL_OBJECT" || target.ServiceType == "WORKFLOW"
	switch {
	case target.HandlerType == "WORKFLOW":
		return ids.WorkflowInvocationID(ids.PartitionKeyOf(c.key), target.Service, c.key)
	case c.idempotencyKey != nil:
		pk := ids.PartitionKeyOf(*c.idempotencyKey)
		if keyed {
			pk = ids.PartitionKeyOf(c.key)
		}
		return ids.IdempotentInvocationID(pk, target.Service, c.key, target.Handler, *c.idempotencyKey)
	}
	pk := caller.PartitionKey
	if keyed {
		pk = ids.PartitionKeyOf(c.key)
	}
	if len(c.uuid) != len(ids.InvocationID{}.UUID) {
		// Not logged (only records of earlier versions lack it): derived as before.
		return ids.InvocationID{PartitionKey: pk, UUID: calleeID(caller, "", c.idIdx).UUID}
	}
	callee := ids.InvocationID{PartitionKey: pk}
	copy(callee.UUID[:], c.uuid)
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
	// The trace context the callee continues (logrecord.Entry.TraceParent), unless the
	// command's own headers name one.
	traceParent, traceState string
	uuid                    []byte // logrecord.Entry.CallUUID
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
	calleeRules, err := a.rules(rulesCallee)
	if err != nil {
		return err
	}
	var callee ids.InvocationID
	if calleeRules {
		callee = calleeOfCall(caller, target, c)
		if target.HandlerType == "WORKFLOW" {
			c.idempotencyKey = nil // the workflow's one run, whatever the key
		}
	} else {
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
	traced := false
	for _, h := range c.headers {
		inv.Headers = append(inv.Headers, logrecord.Header{Key: h.Key, Value: h.Value})
		traced = traced || strings.EqualFold(h.Key, "traceparent") || strings.EqualFold(h.Key, "tracestate")
	}
	if !traced && c.traceParent != "" {
		inv.Headers = append(inv.Headers, logrecord.Header{Key: "traceparent", Value: c.traceParent})
		if c.traceState != "" {
			inv.Headers = append(inv.Headers, logrecord.Header{Key: "tracestate", Value: c.traceState})
		}
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

// notifiedKey is the key under which the store indexes notification n of a journal (a
// completion, a signal by id or by name); ok is false for other notifications.
func notifiedKey(n *protocol.Notification) (kind byte, ident []byte, ok bool) {
	switch n.Kind {
	case protocol.NotificationIDCompletion:
		return store.NotifyCompletion, store.CompletionIdent(n.CompletionID), true
	case protocol.NotificationIDSignal:
		return store.NotifySignal, store.CompletionIdent(n.SignalID), true
	case protocol.NotificationIDSignalName:
		return store.NotifyName, []byte(n.SignalName), true
	}
	return 0, nil, false
}

// addNotification appends a notification to a journal and wakes whoever waits for it. A
// completion is added once: a second result for the same completion id is dropped.
func (a *applier) addNotification(id []byte, st *store.Status, e store.JournalEntry, n *protocol.Notification) error {
	var dup bool
	var err error
	if kind, ident, ok := notifiedKey(n); ok {
		dup, err = a.txn.Notified(id, kind, ident)
	}
	if err != nil || dup {
		return err // the first completion of a completion, awakeable or signal wins
	}
	if err := a.touch(st); err != nil {
		return err
	}
	idx := st.JournalLen
	e.AppendedAt = a.rec.Time
	a.txn.PutJournalEntry(id, idx, e)
	st.JournalLen++
	if kind, ident, ok := notifiedKey(n); ok {
		a.txn.MarkNotified(id, kind, ident, idx)
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

// getPromise answers GetPromise (now if the workflow's promise is completed, else when it
// is) and PeekPromise (now, void if not completed). Promises are scoped to the workflow
// (service and key) of the invocation.
func (a *applier) getPromise(id []byte, st *store.Status, name string, cid uint32, peek bool) error {
	svc, key := st.Target.Service, st.Target.Key
	pr, err := a.txn.Promise(svc, key, name)
	if err != nil {
		return err
	}
	if peek {
		n := protocol.CompletionNotification(cid)
		if pr.Completed {
			n = promiseResult(n, pr.Result)
		} else {
			n.WithVoid()
		}
		return a.notifyNew(id, st, protocol.PeekPromiseCompletionType, n)
	}
	if pr.Completed {
		return a.notifyNew(id, st, protocol.GetPromiseCompletionType, promiseResult(protocol.CompletionNotification(cid), pr.Result))
	}
	pr.Waiters = append(pr.Waiters, store.PromiseWaiter{InvocationID: id, CompletionID: cid})
	return a.txn.PutPromise(svc, key, name, pr)
}

// completePromise completes a workflow's promise once and answers everyone waiting for it.
func (a *applier) completePromise(id []byte, st *store.Status, name string, cid uint32, res store.Result) error {
	svc, key := st.Target.Service, st.Target.Key
	pr, err := a.txn.Promise(svc, key, name)
	if err != nil {
		return err
	}
	if pr.Completed {
		n := protocol.CompletionNotification(cid).WithFailure(protocol.Failure{Code: 409, Message: "promise was already completed"})
		return a.notifyNew(id, st, protocol.CompletePromiseCompletionType, n)
	}
	pr.Completed, pr.Result = true, res
	waiters := pr.Waiters
	pr.Waiters = nil
	if err := a.txn.PutPromise(svc, key, name, pr); err != nil {
		return err
	}
	// The command's own completion first, then the waiters': when the completing invocation
	// also waits for the promise, its journal has them in that order, as in Restate.
	if err := a.notifyNew(id, st, protocol.CompletePromiseCompletionType, protocol.CompletionNotification(cid).WithVoid()); err != nil {
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
		if err := a.notifyNew(w.InvocationID, wst, protocol.GetPromiseCompletionType, promiseResult(protocol.CompletionNotification(w.CompletionID), res)); err != nil {
			return err
		}
		if wst != st {
			if err := a.putStatus(w.InvocationID, wst); err != nil {
				return err
			}
		}
	}
	return nil
}

// notifyNew adds a notification that the runtime creates (not one the SDK sent).
func (a *applier) notifyNew(to []byte, st *store.Status, typ protocol.MessageType, n *protocol.Notification) error {
	return a.addNotification(to, st, store.JournalEntry{Type: uint16(typ), Payload: n.Marshal()}, n)
}

func promiseResult(n *protocol.Notification, r store.Result) *protocol.Notification {
	if r.Failed {
		return n.WithFailure(protocol.Failure{Code: r.Code, Message: r.Message})
	}
	return n.WithValue(r.Value)
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
		keyed, err := a.rules(rulesCallee)
		if err != nil {
			return err
		}
		// By rulesCallee a target with a key is an object's (the SDK sends one only for
		// keyed services), on its key's partition even when the key is empty.
		keyed = (keyed && r.ServiceKey != nil) || key != ""
		pk := ids.PartitionKeyOf(r.IdempotencyKey)
		if keyed {
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
