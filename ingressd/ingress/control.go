package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// defaultOutput serves results whose handler is not known (attach by invocation id).
var defaultOutput = &schema.OutputRules{ContentType: "application/json"}

// serveAwakeable resolves or rejects an awakeable: POST /restate/awakeables/{id}/resolve|reject
// (or /restate/a/...). The resolve body is the raw value; the reject body is a text that
// becomes a failure with code 500. As in Restate, segments after resolve|reject are ignored
// and the id is taken as sent, without percent-decoding.
func (h *handler) serveAwakeable(w http.ResponseWriter, r *http.Request, p *parsedPath) {
	if p.nargs < 2 {
		h.fail(w, r, newError(errBadAwakeablesPath))
		return
	}
	if p.args[1] != "resolve" && p.args[1] != "reject" {
		h.fail(w, r, newError(errRestateNotFound))
		return
	}
	if r.Method != http.MethodPost {
		h.fail(w, r, newError(errMethodNotAllowed))
		return
	}
	body, aerr := h.readBody(r)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	raw := p.args[0]
	inv, idx, err := ids.ParseAwakeableID(raw)
	if err != nil {
		// Restate tries the legacy (prom_1) form next and reports why that failed: a sign_1
		// id that does not decode is "id doesn't match the expected type". A well-formed
		// legacy id stays refused: this server has no V1–V3 journals to complete.
		if _, _, lerr := ids.ParseLegacyAwakeableID(raw); lerr != nil {
			err = lerr
		}
	}
	if err == nil && idx < protocol.FirstAwakeableSignalID {
		err = fmt.Errorf("signal index %d is reserved, awakeables start at %d", idx, protocol.FirstAwakeableSignalID)
	}
	if err != nil {
		h.fail(w, r, newError(errBadAwakeableID, raw, err))
		return
	}
	req := &rpc.SignalRequest{InvocationID: inv.Bytes(), SignalID: idx, Value: body}
	if p.args[1] == "reject" {
		// The message is text to the SDKs, which fail on invalid UTF-8; Restate replaces
		// such bytes as well.
		req.Value, req.Failure = nil, &rpc.Failure{Code: 500, Message: strings.ToValidUTF8(string(body), "\uFFFD")}
	}
	n := h.opts.NumPartitions()
	if n == 0 {
		h.fail(w, r, newError(errNotProvisioned))
		return
	}
	req.Partition = ids.PartitionOf(inv.PartitionKey, n)
	err = h.withLeader(r.Context(), req.Partition, func(wk rpc.Worker) error { return wk.Signal(r.Context(), req) })
	if err != nil {
		h.fail(w, r, asAPIError(err, req.Partition))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// readBody reads a request body within the size limit.
func (h *handler) readBody(r *http.Request) ([]byte, *apiError) {
	b, err := io.ReadAll(io.LimitReader(r.Body, h.maxBody+1))
	if err != nil {
		return nil, newError(errBodyRead, err)
	}
	if int64(len(b)) > h.maxBody {
		return nil, newError(errBodyLimitWhileReading)
	}
	return b, nil
}

// targetFields are the fields of Restate's InvocationTargetRequest, the JSON body of
// POST /restate/attach|output|lookup. Restate reads a flat object whose "target" names the
// form and whose other fields are that form's:
//
//	{"target":"invocation","invocationId":"inv_…"}
//	{"target":"idempotentInvocation","service":"S","key":"k","handler":"h","idempotencyKey":"ik","scope":"s"}
//	{"target":"workflow","workflowName":"W","workflowKey":"k","scope":"s"}
//
// key and scope are optional (null is absent); a present key, even "", makes the target a
// keyed one. Unknown fields are ignored, as Restate's serde does. We also read the nested form
// {"target":{"workflow":{…}}} of earlier versions of this server, which Restate refuses.
type targetFields struct {
	Target         json.RawMessage `json:"target"`
	InvocationID   *string         `json:"invocationId"`
	WorkflowName   *string         `json:"workflowName"`
	WorkflowKey    *string         `json:"workflowKey"`
	Service        *string         `json:"service"`
	Key            *string         `json:"key"`
	Handler        *string         `json:"handler"`
	IdempotencyKey *string         `json:"idempotencyKey"`
	Scope          *string         `json:"scope"`
}

// Restate's names of the target forms.
const (
	targetInvocation           = "invocation"
	targetIdempotentInvocation = "idempotentInvocation"
	targetWorkflow             = "workflow"
)

// parseTargetBody decodes a target body into its form and fields; the errors read like
// serde's, which Restate reports.
func parseTargetBody(body []byte) (string, *targetFields, error) {
	var t targetFields
	if err := json.Unmarshal(body, &t); err != nil {
		return "", nil, jsonFieldError(err)
	}
	var form string
	switch tg := bytes.TrimSpace(t.Target); {
	case len(tg) == 0 || string(tg) == "null":
		return "", nil, errors.New("missing field `target`")
	case tg[0] == '{':
		// The nested form: exactly one form name holding that form's fields.
		var nested map[string]*targetFields
		if err := json.Unmarshal(tg, &nested); err != nil {
			return "", nil, jsonFieldError(err)
		}
		if len(nested) != 1 {
			return "", nil, errors.New("target must name exactly one of `workflow`, `idempotentInvocation`, `invocation`")
		}
		for name, fields := range nested {
			if fields == nil {
				return "", nil, fmt.Errorf("invalid type: null, expected struct variant %s", name)
			}
			form, t = name, *fields
		}
	default:
		if err := json.Unmarshal(tg, &form); err != nil {
			return "", nil, errors.New("invalid type for `target`, expected a string")
		}
	}
	var err error
	need := func(name string, v *string) {
		if err == nil && v == nil {
			err = fmt.Errorf("missing field `%s`", name)
		}
	}
	switch form {
	case targetInvocation:
		need("invocationId", t.InvocationID)
	case targetIdempotentInvocation:
		need("service", t.Service)
		need("handler", t.Handler)
		need("idempotencyKey", t.IdempotencyKey)
	case targetWorkflow:
		need("workflowName", t.WorkflowName)
		need("workflowKey", t.WorkflowKey)
	default:
		err = fmt.Errorf("unknown variant `%s`, expected one of `workflow`, `idempotentInvocation`, `invocation`", form)
	}
	if err != nil {
		return "", nil, err
	}
	return form, &t, nil
}

// jsonFieldError rewords a type error without the Go struct it names.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("invalid type: %s, expected %s for field `%s`", te.Value, te.Type, te.Field)
	}
	return err
}

