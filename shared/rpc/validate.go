package rpc

import (
	"errors"
	"fmt"

	"gorestate.dev/shared/ids"
)

// ErrInvalidRequest is returned for a worker request that could never be applied (no valid
// invocation id, no target): it is refused before anything reaches the log.
var ErrInvalidRequest = errors.New("rpc: invalid request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

func validID(id []byte) error {
	if _, err := ids.InvocationIDFromBytes(id); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// Validate checks what apply relies on: a well-formed id and a named target.
func (r *InvokeRequest) Validate() error {
	if err := validID(r.InvocationID); err != nil {
		return err
	}
	if r.Target.Service == "" || r.Target.Handler == "" {
		return invalid("target %q/%q lacks a service or handler name", r.Target.Service, r.Target.Handler)
	}
	if r.CompletionRetention < 0 || r.JournalRetention < 0 {
		return invalid("negative retention")
	}
	return nil
}

// Validate checks the invocation id.
func (r *AttachRequest) Validate() error { return validID(r.InvocationID) }

// Validate checks the invocation id.
func (r *SignalRequest) Validate() error { return validID(r.InvocationID) }

// Validate checks the invocation id and the operation.
func (r *ManageRequest) Validate() error {
	if err := validID(r.InvocationID); err != nil {
		return err
	}
	switch r.Op {
	case OpCancel, OpKill, OpPurge, OpResume, OpPause, OpPurgeJournal:
		return nil
	}
	return invalid("unknown operation %q", r.Op)
}

// Validate checks the invocation id and the deployment.
func (r *RestartAsNewRequest) Validate() error {
	if err := validID(r.InvocationID); err != nil {
		return err
	}
	switch d := r.Deployment; {
	case d == "" || d == RestartDeploymentLatest || d == RestartDeploymentKeep:
	case !ids.ValidDeploymentID(d):
		return invalid("deployment %q is neither latest, keep nor a deployment id", d)
	}
	return nil
}

// Validate checks that the patch names an object.
func (r *PatchStateRequest) Validate() error {
	if r.Service == "" {
		return invalid("state patch without a service name")
	}
	return nil
}
