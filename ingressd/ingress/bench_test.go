package ingress

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// discardWriter is a reusable ResponseWriter, so the benchmark counts the handler's
// allocations rather than the recorder's.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }

// rewindBody is a request body that can be replayed.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkIngressCall measures the ingress's own cost of a call (parse, validate, build the
// invoke request, answer) against an invoker that answers at once.
func BenchmarkIngressCall(b *testing.B) {
	benches := []struct {
		name    string
		target  string
		body    string
		headers map[string]string
	}{
		{name: "service", target: "/Greeter/Greet", body: `"bob"`},
		{name: "object", target: "/Counter/k1/Add", body: `1`, headers: map[string]string{
			"User-Agent": "bench", "Accept": "application/json", "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}},
		{name: "idempotent", target: "/Greeter/Greet", body: `"bob"`, headers: map[string]string{"Idempotency-Key": "ik-1"}},
		{name: "send", target: "/Greeter/Greet/send", body: `"bob"`},
	}
	reg := testRegistry()
	answer := &rpc.InvokeResponse{InvocationID: answeredID.Bytes(), Output: []byte(`"Hello bob"`), SendStatus: rpc.SendAccepted}
	inv := invokerFunc(func(context.Context, *rpc.InvokeRequest) (*rpc.InvokeResponse, error) { return answer, nil })
	h := NewHandler(Options{
		Schema:        func() *schema.Registry { return reg },
		NumPartitions: func() uint32 { return testPartitions },
		Route:         func(uint32) (rpc.Worker, error) { return inv, nil },
	})
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			body := &rewindBody{}
			payload := []byte(bb.body)
			r := httptest.NewRequest(http.MethodPost, bb.target, nil)
			r.Body = body
			r.ContentLength = int64(len(payload))
			r.Header.Set("Content-Type", "application/json")
			for k, v := range bb.headers {
				r.Header.Set(k, v)
			}
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(payload)
				clear(w.header)
				h.ServeHTTP(w, r)
			}
			if w.status != http.StatusOK && w.status != http.StatusAccepted {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}
