package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/schema"
)

func h2cClient() *http.Client { return &http.Client{Transport: h2c.NewTransport()} }

func TestDiscoverRecordedSDKManifest(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	m, err := Discover(ctx, h2cClient(), sdk.URL+"/sdk-go-greeter-counter-signup/", map[string]string{"Authorization": "Bearer t", "x-tenant": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ProtocolMode != ProtocolModeBidiStream || m.MinProtocolVersion != 5 || m.MaxProtocolVersion != 7 {
		t.Fatalf("endpoint = %s [%d, %d]", m.ProtocolMode, m.MinProtocolVersion, m.MaxProtocolVersion)
	}
	if m.ManifestVersion != 4 || m.SDKVersion != "restate-sdk-go/v1.2.0" || m.HTTPVersion != "HTTP/2.0" {
		t.Fatalf("response facts = v%d %q %q", m.ManifestVersion, m.SDKVersion, m.HTTPVersion)
	}
	var names []string
	for _, s := range m.Services {
		names = append(names, s.Name+":"+s.Ty)
	}
	if got := strings.Join(names, ","); got != "Counter:VIRTUAL_OBJECT,Greeter:SERVICE,Signup:WORKFLOW" {
		t.Fatalf("services = %s", got)
	}

	req := sdk.lastRequest("sdk-go-greeter-counter-signup")
	if got := req.Header.Get("accept"); got != manifestAccept {
		t.Fatalf("accept = %q", got)
	}
	if !strings.Contains(manifestAccept, "endpointmanifest.v1+json") || !strings.Contains(manifestAccept, "endpointmanifest.v4+json") {
		t.Fatalf("accept header must list manifest v1..v4: %q", manifestAccept)
	}
	if req.Header.Get("authorization") != "Bearer t" || req.Header.Get("x-tenant") != "a" {
		t.Fatalf("additional headers not sent: %v", req.Header)
	}
	if req.ProtoMajor != 2 {
		t.Fatalf("discovery used %s, want h2c", req.Proto)
	}
}

func TestDiscoverURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ uri, want string }{
		{"http://h:9080", "http://h:9080/discover"},
		{"http://h:9080/", "http://h:9080/discover"},
		{"http://h:9080/base", "http://h:9080/base/discover"},
		{"http://h:9080/base/", "http://h:9080/base/discover"},
		{"http://h:9080/base//?token=x&y=1", "http://h:9080/base/discover?token=x&y=1"},
		{"https://h/a%2Fb/", "https://h/a%2Fb/discover"},
		{"http://h:9080/#frag", "http://h:9080/discover"},
	}
	for _, tc := range tests {
		got, err := discoverURL(tc.uri)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if got != tc.want {
			t.Errorf("discoverURL(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
	for _, bad := range []string{"h:9080/x", "/relative", "::"} {
		if _, err := discoverURL(bad); err == nil {
			t.Errorf("discoverURL(%q) accepted a relative uri", bad)
		}
	}
}

func TestDiscoverPathAndQueryReachServer(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	var gotPath, gotQuery string
	sdk.handle("base", func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
		b, _ := os.ReadFile(filepath.Join("testdata", "sdk-go-retry-options.json"))
		serveManifest(w, b)
	})
	if _, err := Discover(context.Background(), h2cClient(), sdk.URL+"/base/?token=abc", nil); err != nil {
		t.Fatal(err)
	}
	if gotPath != "/base/discover" || gotQuery != "token=abc" {
		t.Fatalf("server saw %q ? %q", gotPath, gotQuery)
	}
}

func TestDiscoverRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int // answers before the manifest; the manifest follows them
		wantOK   bool
		wantHits int
		wantMsg  string
	}{
		{"transient 503s then manifest", []int{503, 502}, true, 3, ""},
		{"408 and 429 are retried", []int{408, 429}, true, 3, ""},
		{"404 is final", []int{404}, false, 1, "got status code '404 Not Found'. Make sure the provided URI has the correct path"},
		{"415 is final", []int{415}, false, 1, "got status code '415 Unsupported Media Type'"},
		{"retries are bounded", []int{500, 500, 500, 500, 500, 500, 500}, false, 5, "got status code '500 Internal Server Error'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sdk := startSDK(t)
			b, _ := os.ReadFile(filepath.Join("testdata", "sdk-go-greeter-counter-signup.json"))
			var calls atomic.Int32
			sdk.handle("svc", func(w http.ResponseWriter, _ *http.Request) {
				if n := int(calls.Add(1)) - 1; n < len(tc.statuses) {
					w.WriteHeader(tc.statuses[n])
					_, _ = w.Write([]byte("nope"))
					return
				}
				serveManifest(w, b)
			})
			_, err := Discover(context.Background(), h2cClient(), sdk.URL+"/svc", nil)
			if hits := sdk.hitCount("svc"); hits != tc.wantHits {
				t.Fatalf("%d discovery requests, want %d", hits, tc.wantHits)
			}
			if tc.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *DiscoveryError
			if !errors.As(err, &de) || de.Code != codeDiscoveryFailed || !strings.Contains(de.Message, tc.wantMsg) {
				t.Fatalf("err = %v, want META0003 containing %q", err, tc.wantMsg)
			}
		})
	}
}

