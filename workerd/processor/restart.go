package processor

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/store"
)

// Restart-as-new (admin API): a completed invocation runs again under a new id with the
// entries 0..From of its retained journal and the completions of the commands among them,
// on the deployment it was pinned to or another, as restate-server 1.7.12 does. The leader
// makes Restate's checks in Restate's order on a snapshot, resolves the deployment against
// the schema (so that the record carries it and apply needs no schema) and appends a
// RestartAsNew record; applying it checks the status again and copies the journal
// (apply_restart.go), and its outcome answers the request.

// minPrefixProtocol is the oldest service protocol whose invocations can restart from a
// journal prefix: before it the SDKs seeded their random numbers otherwise (Restate's
// reason).
const minPrefixProtocol = 6

// RestartAsNew starts a completed invocation again as a new invocation and returns once the
// record that starts it is applied. reg is the schema the deployment is resolved in.
func (l *Leader) RestartAsNew(ctx context.Context, req *rpc.RestartAsNewRequest, reg *schema.Registry) (*rpc.RestartAsNewResponse, error) {
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
	rec, refusal, err := planRestart(snap, req, reg, old, ids.NewInvocationID(old.PartitionKey).Bytes())
	snap.Release()
	if err != nil || refusal != nil {
		return refusal, err
	}
	reqID, ch, done := awaitAnswer(l, l.restarts)
	defer done()
	rec.RequestID = reqID
	// Applied by this leadership, or refused as not the leader when a newer leader's
	// announcement came first and every replica drops the record (then nothing happened,
	// and the request may go to the new leader).
	answered := func(o rpc.RestartOutcome) *rpc.RestartAsNewResponse {
		resp := &rpc.RestartAsNewResponse{Outcome: o}
		if o == rpc.RestartDone {
			resp.NewInvocationID = rec.NewInvocationID
		}
		return resp
	}
	lsn, err := l.appendApplied(ctx, &logrecord.Record{Kind: logrecord.KindRestartAsNew, RestartAsNew: rec})
	if err != nil {
		if errors.Is(err, rpc.ErrOutcomeUnknown) && l.restarted(lsn, rec.NewInvocationID) {
			return answered(rpc.RestartDone), nil
		}
		return nil, fmt.Errorf("append restart-as-new: %w", err)
	}
	select {
	case o := <-ch:
		return answered(o), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		select {
		case o := <-ch:
			return answered(o), nil
		default:
			// Applied by the processor following on, which answers nobody.
			if l.restarted(lsn, rec.NewInvocationID) {
				return answered(rpc.RestartDone), nil
			}
			return nil, rpc.ErrOutcomeUnknown
		}
	}
}

// restarted reports whether this replica applied the record at lsn and so created the
// invocation newID. Only that record can create it (newID is fresh), so a leadership that
// ended before it could answer still knows the restart happened. An apply that refused the
// restart creates nothing; that, and a record not applied yet, stay unknown to the caller.
func (l *Leader) restarted(lsn bifrost.LSN, newID []byte) bool {
	if lsn == 0 || l.p.Applied() < uint64(lsn) {
		return false
	}
	snap, err := l.Snapshot()
	if err != nil {
		return false
	}
	defer snap.Release()
	st, err := snap.Status(newID)
	return err == nil && st != nil
}

// planRestart builds the record that restarts invocation old as newID, or the answer that
// refuses it, with Restate's checks in Restate's order.
func planRestart(snap *store.Snapshot, req *rpc.RestartAsNewRequest, reg *schema.Registry, old ids.InvocationID, newID []byte) (*logrecord.RestartAsNew, *rpc.RestartAsNewResponse, error) {
	refuse := func(o rpc.RestartOutcome) (*logrecord.RestartAsNew, *rpc.RestartAsNewResponse, error) {
		return nil, &rpc.RestartAsNewResponse{Outcome: o}, nil
	}
	id := old.Bytes()
	st, err := snap.Status(id)
	switch {
	case err != nil:
		return nil, nil, err
	case st == nil:
		return refuse(rpc.RestartNotFound)
	case st.Phase == store.PhaseScheduled || st.Phase == store.PhaseInboxed:
		return refuse(rpc.RestartNotStarted)
	case st.Phase != store.PhaseCompleted:
		return refuse(rpc.RestartStillRunning)
	case st.JournalLen == 0:
		return refuse(rpc.RestartMissingInput)
	case st.Target.ServiceType == string(schema.ServiceTypeWorkflow):
		return refuse(rpc.RestartUnsupported)
	case req.From > 0 && st.ProtocolVersion < minPrefixProtocol: // 0: never pinned
		return refuse(rpc.RestartUnsupported)
	}
	rec := &logrecord.RestartAsNew{InvocationID: id, NewInvocationID: newID, From: req.From}
	if req.Deployment != rpc.RestartDeploymentKeep {
		var dp *schema.Deployment
		switch req.Deployment {
		case "", rpc.RestartDeploymentLatest:
			if svc := reg.Service(st.Target.Service); svc != nil {
				dp = reg.Deployment(svc.DeploymentID)
			}
		default:
			dp = reg.Deployment(req.Deployment)
		}
		if dp == nil {
			return refuse(rpc.RestartDeploymentNotFound)
		}
		if v := int32(st.ProtocolVersion); v != 0 && (v < dp.MinProtocolVersion || v > dp.MaxProtocolVersion) {
			return nil, &rpc.RestartAsNewResponse{
				Outcome: rpc.RestartIncompatibleDeployment, PinnedProtocolVersion: v,
				DeploymentID: dp.ID, MinProtocolVersion: dp.MinProtocolVersion, MaxProtocolVersion: dp.MaxProtocolVersion,
			}, nil
		}
		rec.DeploymentID = dp.ID
	}
	// Every command up to From must have its completions somewhere in the journal, or the
	// new invocation's replay would wait for them for ever. Restate counts the entries to
	// check up to From+1 in 32 bits: with From at its maximum that wraps to none, and the
	// apply refuses the index instead (400 either way, with another message).
	if req.From == math.MaxUint32 {
		return rec, nil, nil
	}
	if req.From >= st.JournalLen {
		return refuse(rpc.RestartCopyRangeInvalid)
	}
	journal, err := snap.Journal(id, req.From+1)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range journal[1:] {
		m := protocol.Message{Type: protocol.MessageType(e.Type), Payload: e.Payload}
		if !m.Type.IsCommand() {
			continue
		}
		cids, err := protocol.CommandCompletionIDs(m)
		if err != nil {
			// A command this version cannot read (of a newer protocol, or damaged): what
			// completes it is unknown, and so is whether a replay could get past it.
			return refuse(rpc.RestartCopyRangeInvalid)
		}
		for _, c := range cids {
			ok, err := snap.Notified(id, store.NotifyCompletion, store.CompletionIdent(c))
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				return refuse(rpc.RestartCopyRangeInvalid)
			}
		}
	}
	return rec, nil, nil
}
