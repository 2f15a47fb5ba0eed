package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
)

// Workers reaches the partition leaders for the invocation endpoints.
type Workers interface {
	// NumPartitions is the partition count (0 before provisioning).
	NumPartitions() uint32
	// Route returns the leader of a partition.
	Route(partition uint32) (rpc.Controller, error)
}

func errBadInvocationID(s string, err error) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The request field 'invocation_id' is invalid. Reason: %v", err)}
}

// Messages as restate-server 1.7.12 answers them.
func errInvocationNotFound(id string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("The requested invocation '%s' does not exist", id)}
}

func errInvocationCompleted(id string, op rpc.ManageOp) *apiError {
	msg := fmt.Sprintf("The invocation '%s' was already completed.", id)
	switch op {
	case rpc.OpResume:
		msg = fmt.Sprintf("The invocation '%s' is completed, cannot be resumed.", id)
	case rpc.OpPause:
		msg = fmt.Sprintf("The invocation '%s' is not running, cannot be paused.", id)
	}
	return &apiError{status: http.StatusConflict, message: msg}
}

func errInvocationNotCompleted(id string) *apiError {
	return &apiError{status: http.StatusConflict, message: fmt.Sprintf("The invocation '%s' is not yet completed.", id)}
}

func errWorkersUnavailable(err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, message: fmt.Sprintf("the partition leader is unavailable: %v", err)}
}

// Leadership moves when a node fails or the controller rebalances, and the routing view
// follows within a few heartbeats: a request that found no leader is tried again for a
// while before the admin answers 503.
const (
	leaderRetryFor     = 5 * time.Second
	leaderRetryBackoff = 20 * time.Millisecond
	leaderRetryMax     = 500 * time.Millisecond
)

// workerCallTimeout bounds a request to a partition leader, which waits for its record to
// be applied: a leader that stopped answering (a frozen process) must not hold the admin
// request for ever. Past it the outcome is unknown, and the 503 says so.
var workerCallTimeout = 30 * time.Second // a variable for tests

// onLeader runs call against the leader of a partition, again while rpc.ErrNotLeader says
// that nothing was done because the leader is not (or no longer) there. call gets a context
// bounded by workerCallTimeout.
func (a *api) onLeader(ctx context.Context, partition uint32, call func(context.Context, rpc.Controller) error) error {
	ctx, cancel := context.WithTimeout(ctx, workerCallTimeout)
	defer cancel()
	deadline := time.Now().Add(leaderRetryFor)
	backoff := leaderRetryBackoff
	for {
		ctl, err := a.opts.Workers.Route(partition)
		if err == nil {
			err = call(ctx, ctl)
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return fmt.Errorf("no answer within %v; the request may still take effect: %w", workerCallTimeout, err)
		}
		if !errors.Is(err, rpc.ErrNotLeader) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, leaderRetryMax)
	}
}

// manageInvocation serves PATCH /invocations/{id}/cancel|kill|purge|purge-journal|resume|pause.
func (a *api) manageInvocation(op rpc.ManageOp) endpoint {
	return func(w http.ResponseWriter, r *http.Request, _ int) error {
		return a.manage(w, r, mux.Vars(r)["invocation"], op)
	}
}

// deleteInvocation serves the deprecated DELETE /invocations/{id}?mode=cancel|kill|purge.
func (a *api) deleteInvocation(w http.ResponseWriter, r *http.Request, _ int) error {
	op := rpc.OpCancel
	if vs, ok := r.URL.Query()["mode"]; ok {
		// Restate's serde enum takes each variant's name lower-case or capitalised.
		switch v := vs[0]; v {
		case "cancel", "Cancel":
			op = rpc.OpCancel
		case "kill", "Kill":
			op = rpc.OpKill
		case "purge", "Purge":
			op = rpc.OpPurge
		default:
			return errBadQuery("mode: unknown variant `" + v + "`, expected one of `Cancel`, `cancel`, `Kill`, `kill`, `Purge`, `purge`")
		}
	}
	return a.manage(w, r, mux.Vars(r)["invocation"], op)
}

func (a *api) manage(w http.ResponseWriter, r *http.Request, raw string, op rpc.ManageOp) error {
	id, err := ids.ParseInvocationID(raw)
	if err != nil {
		return errBadInvocationID(raw, err)
	}
	if a.opts.Workers == nil || a.opts.Workers.NumPartitions() == 0 {
		return errWorkersUnavailable(errors.New("no partitions are known yet"))
	}
	partition := ids.PartitionOf(id.PartitionKey, a.opts.Workers.NumPartitions())
	var outcome rpc.ManageOutcome
	err = a.onLeader(r.Context(), partition, func(ctx context.Context, ctl rpc.Controller) (err error) {
		outcome, err = ctl.Manage(ctx, &rpc.ManageRequest{Partition: partition, InvocationID: id.Bytes(), Op: op})
		return err
	})
	if err != nil {
		return errWorkersUnavailable(err)
	}
	if r.Method == http.MethodDelete {
		// The deprecated DELETE answers 202 whatever became of the request, as
		// restate-server 1.7.12 does (an unknown id included).
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	switch outcome {
	case rpc.ManageNotFound:
		return errInvocationNotFound(raw)
	case rpc.ManageCompleted:
		return errInvocationCompleted(raw, op)
	case rpc.ManageNotCompleted:
		return errInvocationNotCompleted(raw)
	case rpc.ManageNotRunning:
		return errInvocationCompleted(raw, rpc.OpPause) // Restate's "is not running, cannot be paused."
	case rpc.ManageNotStarted:
		return &apiError{status: http.StatusTooEarly, message: fmt.Sprintf("The invocation '%s' is either inboxed or scheduled, cannot be resumed.", raw)}
	}
	status := http.StatusOK
	// A pause of a running invocation is accepted (202); of a paused or suspended one, done
	// (200), as restate-server 1.7.12 answers.
	if outcome == rpc.ManageAccepted {
		status = http.StatusAccepted // the SDK unwinds the invocation asynchronously
	}
	w.WriteHeader(status)
	return nil
}