func TestDiscoverTransportErrorIsRetriedThenReported(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more: connection refused

	_, err = Discover(context.Background(), h2cClient(), "http://"+addr+"/", nil)
	var de *DiscoveryError
	if !errors.As(err, &de) || de.Code != codeDiscoveryFailed || !de.Retryable {
		t.Fatalf("err = %#v, want retryable META0003", err)
	}
	if !strings.Contains(de.Message, "error when calling 'http://"+addr+"/'") {
		t.Fatalf("message %q", de.Message)
	}
}

func TestDiscoverHonoursContext(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	release := make(chan struct{})
	defer close(release)
	sdk.handle("slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Discover(ctx, h2cClient(), sdk.URL+"/slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if hits := sdk.hitCount("slow"); hits != 1 {
		t.Fatalf("%d attempts after the context ended, want 1", hits)
	}
}

func TestDiscoverResponseChecks(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	manifest := `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6,"services":[]}`
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    string
		wantMsg     string
	}{
		{"v1 content type", "application/vnd.restate.endpointmanifest.v1+json", manifest, "", ""},
		{"v3 with parameters", "application/vnd.restate.endpointmanifest.v3+json; charset=utf-8", manifest, "", ""},
		{"plain json refused", "application/json", manifest, codeBadDiscoveryResponse, "Bad content type header: \"application/json\""},
		{"no content type", "", manifest, codeBadDiscoveryResponse, "Bad content type header"},
		{"v5 not asked for", "application/vnd.restate.endpointmanifest.v5+json", manifest, codeBadDiscoveryResponse, "Bad content type header"},
		{"undecodable body", "application/vnd.restate.endpointmanifest.v4+json", "{", "", "cannot be decoded"},
	}
	for _, tc := range tests {
		name := strings.ReplaceAll(tc.name, " ", "-")
		sdk.handle(name, func(w http.ResponseWriter, _ *http.Request) {
			if tc.contentType != "" {
				w.Header().Set("content-type", tc.contentType)
			} else {
				w.Header()["Content-Type"] = nil // keep net/http from sniffing one
			}
			_, _ = w.Write([]byte(tc.body))
		})
		_, err := Discover(context.Background(), h2cClient(), sdk.URL+"/"+name, nil)
		if tc.wantMsg == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var de *DiscoveryError
		if !errors.As(err, &de) || de.Code != tc.wantCode || !strings.Contains(de.Message, tc.wantMsg) {
			t.Errorf("%s: err = %v, want code %q containing %q", tc.name, err, tc.wantCode, tc.wantMsg)
		}
	}
}

