package ingress

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
)

// A fixed id the fake partition answers with, as it would for an attach to an existing
// invocation: the response must name it rather than the id the ingress computed.
var answeredID = ids.InvocationID{PartitionKey: 7, UUID: [16]byte{1, 2, 3}}

func TestCallResponses(t *testing.T) {
	t.Parallel()
	expires := time.Date(2026, 11, 22, 22, 13, 17, 43_000_000, time.UTC)
	tests := []struct {
		name        string
		target      string
		body        string
		resp        rpc.InvokeResponse
		wantStatus  int
		wantHeaders map[string]string // "" value = header must be absent
		wantBody    string
	}{
		{
			name: "json output", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Output: []byte(`"Hello bob"`)},
			wantStatus: 200, wantBody: `"Hello bob"`,
			wantHeaders: map[string]string{"Content-Type": "application/json", "Content-Length": "11", "Idempotency-Expires": "", "X-Restate-Error-Source": ""},
		},
		{
			name: "idempotent result has an expiry", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Output: []byte(`"Hello bob"`), IdempotencyExpires: expires},
			wantStatus: 200, wantBody: `"Hello bob"`,
			wantHeaders: map[string]string{"Idempotency-Expires": "2026-11-22T22:13:17.043+00:00"},
		},
		{
			name: "expiry is shown in UTC", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Output: []byte(`"x"`), IdempotencyExpires: expires.In(time.FixedZone("X", 3600))},
			wantStatus: 200, wantBody: `"x"`,
			wantHeaders: map[string]string{"Idempotency-Expires": "2026-11-22T22:13:17.043+00:00"},
		},
		{
			name: "empty output has no content type", target: "/Greeter/Noop",
			resp:       rpc.InvokeResponse{},
			wantStatus: 200, wantBody: "",
			wantHeaders: map[string]string{"Content-Type": "", "Content-Length": "0"},
		},
		{
			name: "empty json output has no content type either", target: "/Counter/k/Get",
			resp:       rpc.InvokeResponse{},
			wantStatus: 200, wantBody: "",
			wantHeaders: map[string]string{"Content-Type": ""},
		},
		{
			name: "empty output with setContentTypeIfEmpty", target: "/Probe/textWild", body: "x",
			resp:       rpc.InvokeResponse{},
			wantStatus: 200, wantBody: "",
			wantHeaders: map[string]string{"Content-Type": "text/plain"},
		},
		{
			name: "output without configured content type is not sniffed", target: "/Greeter/Noop",
			resp:       rpc.InvokeResponse{Output: []byte("<html>")},
			wantStatus: 200, wantBody: "<html>",
			wantHeaders: map[string]string{"Content-Type": ""},
		},
		{
			name: "terminal failure", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 418, Message: "nope"}},
			wantStatus: 418, wantBody: `{"code":418,"message":"nope","source":"invocation"}`,
			wantHeaders: map[string]string{"Content-Type": "application/json", "X-Restate-Error-Source": "invocation"},
		},
		{
			name: "failure with metadata", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 422, Message: "withmeta", Metadata: map[string]string{"b": "2", "a": "b"}}},
			wantStatus: 422, wantBody: `{"code":422,"message":"withmeta","metadata":{"a":"b","b":"2"},"source":"invocation"}`,
		},
		{
			name: "failure with stacktrace", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 500, Message: "boom \"x\"\n", Stacktrace: "at\tmain.go:1"}},
			wantStatus: 500, wantBody: `{"code":500,"message":"boom \"x\"\n","stacktrace":"at\tmain.go:1","source":"invocation"}`,
		},
		{
			name: "workflow already invoked", target: "/Signup/w1/Run", body: `"a@b"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 409, Message: "the workflow method was already invoked"}},
			wantStatus: 409, wantBody: `{"code":409,"message":"the workflow method was already invoked","source":"invocation"}`,
		},
		{
			name: "code above 999 is served as 500", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 1000, Message: "weird"}},
			wantStatus: 500, wantBody: `{"code":1000,"message":"weird","source":"invocation"}`,
		},
		{
			name: "code below 100 is served as 500", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 99, Message: "weird99"}},
			wantStatus: 500, wantBody: `{"code":99,"message":"weird99","source":"invocation"}`,
		},
		{
			name: "informational code is served as 500", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 101, Message: "x"}},
			wantStatus: 500, wantBody: `{"code":101,"message":"x","source":"invocation"}`,
		},
		{
			name: "unusual but valid code passes through", target: "/Greeter/Greet", body: `"bob"`,
			resp:       rpc.InvokeResponse{Failure: &rpc.Failure{Code: 600, Message: "code 600"}},
			wantStatus: 600, wantBody: `{"code":600,"message":"code 600","source":"invocation"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, inv := newTestHandler(t, 0)
			inv.respond = func(_ context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
				resp := tt.resp
				resp.InvocationID = answeredID.Bytes()
				return &resp, nil
			}
			r := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(tt.body))
			if tt.body != "" {
				r.Header.Set("Content-Type", "application/json")
				if strings.HasPrefix(tt.target, "/Probe/textWild") {
					r.Header.Set("Content-Type", "text/plain")
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Fatalf("answer %d %q, want %d %q", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if got := rec.Header().Get("X-Restate-Id"); got != answeredID.String() {
				t.Errorf("x-restate-id %q, want %q", got, answeredID)
			}
			for k, want := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestSendResponses(t *testing.T) {
	t.Parallel()
	fixedNow := time.Date(2026, 11, 21, 22, 13, 9, 51_234_567, time.UTC)
	tests := []struct {
		name     string
		target   string
		resp     func(req *rpc.InvokeRequest) *rpc.InvokeResponse
		wantBody string
	}{
		{
			name: "accepted", target: "/Greeter/Greet/send",
			resp: func(req *rpc.InvokeRequest) *rpc.InvokeResponse {
				return &rpc.InvokeResponse{SendStatus: rpc.SendAccepted}
			},
			wantBody: `{"invocationId":"ID","status":"Accepted"}`,
		},
		{
			name: "previously accepted", target: "/restate/send/Greeter/Greet",
			resp: func(req *rpc.InvokeRequest) *rpc.InvokeResponse {
				return &rpc.InvokeResponse{SendStatus: rpc.SendPreviouslyAccepted}
			},
			wantBody: `{"invocationId":"ID","status":"PreviouslyAccepted"}`,
		},
		{
			name: "missing status means accepted", target: "/Greeter/Greet/send",
			resp:     func(req *rpc.InvokeRequest) *rpc.InvokeResponse { return &rpc.InvokeResponse{} },
			wantBody: `{"invocationId":"ID","status":"Accepted"}`,
		},
		{
			name: "delayed, time from the partition", target: "/Greeter/Greet/send?delay=PT60S",
			resp: func(req *rpc.InvokeRequest) *rpc.InvokeResponse {
				return &rpc.InvokeResponse{SendStatus: rpc.SendAccepted, ExecutionTime: req.ExecutionTime}
			},
			wantBody: `{"invocationId":"ID","executionTime":"2026-11-21T22:14:09.051000000Z","status":"Accepted"}`,
		},
		{
			name: "delayed, time from the request", target: "/Greeter/Greet/send?delay=60ms",
			resp: func(req *rpc.InvokeRequest) *rpc.InvokeResponse {
				return &rpc.InvokeResponse{SendStatus: rpc.SendAccepted}
			},
			wantBody: `{"invocationId":"ID","executionTime":"2026-11-21T22:13:09.111000000Z","status":"Accepted"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, inv := newTestHandler(t, 0)
			h.now = func() time.Time { return fixedNow }
			inv.respond = func(_ context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
				resp := tt.resp(req)
				resp.InvocationID = answeredID.Bytes()
				return resp, nil
			}
			r := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(`"bob"`))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			want := strings.Replace(tt.wantBody, "ID", answeredID.String(), 1)
			if rec.Code != http.StatusAccepted || rec.Body.String() != want {
				t.Fatalf("answer %d %s, want 202 %s", rec.Code, rec.Body, want)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("content-type %q", got)
			}
			if got := rec.Header().Get("X-Restate-Id"); got != answeredID.String() {
				t.Errorf("x-restate-id %q, want %q", got, answeredID)
			}
			if calls := inv.calls(); len(calls) != 1 || !calls[0].Send {
				t.Fatalf("invocations %+v, want one send", calls)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"a\nb\rc\td", `"a\nb\rc\td"`},
		{"\x00\x1f", `"\u0000\u001f"`},
		{"<&>", `"<&>"`},
		{"é€😀", `"é€😀"`},
		{"bad\xffbyte", `"bad\ufffdbyte"`},
	}
	for _, tt := range tests {
		got := string(appendJSONString(nil, tt.in))
		if got != tt.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s is not JSON: %v", tt.in, got, err)
		}
	}
}