// serveAttach answers attach (wait for the result) and output (result or 470) requests in
// every addressing form, and lookup (compute the invocation id).
func (h *handler) serveAttach(w http.ResponseWriter, r *http.Request, p *parsedPath) {
	var (
		id     ids.InvocationID
		op     string
		out    = defaultOutput
		aerr   *apiError
		lookup = p.kind == routeLookup
	)
	switch {
	case p.kind == routeWorkflow:
		id, op, out, aerr = h.workflowTarget(p)
	case p.kind == routeInvocation:
		id, op, out, aerr = h.invocationTarget(r, p)
	case (p.kind == routeAttach || p.kind == routeOutput) && p.nargs == 1:
		id, aerr = parseID(p.args[0])
		op = map[routeKind]string{routeAttach: "attach", routeOutput: "output"}[p.kind]
	case (p.kind == routeAttach || p.kind == routeOutput || lookup) && p.nargs == 0:
		if r.Method != http.MethodPost {
			h.fail(w, r, newError(errMethodNotAllowed))
			return
		}
		id, out, aerr = h.targetFromBody(r)
		op = map[routeKind]string{routeAttach: "attach", routeOutput: "output", routeLookup: "lookup"}[p.kind]
	default:
		h.fail(w, r, newError(errBadRestatePath))
		return
	}
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	if lookup {
		// Restate's answer, without the newline an Encoder would add.
		b, _ := json.Marshal(struct {
			InvocationID string `json:"invocationId"`
		}{id.String()})
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(b)
		return
	}
	if p.nargs > 0 && r.Method != http.MethodGet {
		h.fail(w, r, newError(errMethodNotAllowed))
		return
	}
	n := h.opts.NumPartitions()
	if n == 0 {
		h.fail(w, r, newError(errNotProvisioned))
		return
	}
	req := &rpc.AttachRequest{Partition: ids.PartitionOf(id.PartitionKey, n), InvocationID: id.Bytes(), Wait: op == "attach"}
	var resp *rpc.InvokeResponse
	err := h.withLeader(r.Context(), req.Partition, func(wk rpc.Worker) (err error) {
		resp, err = wk.Attach(r.Context(), req)
		return err
	})
	switch {
	case errors.Is(err, rpc.ErrNotFound) && req.Wait:
		// Restate answers a failed attach as the invocation's own failure.
		writeCallResult(w, id.String(), out, &rpc.InvokeResponse{Failure: &rpc.Failure{Code: http.StatusNotFound, Message: "not found"}})
	case errors.Is(err, rpc.ErrNotFound):
		h.fail(w, r, newError(errInvocationNotFound))
	case errors.Is(err, rpc.ErrNotCompleted):
		h.fail(w, r, newError(errNotCompleted)) // without x-restate-id, as Restate
	case err != nil:
		h.fail(w, r, asAPIError(err, req.Partition))
	default:
		writeCallResult(w, id.String(), out, resp)
	}
}

