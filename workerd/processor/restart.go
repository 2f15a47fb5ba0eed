package processor

import (
	"context"
	"fmt"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// Restart-as-new (admin API): a completed invocation runs again under a new id with the
// target, input and headers of its retained journal's Input command, as Restate does for a
// restart from the beginning. The new invocation is an ordinary Invoke record, which is what
// Restate proposes too when it restarts without copying journal entries; the checks happen
// here on the leader, and a change in between (a purge, say) does not matter: the record
// carries everything the new invocation needs.

// RestartAsNew starts a completed invocation again as a new invocation and returns once the
// record that starts it is applied (appendApplied).
func (l *Leader) RestartAsNew(ctx context.Context, req *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	if l.ctx.Err() != nil {
		return nil, rpc.ErrNotLeader
	}
	old, err := ids.InvocationIDFromBytes(req.InvocationID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", rpc.ErrInvalidRequest, err)
	}
	snap, err := l.Snapshot()
	if err != nil {
		return nil, err
	}
	// Same partition key: a virtual object's new invocation queues for the same object.
	inv, outcome, err := restartInvoke(snap, old, ids.NewInvocationID(old.PartitionKey).Bytes())
	snap.Release()
	if err != nil || outcome != rpc.RestartDone {
		return &rpc.RestartAsNewResponse{Outcome: outcome}, err
	}
	if _, err := l.appendApplied(ctx, &logrecord.Record{Kind: logrecord.KindInvoke, Invoke: inv}); err != nil {
		return nil, fmt.Errorf("append invoke: %w", err)
	}
	return &rpc.RestartAsNewResponse{Outcome: rpc.RestartDone, NewInvocationID: inv.InvocationID}, nil
}

// restartInvoke builds the Invoke record that restarts invocation old as newID, or says why
// it cannot be restarted, in Restate's order of checks.
func restartInvoke(snap *store.Snapshot, old ids.InvocationID, newID []byte) (*logrecord.Invoke, rpc.RestartOutcome, error) {
	id := old.Bytes()
	st, err := snap.Status(id)
	switch {
	case err != nil:
		return nil, "", err
	case st == nil:
		return nil, rpc.RestartNotFound, nil
	case st.Phase == store.PhaseScheduled || st.Phase == store.PhaseInboxed:
		return nil, rpc.RestartNotStarted, nil
	case st.Phase != store.PhaseCompleted:
		return nil, rpc.RestartStillRunning, nil
	case st.JournalLen == 0:
		return nil, rpc.RestartMissingInput, nil
	case st.Target.ServiceType == "WORKFLOW":
		return nil, rpc.RestartUnsupported, nil
	}
	journal, err := snap.Journal(id, 1)
	if err != nil {
		return nil, "", err
	}
	input := &protocol.InputCommand{}
	if protocol.MessageType(journal[0].Type) != protocol.InputCommandType || input.Unmarshal(journal[0].Payload) != nil {
		return nil, rpc.RestartMissingInput, nil
	}
	inv := &logrecord.Invoke{
		InvocationID: newID, Target: st.Target, Send: true,
		CompletionRetentionMs: st.CompletionRetentionMs, JournalRetentionMs: st.JournalRetentionMs,
		InvokedBy: logrecord.InvokedByRestart + old.String(),
	}
	if input.Value != nil {
		inv.Input = input.Value.Content
	}
	for _, h := range input.Headers {
		inv.Headers = append(inv.Headers, logrecord.Header{Key: h.Key, Value: h.Value})
	}
	return inv, rpc.RestartDone, nil
}
