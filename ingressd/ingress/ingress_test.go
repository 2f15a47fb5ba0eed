package ingress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		reg  *schema.Registry
		want string
	}{
		{name: "registered services, sorted", reg: testRegistry(), want: `{"services":["Counter","Greeter","Obj","Priv","PrivGreeter","PrivSignup","Probe","Signup"]}`},
		{name: "nothing registered", reg: &schema.Registry{}, want: `{"services":[]}`},
		{name: "no schema yet", reg: nil, want: `{"services":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(Options{Schema: func() *schema.Registry { return tt.reg }})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/restate/health", nil))
			if rec.Code != 200 || rec.Body.String() != tt.want || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("health = %d %q %s, want 200 application/json %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.want)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	h, inv := newTestHandler(t, 0)

	pre := httptest.NewRequest(http.MethodOptions, "/Greeter/Greet", nil)
	pre.Header.Set("Origin", "http://x.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type, idempotency-key")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	want := map[string]string{
		"Access-Control-Allow-Origin":      "http://x.example",
		"Access-Control-Allow-Methods":     "POST",
		"Access-Control-Allow-Headers":     "content-type, idempotency-key",
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "origin, access-control-request-method, access-control-request-headers",
	}
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("preflight = %d %q", rec.Code, rec.Body)
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}

	call := httptest.NewRequest(http.MethodPost, "/Greeter/Greet", strings.NewReader(`"x"`))
	call.Header.Set("Content-Type", "application/json")
	call.Header.Set("Origin", "http://x.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, call)
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "http://x.example" || rec.Header().Get("Vary") == "" {
		t.Fatalf("call = %d, headers %v", rec.Code, rec.Header())
	}
	if len(inv.calls()) != 1 {
		t.Fatalf("%d invocations, want 1 (the preflight must not invoke)", len(inv.calls()))
	}
}

func TestErrorCatalogue(t *testing.T) {
	t.Parallel()
	for k := errorKind(0); k < numErrorKinds; k++ {
		e := catalogue[k]
		if e.status < 400 || e.status > 599 || e.format == "" {
			t.Errorf("catalogue entry %d = %+v: want a 4xx/5xx status and a message", k, e)
		}
		// 470 is Restate's own "not completed yet" status.
		if http.StatusText(e.status) == "" && e.status != 470 {
			t.Errorf("catalogue entry %d: unknown status %d", k, e.status)
		}
	}
}

// TestOverHTTP drives one call and one refusal through a real server and client: lower-case
// header names reach the invoker, and the answers carry what SDK ingress clients read.
func TestOverHTTP(t *testing.T) {
	t.Parallel()
	h, inv := newTestHandler(t, 0)
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/Counter/a%2Fb/Add?x=1", strings.NewReader("5"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Custom", "v")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `"ok"` || resp.Header.Get("X-Restate-Id") == "" {
		t.Fatalf("call = %d %q %v", resp.StatusCode, body, resp.Header)
	}
	calls := inv.calls()
	if len(calls) != 1 || calls[0].Target.Key != "a/b" {
		t.Fatalf("invocations %+v", calls)
	}
	got := map[string]string{}
	for _, hd := range calls[0].Headers {
		got[hd.Key] = hd.Value
	}
	if got["x-custom"] != "v" || got["x-restate-ingress-path"] != "/Counter/a%2Fb/Add?x=1" || got["content-type"] != "application/json" {
		t.Fatalf("forwarded headers %v", calls[0].Headers)
	}

	resp, err = srv.Client().Post(srv.URL+"/Nope/h", "application/json", strings.NewReader("1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Restate-Error-Source") != "ingress" ||
		string(body) != `{"code":404,"message":"service 'Nope' not found, make sure to register the service before calling it.","source":"ingress"}` {
		t.Fatalf("refusal = %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

var _ rpc.Invoker = (*fakeInvoker)(nil)
