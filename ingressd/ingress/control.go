package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
// becomes a failure with code 500.
func (h *handler) serveAwakeable(w http.ResponseWriter, r *http.Request, p *parsedPath) {
	if p.nargs != 2 || (p.args[1] != "resolve" && p.args[1] != "reject") {
		h.fail(w, r, newError(errRestateNotFound))
		return
	}
	if r.Method != http.MethodPost {
		h.fail(w, r, newError(errMethodNotAllowed))
		return
	}
	raw, _ := url.PathUnescape(p.args[0])
	inv, idx, err := ids.ParseAwakeableID(raw)
	if err == nil && idx < protocol.FirstAwakeableSignalID {
		err = fmt.Errorf("signal index %d is reserved, awakeables start at %d", idx, protocol.FirstAwakeableSignalID)
	}
	if err != nil {
		h.fail(w, r, newError(errBadAwakeableID, raw, err))
		return
	}
	body, aerr := h.readBody(r)
	if aerr != nil {
		h.fail(w, r, aerr)
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

// attachTarget is the JSON body of POST /restate/attach|output|lookup.
type attachTarget struct {
	Target struct {
		Invocation *struct {
			InvocationID string `json:"invocationId"`
		} `json:"invocation"`
		Workflow *struct {
			WorkflowName string `json:"workflowName"`
			WorkflowKey  string `json:"workflowKey"`
		} `json:"workflow"`
		IdempotentInvocation *struct {
			Service        string `json:"service"`
			Key            string `json:"key"`
			Handler        string `json:"handler"`
			IdempotencyKey string `json:"idempotencyKey"`
		} `json:"idempotentInvocation"`
	} `json:"target"`
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
	arg := func(i int) string { s, _ := url.PathUnescape(p.args[i]); return s }
	switch {
	case p.kind == routeWorkflow && p.nargs == 3:
		id = ids.WorkflowInvocationID(ids.PartitionKeyOf(arg(1)), p.args[0], arg(1))
		op, out = p.args[2], h.runOutput(p.args[0])
	case p.kind == routeInvocation && p.nargs == 2:
		id, aerr = parseID(arg(0))
		op = p.args[1]
	case p.kind == routeInvocation && (p.nargs == 4 || p.nargs == 5):
		svc, key, handler, ik := p.args[0], "", arg(1), arg(2)
		keyed := p.nargs == 5
		if keyed {
			key, handler, ik = arg(1), arg(2), arg(3)
		}
		id = idempotentID(svc, keyed, key, handler, ik)
		op, out = p.args[p.nargs-1], h.handlerOutput(svc, handler)
	case (p.kind == routeAttach || p.kind == routeOutput) && p.nargs == 1:
		id, aerr = parseID(arg(0))
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
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"invocationId": id.String()})
		return
	}
	if op != "attach" && op != "output" {
		h.fail(w, r, newError(errBadRestatePath))
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

// keyed reports whether service is a virtual object or workflow; a service the schema does
// not know is keyed when a key is given.
func (h *handler) keyed(service, key string) bool {
	if svc := h.opts.Schema().Service(service); svc != nil {
		return svc.Keyed()
	}
	return key != ""
}

func (h *handler) targetFromBody(r *http.Request) (ids.InvocationID, *schema.OutputRules, *apiError) {
	body, aerr := h.readBody(r)
	if aerr != nil {
		return ids.InvocationID{}, nil, aerr
	}
	var t attachTarget
	if err := json.Unmarshal(body, &t); err != nil {
		return ids.InvocationID{}, nil, newError(errBadTargetBody, err)
	}
	switch tg := t.Target; {
	case tg.Invocation != nil:
		id, aerr := parseID(tg.Invocation.InvocationID)
		return id, defaultOutput, aerr
	case tg.Workflow != nil:
		wf := tg.Workflow
		return ids.WorkflowInvocationID(ids.PartitionKeyOf(wf.WorkflowKey), wf.WorkflowName, wf.WorkflowKey), h.runOutput(wf.WorkflowName), nil
	case tg.IdempotentInvocation != nil:
		ii := tg.IdempotentInvocation
		return idempotentID(ii.Service, h.keyed(ii.Service, ii.Key), ii.Key, ii.Handler, ii.IdempotencyKey), h.handlerOutput(ii.Service, ii.Handler), nil
	}
	return ids.InvocationID{}, nil, newError(errBadTargetBody, errors.New("target must be one of invocation, workflow, idempotentInvocation"))
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
	return newError(errInvokeFailed, partition, err)
}
