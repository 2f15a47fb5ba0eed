// Package ingress owns Restate's HTTP ingress API (PROTOCOL.md §3): it turns an HTTP call,
// send or health check into an answer, validating the request against the schema and
// forwarding each invocation to the leader of its partition. It keeps no state of its own;
// the schema, the partition count and the routing come from its Options on every request.
//
// Status codes and error messages follow restate-server 1.7.12 as observed on loopback;
// testdata/reference_1.7.12.txt records those observations and the tests replay them.
package ingress

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/shared/tracing"
)

// msgLengthLimit is the plain-text answer to a declared oversize body, as Restate's.
const msgLengthLimit = "length limit exceeded"

// DefaultMaxBodySize is the largest request body accepted when Options.MaxBodySize is 0:
// 32 MiB, Restate's default `[ingress] request-size-limit`. Larger bodies are answered 413.
const DefaultMaxBodySize int64 = 32 << 20

// Options configures the ingress handler. Schema, NumPartitions and Route are consulted on
// every request, so they must be cheap (typically atomic loads of a cached view).
type Options struct {
	// Schema returns the current registry of services; nil means nothing is registered.
	Schema func() *schema.Registry
	// RefreshSchema, if set, reads the newest registry from the source of truth. It is
	// called before answering "not found", so that a service registered a moment ago is
	// served even if the cached view has not caught up yet.
	RefreshSchema func(ctx context.Context) *schema.Registry
	// NumPartitions returns the partition count; 0 means not provisioned yet (answer 503).
	NumPartitions func() uint32
	// Route returns the invoker of the partition's leader. rpc.ErrNotLeader (from Route or
	// from Invoke) makes the ingress retry a few times with backoff before answering 503.
	Route func(partition uint32) (rpc.Worker, error)
	// LeaderOf and TableChanged, if set, name the node placed as a partition's leader and
	// signal placement changes. An invocation waiting on a leader whose partition the
	// controller moved elsewhere (its node failed, or is cut off and cannot answer) stops
	// waiting and goes to the new leader with the same invocation id.
	LeaderOf     func(partition uint32) string
	TableChanged func() <-chan struct{}
	// MaxBodySize caps request bodies in bytes; 0 means DefaultMaxBodySize.
	MaxBodySize int64
	// Logger receives request failures; nil discards them.
	Logger hclog.Logger
}

// NewHandler returns the ingress HTTP handler.
func NewHandler(opts Options) http.Handler { return newHandler(opts) }

type handler struct {
	opts    Options
	maxBody int64
	log     hclog.Logger
	now     func() time.Time
	// Retries on rpc.ErrNotLeader; tests shorten them.
	leaderAttempts int
	leaderBackoff  time.Duration
}

func newHandler(opts Options) *handler {
	h := &handler{
		opts:           opts,
		maxBody:        opts.MaxBodySize,
		log:            opts.Logger,
		now:            time.Now,
		leaderAttempts: defaultLeaderAttempts,
		leaderBackoff:  defaultLeaderBackoff,
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodySize
	}
	if h.log == nil {
		h.log = hclog.NewNullLogger()
	}
	if h.opts.Schema == nil {
		h.opts.Schema = func() *schema.Registry { return nil }
	}
	if h.opts.NumPartitions == nil {
		h.opts.NumPartitions = func() uint32 { return 0 }
	}
	if h.opts.Route == nil {
		h.opts.Route = func(uint32) (rpc.Worker, error) { return nil, rpc.ErrNotLeader }
	}
	return h
}

// ServeHTTP routes by a hand-written split of the path (see parsePath): this is the hot path
// of every benchmark, and Restate's routing depends on the schema anyway.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	h.serve(rec, r)
	observeRequest(rec.status, start)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	// Restate's HTTP layer refuses a declared oversize body before anything else, CORS
	// included, in plain text.
	if r.ContentLength > h.maxBody {
		h.log.Debug("ingress request refused", "method", r.Method, "path", requestPath(r), "status", http.StatusRequestEntityTooLarge, "content_length", r.ContentLength)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(msgLengthLimit)))
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, msgLengthLimit)
		return
	}
	applyCORS(w.Header(), r)
	if r.Method == http.MethodOptions {
		servePreflight(w, r)
		return
	}
	path, pathAndQuery := requestTarget(r)
	p, perr := parsePath(path)
	if perr != nil {
		h.fail(w, r, perr)
		return
	}
	switch p.kind {
	case routeInvoke, routeCall, routeSend:
		h.serveInvoke(w, r, &p, pathAndQuery)
	case routeHealth:
		serveHealth(w, r, h.opts.Schema())
	case routeAwakeable:
		h.serveAwakeable(w, r, &p)
	case routeInvocation, routeAttach, routeOutput, routeWorkflow, routeLookup:
		h.serveAttach(w, r, &p)
	default:
		h.fail(w, r, newError(errRestateNotFound))
	}
}

// requestTarget returns the raw path and the raw path+query. RequestURI is used as sent so
// that an encoded '/' inside a key does not split it; requests built in process have none.
func requestTarget(r *http.Request) (path, pathAndQuery string) {
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	path = uri
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		path = uri[:i]
	}
	return path, uri
}

