package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

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

func errRestartIndexOutOfRange(id string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The given index is out of range of currently stored journal for invocation '%s'.", id)}
}

func errRestartCopyRangeInvalid(id string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The prefix of the journal '%s' up to 'from' (included) contains some Commands without respective Completions.", id)}
}

func errRestartDeploymentNotFound(id string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The given deployment was not found when trying to restart as new the invocation '%s'.", id)}
}

// errRestartIncompatibleDeployment names the deployment's protocol versions as Rust's Debug
// renders a RangeInclusive.
func errRestartIncompatibleDeployment(id string, resp *rpc.RestartAsNewResponse) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The invocation '%s' is running on protocol version '%d', while the chosen deployment '%s' supports the range %d..=%d.",
		id, resp.PinnedProtocolVersion, resp.DeploymentID, resp.MinProtocolVersion, resp.MaxProtocolVersion)}
}

func errInvalidQueryParameter(param, reason string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The query parameter '%s' is invalid. Reason: %s", param, reason)}
}

// restartAsNew serves PATCH /invocations/{id}/restart-as-new: a completed invocation whose
// journal was retained runs again under a new id, with the same target, input and headers,
// and with `from` also the journal up to that entry, on the deployment `deployment` says
// (latest, keep, or an id). The partition leader makes the checks that need the invocation.
func (a *api) restartAsNew(w http.ResponseWriter, r *http.Request, _ int) error {
	raw := mux.Vars(r)["invocation"]
	q, err := readRestartQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	id, err := ids.ParseInvocationID(raw)
	if err != nil {
		return errBadInvocationID(raw, err)
	}
	deployment := rpc.RestartDeploymentLatest
	if q.deployment != nil {
		switch d := *q.deployment; d {
		case "keep", "Keep":
			deployment = rpc.RestartDeploymentKeep
		case "latest", "Latest":
		default:
			if _, err := ids.ParseDeploymentID(d); err != nil {
				return errInvalidQueryParameter("deployment", err.Error())
			}
			deployment = d
		}
	}
	if a.opts.Workers == nil || a.opts.Workers.NumPartitions() == 0 {
		return errWorkersUnavailable(errors.New("no partitions are known yet"))
	}
	req := &rpc.RestartAsNewRequest{
		Partition: ids.PartitionOf(id.PartitionKey, a.opts.Workers.NumPartitions()), InvocationID: id.Bytes(),
		From: q.from, Deployment: deployment,
	}
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
	case rpc.RestartIndexOutOfRange:
		return errRestartIndexOutOfRange(raw)
	case rpc.RestartCopyRangeInvalid:
		return errRestartCopyRangeInvalid(raw)
	case rpc.RestartDeploymentNotFound:
		return errRestartDeploymentNotFound(raw)
	case rpc.RestartIncompatibleDeployment:
		return errRestartIncompatibleDeployment(raw, resp)
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

// restartQuery is Restate's RestartAsNewInvocationQueryParams.
type restartQuery struct {
	from       uint32
	deployment *string // as given; nil when absent
}

// readRestartQuery reads the query string as Restate's query extractor (serde_urlencoded)
// does: pairs in order, form-decoded, unknown keys ignored, a key given twice refused, and
// `from` parsed as Rust parses a u32. The deployment is checked later, after the
// invocation id, as Restate does.
func readRestartQuery(raw string) (restartQuery, error) {
	var q restartQuery
	seenFrom := false
	for _, pair := range formPairs(raw) {
		switch pair[0] {
		case "from":
			if seenFrom {
				return q, errBadQuery("duplicate field `from`")
			}
			seenFrom = true
			n, reason := parseRustU32(pair[1])
			if reason != "" {
				return q, errBadQuery("from: " + reason)
			}
			q.from = n
		case "deployment":
			if q.deployment != nil {
				return q, errBadQuery("duplicate field `deployment`")
			}
			v := pair[1]
			q.deployment = &v
		}
	}
	return q, nil
}

// formPairs splits an application/x-www-form-urlencoded string as Rust's form_urlencoded
// does: '&'-separated pairs (empty ones skipped), the key up to the first '=', '+' for a
// space, and percent escapes decoded where valid and kept as they are where not (Go's
// url.ParseQuery drops such pairs instead).
func formPairs(raw string) [][2]string {
	var out [][2]string
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		out = append(out, [2]string{formDecode(k), formDecode(v)})
	}
	return out
}

func formDecode(s string) string { return percentDecode(strings.ReplaceAll(s, "+", " ")) }

// parseRustU32 parses s as Rust's u32::from_str does: decimal digits after an optional
// '+', the first fault from the left deciding the error; reason is its Display text.
func parseRustU32(s string) (n uint32, reason string) {
	if s == "" {
		return 0, "cannot parse integer from empty string"
	}
	digits := s
	if s[0] == '+' && len(s) > 1 {
		digits = s[1:]
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, "invalid digit found in string"
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<32-1 {
			return 0, "number too large to fit in target type"
		}
	}
	return uint32(v), ""
}
