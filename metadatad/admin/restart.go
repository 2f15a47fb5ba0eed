package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
)

// restartJSON is Restate's RestartAsNewInvocationResponse.
type restartJSON struct {
	NewInvocationID string `json:"new_invocation_id"`
}

// Messages and statuses as restate-server 1.7.12 answers them.
func errRestartStillRunning(id string) *apiError {
	return &apiError{status: http.StatusConflict, message: fmt.Sprintf("The invocation '%s' is still running.", id)}
}

func errRestartNotStarted(id string) *apiError {
	return &apiError{status: http.StatusTooEarly, message: fmt.Sprintf("The invocation '%s' cannot be restarted because it's not running yet.", id)}
}

func errRestartUnsupported(id string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, message: fmt.Sprintf("Restarting the invocation '%s' is not supported. Restarting workflows is not supported, and restarting invocations created using the old service protocol.", id)}
}

func errRestartMissingInput(id string) *apiError {
	return &apiError{status: http.StatusGone, message: fmt.Sprintf("The invocation '%s' cannot be restarted because the input is not available. This indicates that the journal was already purged, or not retained at all.", id)}
}

func errInvalidQueryParameter(param, reason string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The query parameter '%s' is invalid. Reason: %s", param, reason)}
}

// restartAsNew serves PATCH /invocations/{id}/restart-as-new: a completed invocation whose
// journal was retained runs again under a new id, with the same target, input and headers,
// on the latest deployment of its service. Restate's `from` (copy a journal prefix) and
// `deployment` (keep or choose the deployment) are supported only at their defaults.
func (a *api) restartAsNew(w http.ResponseWriter, r *http.Request, _ int) error {
	raw := mux.Vars(r)["invocation"]
	id, err := ids.ParseInvocationID(raw)
	if err != nil {
		return errBadInvocationID(raw, err)
	}
	if err := checkRestartQuery(r); err != nil {
		return err
	}
	if a.opts.Workers == nil || a.opts.Workers.NumPartitions() == 0 {
		return errWorkersUnavailable(errors.New("no partitions are known yet"))
	}
	req := &rpc.RestartAsNewRequest{Partition: ids.PartitionOf(id.PartitionKey, a.opts.Workers.NumPartitions()), InvocationID: id.Bytes()}
	var resp *rpc.RestartAsNewResponse
	err = a.onLeader(r.Context(), req.Partition, func(ctx context.Context, ctl rpc.Controller) (err error) {
		resp, err = ctl.RestartAsNew(ctx, req)
		return err
	})
	if err != nil {
		return errWorkersUnavailable(err)
	}
	switch resp.Outcome {
	case rpc.RestartDone:
	case rpc.RestartNotFound:
		return errInvocationNotFound(raw)
	case rpc.RestartNotStarted:
		return errRestartNotStarted(raw)
	case rpc.RestartStillRunning:
		return errRestartStillRunning(raw)
	case rpc.RestartMissingInput:
		return errRestartMissingInput(raw)
	case rpc.RestartUnsupported:
		return errRestartUnsupported(raw)
	default:
		return fmt.Errorf("restart-as-new of %s: unexpected outcome %q", raw, resp.Outcome)
	}
	newID, err := ids.InvocationIDFromBytes(resp.NewInvocationID)
	if err != nil {
		return fmt.Errorf("restart-as-new of %s: the worker answered a bad new invocation id: %w", raw, err)
	}
	writeJSON(w, http.StatusOK, restartJSON{NewInvocationID: newID.String()})
	return nil
}

// checkRestartQuery accepts Restate's query parameters at the values this server implements:
// from=0 (start over from the input) and deployment=latest, both the defaults.
func checkRestartQuery(r *http.Request) error {
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		from, err := strconv.ParseUint(v, 10, 32)
		if errors.Is(err, strconv.ErrRange) {
			return errBadQuery("from: number too large to fit in target type")
		} else if err != nil {
			return errBadQuery("from: invalid digit found in string")
		}
		if from != 0 {
			return errInvalidQueryParameter("from", "restarting from a journal prefix is not supported by this server, only from the input (from=0)")
		}
	}
	switch d := q.Get("deployment"); {
	case d == "" || d == "latest":
	case d == "keep" || ids.ValidDeploymentID(d):
		return errInvalidQueryParameter("deployment", "a restarted invocation runs on the latest deployment of its service here; only deployment=latest is supported")
	default:
		return errInvalidQueryParameter("deployment", "bad format")
	}
	return nil
}
