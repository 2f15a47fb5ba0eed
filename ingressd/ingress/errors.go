package ingress

import (
	"fmt"
	"net/http"
)

// errorKind names one entry of the catalogue below.
type errorKind uint8

// The catalogue of every error the ingress answers by itself (source "ingress"). Statuses and
// message texts are the ones restate-server 1.7.12 answers; testdata/reference_1.7.12.txt
// holds the observed requests and answers, and TestReferenceMatrix replays them.
const (
	errBadPath errorKind = iota
	errBadInvokePath
	errBadRestatePath
	errBadKey
	errRestateNotFound
	errServiceNotFound
	errHandlerNotFound
	errNotPublic
	errIdempotencyOnWorkflow
	errMethodNotAllowed
	errBodyTooLarge
	errBodyLimitWhileReading
	errBodyRead
	errEmptyContentType
	errContentTypeMismatch
	errUnexpectedBody
	errEmptyBody
	errBadInputRules
	errBadDelay
	errDelayOnCall
	errScopeNeedsVQueues
	errNotProvisioned
	errNoLeader
	errRouting
	errInvokeUnavailable
	errInvokeFailed
	errOutcomeUnknown
	errBadInvocationID
	errBadAwakeableID
	errInvocationNotFound
	errNotCompleted
	errBadTargetBody
	errBadHeader
	errBadScopeValue
	errBadAwakeablesPath
	errBadInvocationPath
	errBadWorkflowPath
	numErrorKinds
)

var catalogue = [numErrorKinds]struct {
	status int
	format string // fmt verbs take the arguments given to newError
}{
	errBadPath:               {http.StatusBadRequest, "bad path: %s"},
	errBadInvokePath:         {http.StatusBadRequest, "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler"},
	errBadRestatePath:        {http.StatusBadRequest, "bad path, expected /restate/call/:service/:handler, /restate/send/:service/:handler, /restate/scope/:scope/call/:service/:handler, /restate/attach/:invocation_id, /restate/output/:invocation_id, or /restate/lookup"},
	errBadKey:                {http.StatusBadRequest, "bad path, cannot decode key: %v"},
	errRestateNotFound:       {http.StatusNotFound, "not found"},
	errServiceNotFound:       {http.StatusNotFound, "service '%s' not found, make sure to register the service before calling it."},
	errHandlerNotFound:       {http.StatusNotFound, "the service '%s' exists, but the handler '%s' was not found, check that the handler exists in the latest registered service version."},
	errNotPublic:             {http.StatusBadRequest, "the invoked service is not public"},
	errIdempotencyOnWorkflow: {http.StatusBadRequest, "cannot use the idempotency key with workflow handlers. The handler invocation will already be idempotent by the workflow key itself."},
	errMethodNotAllowed:      {http.StatusMethodNotAllowed, "method not allowed"},
	// A declared oversize Content-Length is answered in plain text before any routing (see
	// handler.serve); this JSON shape is for readBody's callers that check it themselves.
	errBodyTooLarge: {http.StatusRequestEntityTooLarge, msgLengthLimit},
	// A body without a length that runs over the limit: Restate's words, its Rust error
	// type included.
	errBodyLimitWhileReading: {http.StatusRequestEntityTooLarge, "cannot read body: LengthLimitError"},
	errBodyRead:              {http.StatusBadRequest, "cannot read body: %v"},
	errEmptyContentType:      {http.StatusBadRequest, "input validation error: Empty content-type"},
	errContentTypeMismatch:   {http.StatusBadRequest, "input validation error: Content-type '%s' does not match '%s'"},
	// The argument renders like Rust's Option debug output, Some("…") or None, as Restate does.
	errUnexpectedBody: {http.StatusBadRequest, "input validation error: Expected body and content-type to be empty, but wasn't with content-type '%s'"},
	errEmptyBody:      {http.StatusBadRequest, "input validation error: Empty body not allowed"},
	errBadInputRules:  {http.StatusBadRequest, "input validation error: Bad configuration of the input validation rules"},
	// Restate's parser messages follow the colon; ours come from config.ParseDuration.
	errBadDelay:          {http.StatusBadRequest, "bad delay query parameter, must be a ISO8601 duration: %v"},
	errDelayOnCall:       {http.StatusBadRequest, "cannot use the delay query parameter with calls. The delay is supported only with sends"},
	errScopeNeedsVQueues: {http.StatusBadRequest, "scoped invocations require vqueues to be enabled"},
	errNotProvisioned:    {http.StatusServiceUnavailable, "the cluster has no partitions yet (not provisioned); retry later"},
	errNoLeader:          {http.StatusServiceUnavailable, "partition %d has no reachable leader after %d attempts: %v"},
	errRouting:           {http.StatusServiceUnavailable, "cannot route to partition %d: %v"},
	errInvokeUnavailable: {http.StatusServiceUnavailable, "partition %d is unavailable: %v"},
	errInvokeFailed:      {http.StatusInternalServerError, "invocation failed on partition %d: %v"},
	// The request was logged, but its partition's leadership ended before it was applied:
	// it may or may not have taken effect; sending it again is safe where it is idempotent.
	errOutcomeUnknown:     {http.StatusServiceUnavailable, "partition %d lost its leader while the request was applied; it may or may not have taken effect: %v"},
	errBadInvocationID:    {http.StatusBadRequest, "bad invocation id '%s': %v"},
	errBadAwakeableID:     {http.StatusBadRequest, "bad awakeable id '%s': %v"},
	errInvocationNotFound: {http.StatusNotFound, "invocation not found"},
	errNotCompleted:       {470, "the invocation exists but has not completed yet"},
	// A target body (POST /restate/attach|output|lookup) that does not decode: Restate 1.7.12
	// answers 500 "cannot read body: invalid request body: <serde error>" with a Rust stack
	// trace appended; it is the client's mistake, so 400 here, with serde-like reasons.
	errBadTargetBody: {http.StatusBadRequest, "bad request body: %v"},
	// The reason is Restate's msgToStrError for a value that is not visible ASCII; ours for a
	// later value of a header that is not UTF-8 (Restate does not read later values).
	errBadHeader:         {http.StatusBadRequest, "bad header %s: %s"},
	errBadScopeValue:     {http.StatusBadRequest, "bad scope value: %s"},
	errBadAwakeablesPath: {http.StatusBadRequest, "bad path, expected either /restate/awakeables/:id/resolve or /restate/awakeables/:id/reject"},
	errBadInvocationPath: {http.StatusBadRequest, "bad path, expected either /restate/invocation/:invocation_id/output or /restate/invocation/:invocation_id/attach or /restate/invocation/:invocation_target/:idempotency_key/output or /restate/invocation/:invocation_target/:idempotency_key/attach"},
	errBadWorkflowPath:   {http.StatusBadRequest, "bad path, expected either /restate/workflow/:workflow_name/:workflow_key/output or /restate/workflow/:workflow_name/:workflow_key/attach"},
}

// apiError is an answer the ingress gives without (or instead of) a partition's answer.
type apiError struct {
	kind    errorKind
	status  int
	message string
	cause   error
}

// newError renders a catalogue entry. An error among args is kept as the cause so that
// errors.Is works on what gets logged.
func newError(kind errorKind, args ...any) *apiError {
	e := &apiError{kind: kind, status: catalogue[kind].status, message: catalogue[kind].format}
	if len(args) > 0 {
		e.message = fmt.Sprintf(e.message, args...)
		for _, a := range args {
			if err, ok := a.(error); ok {
				e.cause = err
			}
		}
	}
	return e
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.message) }

func (e *apiError) Unwrap() error { return e.cause }