// isAttachOp reports whether the last segment of an attach path names an operation.
func isAttachOp(op string) bool { return op == "attach" || op == "output" }

// workflowTarget reads /restate/workflow/{name}/{key}/attach|output as Restate does: the key
// is percent-decoded, the name is not, segments after the operation are ignored, and an
// unknown operation is "not found".
func (h *handler) workflowTarget(p *parsedPath) (ids.InvocationID, string, *schema.OutputRules, *apiError) {
	if p.nargs < 3 {
		return ids.InvocationID{}, "", nil, newError(errBadWorkflowPath)
	}
	name := p.args[0]
	key, err := decodeKey(p.args[1])
	if err != nil {
		return ids.InvocationID{}, "", nil, newError(errBadKey, err)
	}
	op := p.args[2]
	if !isAttachOp(op) {
		return ids.InvocationID{}, "", nil, newError(errRestateNotFound)
	}
	return ids.WorkflowInvocationID(ids.PartitionKeyOf(key), name, key), op, h.runOutput(name), nil
}

// invocationTarget reads /restate/invocation/... as Restate does: {id}/{op} with two
// segments, else {service}[/{key}]/{handler}/{idempotencyKey}/{op}, where the service must
// exist (its type says whether a key follows). Only the key is percent-decoded; segments after
// the operation are ignored, and an unknown operation is "not found".
func (h *handler) invocationTarget(r *http.Request, p *parsedPath) (ids.InvocationID, string, *schema.OutputRules, *apiError) {
	if p.nargs < 2 {
		return ids.InvocationID{}, "", nil, newError(errBadInvocationPath)
	}
	if p.nargs == 2 {
		op := p.args[1]
		if !isAttachOp(op) {
			return ids.InvocationID{}, "", nil, newError(errRestateNotFound)
		}
		id, aerr := parseID(p.args[0])
		return id, op, defaultOutput, aerr
	}
	name := p.args[0]
	svc := h.opts.Schema().Service(name)
	if svc == nil {
		svc = h.refreshedService(r, name, "")
	}
	if svc == nil {
		return ids.InvocationID{}, "", nil, newError(errServiceNotFound, name)
	}
	rest, key, keyed := p.args[1:p.nargs], "", svc.Keyed()
	if keyed {
		var err error
		if key, err = decodeKey(rest[0]); err != nil {
			return ids.InvocationID{}, "", nil, newError(errBadKey, err)
		}
		rest = rest[1:]
	}
	if len(rest) < 3 {
		return ids.InvocationID{}, "", nil, newError(errBadInvocationPath)
	}
	handler, idemKey, op := rest[0], rest[1], rest[2]
	if !isAttachOp(op) {
		return ids.InvocationID{}, "", nil, newError(errRestateNotFound)
	}
	return idempotentID(svc.Name, keyed, key, handler, idemKey), op, h.handlerOutput(svc.Name, handler), nil
}

func parseID(s string) (ids.InvocationID, *apiError) {
	id, err := ids.ParseInvocationID(s)
	if err != nil {
		return id, newError(errBadInvocationID, s, err)
	}
	return id, nil
}

