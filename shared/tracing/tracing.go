// Package tracing owns the process's OpenTelemetry tracer: spans of ingress requests and
// invocation attempts, exported over OTLP gRPC to Restate's `tracing-endpoint` when it is
// set, and the W3C trace context (traceparent, tracestate) that links a caller's trace to
// the handler's. Without an endpoint nothing is recorded and a caller's trace context is
// passed on to the handler unchanged.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Attribute keys of our spans.
const (
	AttrInvocationID = attribute.Key("restate.invocation.id")
	AttrTarget       = attribute.Key("restate.invocation.target")
	AttrAttempt      = attribute.Key("restate.invocation.attempt") // 1 for the first, +1 per failed attempt since the last progress
)

// Propagator reads and writes W3C trace context headers.
var Propagator = propagation.TraceContext{}

var (
	enabled atomic.Bool
	tracer  atomic.Pointer[trace.Tracer]
)

func init() {
	var t trace.Tracer = noop.NewTracerProvider().Tracer("")
	tracer.Store(&t)
}

// Enabled reports whether spans are recorded and exported (Setup with an endpoint).
// Callers skip building spans otherwise: the hot path pays nothing.
func Enabled() bool { return enabled.Load() }

// Tracer is the process's tracer (a no-op one until Setup).
func Tracer() trace.Tracer { return *tracer.Load() }

// Setup exports spans to endpoint (OTLP gRPC, e.g. http://localhost:4317) as service
// "restate-server" with the node's name, and returns what flushes and stops the export.
// An empty endpoint leaves tracing off.
func Setup(endpoint, nodeName string) (shutdown func(context.Context) error, err error) {
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing-endpoint %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "restate-server"),
		attribute.String("service.instance.id", nodeName),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
	)
	var t trace.Tracer = tp.Tracer("gorestate")
	tracer.Store(&t)
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		var noopTracer trace.Tracer = noop.NewTracerProvider().Tracer("")
		tracer.Store(&noopTracer)
		return tp.Shutdown(ctx)
	}, nil
}

// Extract returns ctx with the remote span context that h carries, if any.
func Extract(ctx context.Context, h http.Header) context.Context {
	return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject writes ctx's span context into h.
func Inject(ctx context.Context, h http.Header) {
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}
