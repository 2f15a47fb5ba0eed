package processor

import (
	"bytes"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// Records that complete what an invocation waits for: call results, fired timers, signals
// and awakeables, and answers to attach requests.

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
	if err := a.touch(st); err != nil {
		return err
	}
	return a.putStatus(at.InvocationID, st)
}

// deliverVoid answers "not completed yet" to a GetInvocationOutput.
func (a *applier) deliverVoid(c logrecord.Caller) error {
	return a.sendResult(c, &logrecord.InvocationResult{Void: true})
}