// serveInvoke handles calls and sends. The checks run in Restate's order, which decides the
// answer when a request is wrong in several ways at once.
func (h *handler) serveInvoke(w http.ResponseWriter, r *http.Request, p *parsedPath, pathAndQuery string) {
	svc := h.opts.Schema().Service(p.service)
	if svc == nil {
		svc = h.refreshedService(r, p.service, "")
	}
	if svc == nil {
		h.fail(w, r, newError(errServiceNotFound, p.service))
		return
	}
	key, handlerName, send, err := p.target(svc.Keyed())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hd := svc.Handler(handlerName)
	if hd == nil {
		if fresh := h.refreshedService(r, p.service, handlerName); fresh != nil && fresh.Keyed() == svc.Keyed() {
			svc, hd = fresh, fresh.Handler(handlerName)
		}
	}
	if hd == nil {
		h.fail(w, r, newError(errHandlerNotFound, svc.Name, handlerName))
		return
	}
	if !svc.HandlerPublic(hd) {
		h.fail(w, r, newError(errNotPublic))
		return
	}
	inv := invocation{svc: svc, handler: hd, handlerType: svc.HandlerTypeOf(hd), key: key, send: send}
	if v, ok := r.Header[hdrIdempotencyKey]; ok && len(v) > 0 {
		if !visibleASCII(v[0]) {
			h.fail(w, r, newError(errBadHeader, "idempotency-key", msgToStrError))
			return
		}
		// An empty key is still a key, as in Restate.
		inv.idempotent, inv.idempotencyKey = true, v[0]
	}
	if inv.idempotent && inv.handlerType == schema.HandlerWorkflow {
		h.fail(w, r, newError(errIdempotencyOnWorkflow))
		return
	}
	// Restate 1.7's ingress gives a call to a service or object without an idempotency key
	// a generated one (a ULID). Ours does not: the invocation id of an idempotent call is
	// a hash of its key, and retained invocations spread over the whole key space make the
	// partition store's compactions rewrite every table (see Benchmarks, the soak); a plain
	// call keeps a time-ordered id, and its result stays for its journal retention.
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		h.fail(w, r, newError(errMethodNotAllowed))
		return
	}
	if inv.input, err = readBody(r, h.maxBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if ct := r.Header[hdrContentType]; len(ct) > 0 && !visibleASCII(ct[0]) {
		h.fail(w, r, newError(errBadHeader, "content-type", msgToStrError))
		return
	}
	if err = validateInput(&hd.Input, r.Header[hdrContentType], inv.input); err != nil {
		h.fail(w, r, err)
		return
	}
	if inv.delay, inv.delayed, err = parseDelay(r.URL.RawQuery); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := badInput(r.Header, pathAndQuery); err != nil {
		h.fail(w, r, err)
		return
	}
	if inv.delayed && !send {
		h.fail(w, r, newError(errDelayOnCall))
		return
	}
	n := h.opts.NumPartitions()
	if n == 0 {
		h.fail(w, r, newError(errNotProvisioned))
		return
	}
	headers := r.Header
	ctx := r.Context()
	if tracing.Enabled() {
		// The request's span is a child of the caller's trace, and the invocation's
		// attempts become its children: the handler sees this span's trace context.
		var span trace.Span
		ctx, span = tracing.Tracer().Start(tracing.Extract(ctx, r.Header), "ingress "+svc.Name+"/"+hd.Name,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(tracing.AttrTarget.String(svc.Name+"/"+hd.Name)))
		defer span.End()
		headers = r.Header.Clone()
		tracing.Inject(ctx, headers)
	}
	req, id := newInvokeRequest(&inv, n, forwardedHeaders(headers, pathAndQuery), h.now())
	if tracing.Enabled() {
		trace.SpanFromContext(ctx).SetAttributes(tracing.AttrInvocationID.String(id.String()))
	}
	resp, ierr := h.invokeLeader(ctx, req)
	if ierr != nil {
		var aerr *apiError
		if errors.As(ierr, &aerr) {
			h.fail(w, r, aerr)
			return
		}
		// The client is gone: nobody reads an answer. The invocation itself may exist.
		h.log.Debug("client went away", "path", requestPath(r), "invocation_id", id.String(), "error", ierr)
		return
	}
	idStr := responseID(resp, id)
	if send {
		execTime := resp.ExecutionTime
		if execTime.IsZero() && resp.SendStatus != rpc.SendPreviouslyAccepted {
			execTime = req.ExecutionTime
		}
		writeSendResult(w, idStr, resp.SendStatus, execTime)
		return
	}
	writeCallResult(w, idStr, &hd.Output, resp)
}

// responseID prefers the id the partition answered with: for an attach to an existing
// idempotent or workflow invocation it names that invocation.
func responseID(resp *rpc.InvokeResponse, computed ids.InvocationID) string {
	if len(resp.InvocationID) == ids.InvocationIDLen {
		if id, err := ids.InvocationIDFromBytes(resp.InvocationID); err == nil {
			return id.String()
		}
	}
	return computed.String()
}

// fail answers an ingress error and logs it: client mistakes at debug, server trouble at warn.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.status >= 500 {
		h.log.Warn("ingress request failed", "method", r.Method, "path", requestPath(r), "status", e.status, "error", e.message)
	} else if h.log.IsDebug() {
		h.log.Debug("ingress request refused", "method", r.Method, "path", requestPath(r), "status", e.status, "error", e.message)
	}
	writeError(w, e)
}

func requestPath(r *http.Request) string {
	p, _ := requestTarget(r)
	return p
}

// refreshedService looks the service up in a freshly read registry; nil if it is still
// unknown (or lacks the handler, when one is named).
func (h *handler) refreshedService(r *http.Request, service, handlerName string) *schema.Service {
	if h.opts.RefreshSchema == nil {
		return nil
	}
	svc := h.opts.RefreshSchema(r.Context()).Service(service)
	if svc == nil || (handlerName != "" && svc.Handler(handlerName) == nil) {
		return nil
	}
	return svc
}