func TestDiscoverOverHTTP11(t *testing.T) {
	t.Parallel()
	sdk := startSDKWith(t, func(p *http.Protocols) { p.SetHTTP1(true) })
	hc := &http.Client{Transport: h2c.NewHTTP11Transport()}
	m, err := Discover(context.Background(), hc, sdk.URL+"/sdk-go-retry-options", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.HTTPVersion != "HTTP/1.1" {
		t.Fatalf("HTTPVersion = %q", m.HTTPVersion)
	}
	// The default h2c client cannot talk to an HTTP/1.1-only deployment.
	if _, err := Discover(context.Background(), h2cClient(), sdk.URL+"/sdk-go-retry-options", nil); err == nil {
		t.Fatal("h2c discovery of an HTTP/1.1-only server succeeded")
	}
}

// manifestWith wraps services JSON into a manifest with a valid endpoint part.
func manifestWith(services string) string {
	return `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6,"services":[` + services + `]}`
}

func TestParseManifestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantCode string // "" with wantMsg = decode error without a code
		wantMsg  string // "" = valid
	}{
		{"minimal", manifestWith(""), "", ""},
		{"range overlapping ours from below", `{"protocolMode":"REQUEST_RESPONSE","minProtocolVersion":1,"maxProtocolVersion":5,"services":[]}`, "", ""},
		{"range overlapping ours from above", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":6,"maxProtocolVersion":9,"services":[]}`, "", ""},
		{"range below ours", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":1,"maxProtocolVersion":3,"services":[]}`, codeUnsupportedProtocol, "unsupported service protocol versions: [1, 3]. Supported versions by this runtime are [5, 6]"},
		{"range above ours", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":7,"maxProtocolVersion":7,"services":[]}`, codeUnsupportedProtocol, "[7, 7]"},
		{"min above max", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":6,"maxProtocolVersion":5,"services":[]}`, codeBadDiscoveryResponse, "Expected min protocol version to be <= max protocol version"},
		{"max beyond i32", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":9999999999,"services":[]}`, codeBadDiscoveryResponse, "max protocol version must be in [1, 2147483647]"},
		{"missing protocol mode", `{"minProtocolVersion":5,"maxProtocolVersion":6,"services":[]}`, codeBadDiscoveryResponse, "missing protocol mode"},
		{"unknown protocol mode", `{"protocolMode":"DUPLEX","minProtocolVersion":5,"maxProtocolVersion":6,"services":[]}`, "", "unknown protocolMode"},
		{"zero min version", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":0,"maxProtocolVersion":6,"services":[]}`, "", "cannot be decoded"},
		{"negative version", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":-5,"maxProtocolVersion":6,"services":[]}`, "", "cannot be decoded"},
		{"missing min version", `{"protocolMode":"BIDI_STREAM","maxProtocolVersion":6,"services":[]}`, "", "missing field `minProtocolVersion`"},
		{"missing services", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6}`, "", "missing field `services`"},
		{"unknown top-level field", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6,"services":[],"x":1}`, "", "unknown field"},
		{"lambda compression over http", `{"protocolMode":"REQUEST_RESPONSE","minProtocolVersion":5,"maxProtocolVersion":6,"services":[],"lambdaCompression":"zstd"}`, codeBadDiscoveryResponse, "lambdaCompression"},
		{"not an object", `[1,2]`, "", "cannot be decoded"},
		{"trailing data", manifestWith("") + `{}`, "", "cannot be decoded"},
		{"service name starts with a digit", manifestWith(`{"name":"1bad","ty":"SERVICE","handlers":[]}`), "", "doesn't match pattern"},
		{"service name with a slash", manifestWith(`{"name":"a/b","ty":"SERVICE","handlers":[]}`), "", "doesn't match pattern"},
		{"service name with dots and dashes", manifestWith(`{"name":"com.example.Greeter-v2","ty":"SERVICE","handlers":[]}`), "", ""},
		{"underscore then digit", manifestWith(`{"name":"_1","ty":"SERVICE","handlers":[{"name":"_x"}]}`), "", ""},
		{"lone underscore", manifestWith(`{"name":"_","ty":"SERVICE","handlers":[]}`), "", "doesn't match pattern"},
		{"handler name with a dot", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[{"name":"a.b"}]}`), "", "doesn't match pattern"},
		{"empty handler name", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[{"name":""}]}`), "", "doesn't match pattern"},
		{"unknown service type", manifestWith(`{"name":"S","ty":"ACTOR","handlers":[]}`), "", "unknown variant"},
		{"unknown handler type", manifestWith(`{"name":"S","ty":"VIRTUAL_OBJECT","handlers":[{"name":"h","ty":"READONLY"}]}`), "", "unknown variant"},
		{"missing handlers", manifestWith(`{"name":"S","ty":"SERVICE"}`), "", "missing field `handlers`"},
		{"unknown service field", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[],"foo":1}`), "", "unknown field"},
		{"unknown input field", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[{"name":"h","input":{"foo":1}}]}`), "", "unknown field"},
		{"bad on-max-attempts", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[],"retryPolicyOnMaxAttempts":"RETRY"}`), "", "retryPolicyOnMaxAttempts"},
		{"json schema that is a string", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[{"name":"h","input":{"contentType":"application/json","jsonSchema":"x"}}]}`), "", "jsonSchema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseManifest([]byte(tc.body))
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var de *DiscoveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DiscoveryError", err)
			}
			if de.Code != tc.wantCode || !strings.Contains(de.Message, tc.wantMsg) || de.Retryable {
				t.Fatalf("err = %q (code %q, retryable %v), want code %q containing %q", de.Message, de.Code, de.Retryable, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestToSchemaValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		services string
		wantCode string
		wantMsg  string
	}{
		{"exclusive handler on a service", `{"name":"S","ty":"SERVICE","handlers":[{"name":"h","ty":"EXCLUSIVE"}]}`, "", "invalid combination of service type and handler type '(Service, EXCLUSIVE)'"},
		{"workflow handler on an object", `{"name":"S","ty":"VIRTUAL_OBJECT","handlers":[{"name":"h","ty":"WORKFLOW"}]}`, "", "'(VirtualObject, WORKFLOW)'"},
		{"exclusive handler on a workflow", `{"name":"S","ty":"WORKFLOW","handlers":[{"name":"h","ty":"EXCLUSIVE"}]}`, "", "'(Workflow, EXCLUSIVE)'"},
		{"completion retention on a shared handler", `{"name":"S","ty":"WORKFLOW","handlers":[{"name":"h","ty":"SHARED","workflowCompletionRetention":1}]}`, "", "h sets the workflow_completion_retention, but it's not a WORKFLOW handler"},
		{"idempotency retention on the run handler", `{"name":"S","ty":"WORKFLOW","handlers":[{"name":"run","ty":"WORKFLOW","idempotencyRetention":1}]}`, "", "run sets the idempotency_retention, but it's a WORKFLOW handler"},
		{"public handler in a private service", `{"name":"S","ty":"SERVICE","ingressPrivate":true,"handlers":[{"name":"h","ingressPrivate":false}]}`, "", "The service S is private, but the h is explicitly set as public"},
		{"input content type without a slash", `{"name":"S","ty":"SERVICE","handlers":[{"name":"h","input":{"contentType":"json"}}]}`, "", "must contain one /"},
		{"input wildcard type", `{"name":"S","ty":"SERVICE","handlers":[{"name":"h","input":{"contentType":"*/json"}}]}`, "", "the wildcard format */subType is not supported"},
		{"output content type with a newline", `{"name":"S","ty":"SERVICE","handlers":[{"name":"h","output":{"contentType":"a\nb"}}]}`, "", "output content-type is not valid"},
		{"reserved name", `{"name":"RestateAdmin","ty":"SERVICE","handlers":[]}`, codeReservedName, "cannot insert/modify service 'RestateAdmin' as it contains a reserved name"},
		{"reserved openapi", `{"name":"OpenAPI","ty":"SERVICE","handlers":[]}`, codeReservedName, "reserved name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseManifest([]byte(manifestWith(tc.services)))
			if err != nil {
				t.Fatalf("manifest rejected before conversion: %v", err)
			}
			_, err = ToSchema(m, DeploymentSpec{ID: "dp_x", URI: "http://h/"})
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SchemaError", err)
			}
			if se.Status != http.StatusBadRequest || se.Code != tc.wantCode || !strings.Contains(se.Message, tc.wantMsg) {
				t.Fatalf("err = %d %q %q, want 400 %q containing %q", se.Status, se.Code, se.Message, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestToSchemaDefaults(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "sdk-go-greeter-counter-signup.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ToSchema(m, DeploymentSpec{ID: "dp_1", URI: "http://h:9080/", CreatedAt: testClock})
	if err != nil {
		t.Fatal(err)
	}
	if dep.ProtocolMode != ProtocolModeBidiStream || dep.MinProtocolVersion != 5 || dep.MaxProtocolVersion != 7 || dep.HTTPVersion != "HTTP/2.0" {
		t.Fatalf("deployment = %+v", dep)
	}
	byName := map[string]*schema.Service{}
	for _, s := range dep.Services {
		byName[s.Name] = &s
		if s.DeploymentID != "dp_1" || !s.Public {
			t.Errorf("%s: deployment %q public %v", s.Name, s.DeploymentID, s.Public)
		}
		if s.IdempotencyRetention != 24*time.Hour || s.JournalRetention != 24*time.Hour ||
			s.InactivityTimeout != time.Minute || s.AbortTimeout != 10*time.Minute {
			t.Errorf("%s: timeouts %v %v %v %v", s.Name, s.IdempotencyRetention, s.JournalRetention, s.InactivityTimeout, s.AbortTimeout)
		}
		if s.RetryPolicy != schema.DefaultRetryPolicy() {
			t.Errorf("%s: retry policy %+v", s.Name, s.RetryPolicy)
		}
	}
	if got := byName["Signup"].WorkflowCompletionRetention; got != 24*time.Hour {
		t.Errorf("workflow completion retention = %v", got)
	}
	if got := byName["Greeter"].WorkflowCompletionRetention; got != 0 {
		t.Errorf("service has a workflow completion retention: %v", got)
	}
	counter := byName["Counter"]
	add, get := counter.Handler("Add"), counter.Handler("Get")
	if add.Type != schema.HandlerExclusive || get.Type != schema.HandlerShared {
		t.Errorf("Counter handler types %s %s", add.Type, get.Type)
	}
	if !add.Input.Required || add.Input.ContentType != "application/json" || len(add.Input.JSONSchema) == 0 {
		t.Errorf("Add input = %+v", add.Input)
	}
	if get.Input.Required || get.Input.ContentType != "" {
		t.Errorf("Get (void input) = %+v", get.Input)
	}
	if byName["Signup"].Handler("Signal").Output.ContentType != "" {
		t.Errorf("void output should accept no content type")
	}
	if h := byName["Greeter"].Handler("Greet"); h.Type != "" || h.RetryPolicy != nil || h.RetryOverrides != nil {
		t.Errorf("Greet = %+v", h)
	}

	// A manifest that leaves input and output out gets Restate's permissive defaults.
	m2, err := ParseManifest([]byte(manifestWith(`{"name":"S","ty":"WORKFLOW","handlers":[{"name":"h"}]}`)))
	if err != nil {
		t.Fatal(err)
	}
	dep2, err := ToSchema(m2, DeploymentSpec{ID: "dp_2", URI: "http://h/"})
	if err != nil {
		t.Fatal(err)
	}
	h := dep2.Services[0].Handlers[0]
	if h.Input.Required || h.Input.ContentType != "*/*" || h.Output.ContentType != "application/json" {
		t.Errorf("defaults: input %+v output %+v", h.Input, h.Output)
	}
	// Restate 1.7 treats an untyped workflow handler as shared.
	if h.Type != schema.HandlerShared {
		t.Errorf("untyped workflow handler = %q, want SHARED", h.Type)
	}
}

func TestToSchemaOverrides(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "sdk-go-retry-options.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ToSchema(m, DeploymentSpec{ID: "dp_1", URI: "http://h/"})
	if err != nil {
		t.Fatal(err)
	}
	svc := dep.Services[0]
	wantSvc := schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 2, MaxAttempts: 5, MaxInterval: time.Minute, OnMaxAttempts: "Pause"}
	if svc.RetryPolicy != wantSvc {
		t.Fatalf("service policy %+v, want %+v", svc.RetryPolicy, wantSvc)
	}
	h := svc.Handler("Do")
	wantHandler := wantSvc
	wantHandler.MaxInterval, wantHandler.OnMaxAttempts = 10*time.Second, "Kill"
	if h.RetryPolicy == nil || *h.RetryPolicy != wantHandler || svc.EffectiveRetryPolicy("Do") != wantHandler {
		t.Fatalf("handler policy %+v, want %+v", h.RetryPolicy, wantHandler)
	}
	if h.AbortTimeout != time.Minute {
		t.Fatalf("handler abort timeout %v", h.AbortTimeout)
	}
}
