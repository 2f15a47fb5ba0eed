package crash

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"gorestate.dev/clusterharness/harness"
)

// collector is an OTLP gRPC trace receiver that keeps every span it gets.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) find(name, traceID string) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.Name == name && hex.EncodeToString(s.TraceId) == traceID {
			return s
		}
	}
	return nil
}

func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return c, "http://" + ln.Addr().String()
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			if v := a.Value.GetStringValue(); v != "" {
				return v
			}
			if v := a.Value.GetIntValue(); v != 0 {
				return strconv.FormatInt(v, 10)
			}
		}
	}
	return ""
}

// TestTracing: with tracing-endpoint set, an ingress request and the invocation's attempt
// are exported as spans of the caller's trace (W3C traceparent), with the invocation id,
// target and attempt as attributes, and the handler runs in the attempt's span context.
// Without an endpoint, the caller's trace context reaches the handler unchanged.
func TestTracing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	col, endpoint := startCollector(t)
	uri := harness.StartExamples(t)
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	caller := map[string]string{"traceparent": "00-" + traceID + "-" + callerSpan + "-01"}

	traced := NewServer(t, serverBin)
	traced.Setenv("RESTATE_TRACING_ENDPOINT=" + endpoint)
	traced.Start()
	harness.Register(t, traced.Admin, uri)
	resp, err := harness.Send(http.MethodPost, traced.Ingress+"/Traced/whoami", "", caller)
	if err != nil || resp.Status != 200 {
		t.Fatalf("whoami: %v %+v", err, resp)
	}
	seen := strings.Trim(resp.Body, `"`)
	if !strings.HasPrefix(seen, traceID+"-") || strings.HasSuffix(seen, callerSpan) {
		t.Fatalf("the handler ran in %q, want the caller's trace %s in a span of ours", seen, traceID)
	}
	var ingress, attempt *tracepb.Span
	harness.Eventually(t, 20*time.Second, "the ingress and attempt spans at the collector", func() bool {
		ingress, attempt = col.find("ingress Traced/whoami", traceID), col.find("invoke Traced/whoami", traceID)
		return ingress != nil && attempt != nil
	})
	if got := hex.EncodeToString(ingress.ParentSpanId); got != callerSpan {
		t.Errorf("ingress span's parent %s, want the caller's span %s", got, callerSpan)
	}
	if got, want := hex.EncodeToString(attempt.ParentSpanId), hex.EncodeToString(ingress.SpanId); got != want {
		t.Errorf("attempt span's parent %s, want the ingress span %s", got, want)
	}
	if got := traceID + "-" + hex.EncodeToString(attempt.SpanId); got != seen {
		t.Errorf("the handler ran in %s, want the attempt span %s", seen, got)
	}
	id := resp.Header.Get("x-restate-id")
	if attr(attempt, "restate.invocation.id") != id || attr(ingress, "restate.invocation.id") != id {
		t.Errorf("invocation id attributes %q / %q, want %q", attr(ingress, "restate.invocation.id"), attr(attempt, "restate.invocation.id"), id)
	}
	if attr(attempt, "restate.invocation.target") != "Traced/whoami" || attr(attempt, "restate.invocation.attempt") != "1" {
		t.Errorf("attempt attributes %v", attempt.Attributes)
	}

	// A call to another service: the callee's attempt is a child of the caller's attempt,
	// and each handler runs in its own attempt's span.
	const chainTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
	resp, err = harness.Send(http.MethodPost, traced.Ingress+"/Traced/chain", "", map[string]string{"traceparent": "00-" + chainTrace + "-" + callerSpan + "-01"})
	if err != nil || resp.Status != 200 {
		t.Fatalf("chain: %v %+v", err, resp)
	}
	mine, callee, _ := strings.Cut(strings.Trim(resp.Body, `"`), "|")
	var chainIngress, chainAttempt, calleeAttempt *tracepb.Span
	harness.Eventually(t, 20*time.Second, "the spans of the call chain at the collector", func() bool {
		chainIngress, chainAttempt = col.find("ingress Traced/chain", chainTrace), col.find("invoke Traced/chain", chainTrace)
		calleeAttempt = col.find("invoke Traced/whoami", chainTrace)
		return chainIngress != nil && chainAttempt != nil && calleeAttempt != nil
	})
	if got, want := hex.EncodeToString(chainAttempt.ParentSpanId), hex.EncodeToString(chainIngress.SpanId); got != want {
		t.Errorf("caller's attempt span's parent %s, want its ingress span %s", got, want)
	}
	if got, want := hex.EncodeToString(calleeAttempt.ParentSpanId), hex.EncodeToString(chainAttempt.SpanId); got != want {
		t.Errorf("callee's attempt span's parent %s, want the caller's attempt span %s", got, want)
	}
	if want := chainTrace + "-" + hex.EncodeToString(chainAttempt.SpanId); mine != want {
		t.Errorf("the caller ran in %s, want %s", mine, want)
	}
	if want := chainTrace + "-" + hex.EncodeToString(calleeAttempt.SpanId); callee != want {
		t.Errorf("the callee ran in %s, want %s", callee, want)
	}
	t.Logf("trace %s: ingress %x → attempt %x → callee attempt %x", chainTrace, chainIngress.SpanId, chainAttempt.SpanId, calleeAttempt.SpanId)

	plain := NewServer(t, serverBin)
	plain.Start()
	harness.Register(t, plain.Admin, uri)
	resp, err = harness.Send(http.MethodPost, plain.Ingress+"/Traced/whoami", "", caller)
	if err != nil || resp.Status != 200 || strings.Trim(resp.Body, `"`) != traceID+"-"+callerSpan {
		t.Fatalf("without tracing the handler should run in the caller's context %s-%s: %v %+v", traceID, callerSpan, err, resp)
	}
	resp, err = harness.Send(http.MethodPost, plain.Ingress+"/Traced/chain", "", caller)
	if want := traceID + "-" + callerSpan + "|" + traceID + "-" + callerSpan; err != nil || resp.Status != 200 || strings.Trim(resp.Body, `"`) != want {
		t.Fatalf("without tracing the caller and its callee should run in the caller's context %s: %v %+v", want, err, resp)
	}
}