// idempotentID is the id of an idempotent call: its partition key comes from the object's
// key for a keyed service (even an empty key), else from the idempotency key, as the
// call's own id does (newInvokeRequest).
func idempotentID(service string, keyed bool, key, handler, idemKey string) ids.InvocationID {
	pk := ids.PartitionKeyOf(idemKey)
	if keyed {
		pk = ids.PartitionKeyOf(key)
	}
	return ids.IdempotentInvocationID(pk, service, key, handler, idemKey)
}

func (h *handler) targetFromBody(r *http.Request) (ids.InvocationID, *schema.OutputRules, *apiError) {
	body, aerr := h.readBody(r)
	if aerr != nil {
		return ids.InvocationID{}, nil, aerr
	}
	form, t, err := parseTargetBody(body)
	if err != nil {
		return ids.InvocationID{}, nil, newError(errBadTargetBody, err)
	}
	if form != targetInvocation && t.Scope != nil {
		// Restate validates the scope, then addresses the scoped invocation; scopes need
		// vqueues, which this server does not have (its /version lists no scoped objects).
		if err := validateScope(*t.Scope); err != nil {
			return ids.InvocationID{}, nil, newError(errBadScopeValue, err)
		}
		return ids.InvocationID{}, nil, newError(errScopeNeedsVQueues)
	}
	switch form {
	case targetInvocation:
		id, aerr := parseID(*t.InvocationID)
		return id, defaultOutput, aerr
	case targetWorkflow:
		name, key := *t.WorkflowName, *t.WorkflowKey
		return ids.WorkflowInvocationID(ids.PartitionKeyOf(key), name, key), h.runOutput(name), nil
	default: // targetIdempotentInvocation
		svc, handler, key := *t.Service, *t.Handler, ""
		if t.Key != nil {
			key = *t.Key
		}
		return idempotentID(svc, t.Key != nil, key, handler, *t.IdempotencyKey), h.handlerOutput(svc, handler), nil
	}
}

// maxScopeLen is the longest scope Restate accepts (RestrictedValue::MAX_LEN).
const maxScopeLen = 36

// validateScope applies Restate's rules for a scope ("restricted value"), with its messages.
func validateScope(s string) error {
	switch {
	case s == "":
		return errors.New("value cannot be empty")
	case len(s) > maxScopeLen:
		return fmt.Errorf("value too long: %d bytes (max %d)", len(s), maxScopeLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return errors.New("value contains characters outside the allowed set [a-zA-Z0-9_.-]")
		}
	}
	return nil
}

// handlerOutput is the output rules of a handler, or the default.
func (h *handler) handlerOutput(service, handler string) *schema.OutputRules {
	if svc := h.opts.Schema().Service(service); svc != nil {
		if hd := svc.Handler(handler); hd != nil {
			return &hd.Output
		}
	}
	return defaultOutput
}

// runOutput is the output rules of a workflow's run handler.
func (h *handler) runOutput(workflow string) *schema.OutputRules {
	if svc := h.opts.Schema().Service(workflow); svc != nil {
		for i := range svc.Handlers {
			if svc.HandlerTypeOf(&svc.Handlers[i]) == schema.HandlerWorkflow {
				return &svc.Handlers[i].Output
			}
		}
	}
	return defaultOutput
}

// withLeader runs call on the partition's leader, retrying while leadership moves.
func (h *handler) withLeader(ctx context.Context, partition uint32, call func(rpc.Worker) error) error {
	backoff := h.leaderBackoff
	for attempt := 1; ; attempt++ {
		wk, err := h.opts.Route(partition)
		if err == nil && wk == nil {
			err = errNilInvoker
		}
		if err == nil {
			err = call(wk)
		}
		if !errors.Is(err, rpc.ErrNotLeader) || attempt >= h.leaderAttempts {
			return err
		}
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		backoff *= 2
	}
}

func asAPIError(err error, partition uint32) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, rpc.ErrNotLeader) {
		return newError(errNoLeader, partition, 0, err)
	}
	if errors.Is(err, rpc.ErrOutcomeUnknown) {
		return newError(errOutcomeUnknown, partition, err)
	}
	return newError(errInvokeFailed, partition, err)
}
