package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"gorestate.dev/shared/schema"
)

// TestRegisterMatchesRestate registers every recorded manifest and compares the answer with
// what Restate 1.7.12 answered for the same manifest (testdata/golden, ids replaced).
func TestRegisterMatchesRestate(t *testing.T) {
	t.Parallel()
	goldens, err := filepath.Glob(filepath.Join("testdata", "golden", "*.register.json"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	sdk := startSDK(t)
	for _, g := range goldens {
		name := strings.TrimSuffix(filepath.Base(g), ".register.json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkRegistration(t, startAdmin(t, newMemStore()), sdk, name, g)
		})
	}
}

// normalizeRegistration makes two registration answers comparable: ids become a placeholder,
// services and handlers are sorted (Restate's order is a hash map's), and empty documentation
// is dropped (Restate prints it only when the manifest had the key).
func normalizeRegistration(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	m["id"] = "dp_PLACEHOLDER"
	services, _ := m["services"].([]any)
	for _, s := range services {
		svc := s.(map[string]any)
		svc["deployment_id"] = "dp_PLACEHOLDER"
		dropEmptyDocumentation(svc)
		handlers, _ := svc["handlers"].([]any)
		for _, h := range handlers {
			dropEmptyDocumentation(h.(map[string]any))
		}
		sortByName(handlers)
	}
	sortByName(services)
	return m
}

func dropEmptyDocumentation(m map[string]any) {
	if m["documentation"] == "" {
		delete(m, "documentation")
	}
}

func sortByName(xs []any) {
	sort.Slice(xs, func(i, j int) bool {
		return xs[i].(map[string]any)["name"].(string) < xs[j].(map[string]any)["name"].(string)
	})
}

func TestRegisterLifecycle(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())

	first := admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)
	if first.status != http.StatusCreated {
		t.Fatalf("first registration: %d %s", first.status, first.body)
	}
	id := first.json(t)["id"].(string)
	if loc := first.header.Get("location"); loc != "deployments/"+id {
		t.Fatalf("location %q, want deployments/%s", loc, id)
	}
	wantKeys(t, "registration", first.json(t), "id", "services", "min_protocol_version", "max_protocol_version", "sdk_version")

	again := admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)
	if again.status != http.StatusOK || again.json(t)["id"] != id {
		t.Fatalf("same endpoint again: %d %s", again.status, again.body)
	}
	if n := admin.store.puts.Load(); n != 1 {
		t.Fatalf("%d registry writes, want 1: an unchanged registration must not write", n)
	}

	list := admin.do(t, http.MethodGet, "/deployments", "")
	deps := list.json(t)["deployments"].([]any)
	if len(deps) != 1 {
		t.Fatalf("deployments: %s", list.body)
	}
	dep := deps[0].(map[string]any)
	wantKeys(t, "deployment list entry", dep, "id", "uri", "protocol_type", "http_version", "created_at",
		"min_protocol_version", "max_protocol_version", "sdk_version", "services")
	wantFields(t, dep, map[string]any{
		"id":            id,
		"uri":           sdk.URL + "/sdk-go-greeter-counter-signup",
		"protocol_type": "BidiStream",
		"http_version":  "HTTP/2.0",
		"created_at":    "2026-11-21T22:02:50.139000000Z",
		"sdk_version":   "restate-sdk-go/v1.2.0",
	})
	if got := fmt.Sprint(dep["services"]); got != "[map[name:Counter revision:1] map[name:Greeter revision:1] map[name:Signup revision:1]]" {
		t.Fatalf("deployment services %s", got)
	}

	detail := admin.do(t, http.MethodGet, "/deployments/"+id, "")
	if detail.status != http.StatusOK {
		t.Fatalf("get deployment: %d %s", detail.status, detail.body)
	}
	full := detail.json(t)["services"].([]any)
	wantKeys(t, "deployment detail service", full[0].(map[string]any), "name", "ty", "handlers", "documentation",
		"deployment_id", "revision", "public", "idempotency_retention", "journal_retention", "inactivity_timeout",
		"abort_timeout", "enable_lazy_state", "retry_policy")

	// A second deployment of the same services takes them over at the next revision.
	second := admin.register(t, "/deployments", sdk, "sdk-go-service-options", nil)
	if second.status != http.StatusCreated {
		t.Fatalf("second deployment: %d %s", second.status, second.body)
	}
	id2 := second.json(t)["id"].(string)
	if id2 == id {
		t.Fatal("a new endpoint got the old deployment id")
	}
	signup := admin.do(t, http.MethodGet, "/services/Signup", "").json(t)
	wantFields(t, signup, map[string]any{"deployment_id": id2, "revision": 2.0, "idempotency_retention": "1h", "inactivity_timeout": "30s"})

	// Removing it brings back the revisions the first deployment still provides.
	if del := admin.do(t, http.MethodDelete, "/deployments/"+id2+"?force=true", ""); del.status != http.StatusAccepted || len(del.body) != 0 {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	signup = admin.do(t, http.MethodGet, "/services/Signup", "").json(t)
	wantFields(t, signup, map[string]any{"deployment_id": id, "revision": 1.0, "idempotency_retention": "1d", "inactivity_timeout": "1m"})

	// Removing the last provider removes the services.
	if del := admin.do(t, http.MethodDelete, "/deployments/"+id+"?force=true", ""); del.status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	expectError(t, admin.do(t, http.MethodGet, "/services/Greeter", ""), http.StatusNotFound, "The requested service 'Greeter' does not exist", nil)
	if got := admin.do(t, http.MethodGet, "/services", "").json(t)["services"]; len(got.([]any)) != 0 {
		t.Fatalf("services left: %v", got)
	}
	expectError(t, admin.do(t, http.MethodGet, "/deployments/"+id, ""), http.StatusNotFound, "The requested deployment '"+id+"' does not exist", nil)
}

func TestRegisterSameEndpointWithChangedServices(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	full, _ := os.ReadFile(filepath.Join("testdata", "sdk-go-greeter-counter-signup.json"))
	var current atomicBytes
	current.set(full)
	sdk.handle("app", func(w http.ResponseWriter, _ *http.Request) { serveManifest(w, current.get()) })

	first := admin.register(t, "/deployments", sdk, "app", nil)
	id := first.json(t)["id"].(string)

	// The endpoint now serves only Greeter.
	current.set([]byte(manifestWith(`{"name":"Greeter","ty":"SERVICE","handlers":[{"name":"Greet"}]}`)))

	// Without force Restate keeps the registered deployment as it is and says so with 200.
	unchanged := admin.register(t, "/deployments", sdk, "app", nil)
	if unchanged.status != http.StatusOK || unchanged.json(t)["id"] != id {
		t.Fatalf("without force: %d %s", unchanged.status, unchanged.body)
	}
	if n := len(unchanged.json(t)["services"].([]any)); n != 3 {
		t.Fatalf("without force the old services must stay: %d services", n)
	}

	// With force the deployment keeps its id and gets the new services.
	forced := admin.register(t, "/deployments", sdk, "app", map[string]any{"force": true})
	if forced.status != http.StatusOK || forced.json(t)["id"] != id {
		t.Fatalf("with force: %d %s", forced.status, forced.body)
	}
	greeter := admin.do(t, http.MethodGet, "/services/Greeter", "").json(t)
	wantFields(t, greeter, map[string]any{"deployment_id": id, "revision": 2.0})
	expectError(t, admin.do(t, http.MethodGet, "/services/Counter", ""), http.StatusNotFound, "'Counter' does not exist", nil)

	// Admin API V2 defaults force to true and always answers 201.
	current.set(full)
	v2 := admin.register(t, "/v2/deployments", sdk, "app", nil)
	if v2.status != http.StatusCreated || v2.json(t)["id"] != id {
		t.Fatalf("v2: %d %s", v2.status, v2.body)
	}
	if admin.do(t, http.MethodGet, "/services/Counter", "").status != http.StatusOK {
		t.Fatal("v2 registration did not overwrite")
	}
}

// atomicBytes is a manifest body a test swaps while the fake SDK serves it.
type atomicBytes struct {
	mu sync.Mutex
	b  []byte
}

func (a *atomicBytes) set(b []byte) { a.mu.Lock(); a.b = b; a.mu.Unlock() }
func (a *atomicBytes) get() []byte  { a.mu.Lock(); defer a.mu.Unlock(); return a.b }

func TestRegisterServiceTypeChange(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	sdk.manifest("asObject", manifestWith(`{"name":"Greeter","ty":"VIRTUAL_OBJECT","handlers":[{"name":"Greet"}]}`))

	if r := admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	conflict := admin.register(t, "/deployments", sdk, "asObject", nil)
	expectError(t, conflict, http.StatusConflict,
		"[META0006] detected a new service revision for 'Greeter' changing the service type from previous revision. Service type cannot be changed across revisions.",
		"META0006")
	if n := len(admin.do(t, http.MethodGet, "/deployments", "").json(t)["deployments"].([]any)); n != 1 {
		t.Fatalf("a rejected registration was stored: %d deployments", n)
	}
	forced := admin.register(t, "/deployments", sdk, "asObject", map[string]any{"force": true})
	if forced.status != http.StatusCreated {
		t.Fatalf("force: %d %s", forced.status, forced.body)
	}
	wantFields(t, admin.do(t, http.MethodGet, "/services/Greeter", "").json(t), map[string]any{"ty": "VirtualObject", "revision": 2.0})
}

func TestRegisterDryRunStoresNothing(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	dry := admin.register(t, "/v4/deployments", sdk, "sdk-go-greeter-counter-signup", map[string]any{"dry_run": true})
	if dry.status != http.StatusCreated || dry.header.Get("location") == "" {
		t.Fatalf("dry run: %d %s", dry.status, dry.body)
	}
	if n := admin.store.puts.Load(); n != 0 {
		t.Fatalf("dry run wrote the registry %d times", n)
	}
	if got := admin.do(t, http.MethodGet, "/deployments", ""); string(got.body) != `{"deployments":[]}` {
		t.Fatalf("deployments after dry run: %s", got.body)
	}
}

func TestRegisterStoresHeadersMetadataAndHTTP11(t *testing.T) {
	t.Parallel()
	sdk := startSDKWith(t, func(p *http.Protocols) { p.SetHTTP1(true) })
	admin := startAdmin(t, newMemStore())
	r := admin.register(t, "/deployments", sdk, "sdk-go-retry-options", map[string]any{
		"use_http_11":        true,
		"additional_headers": map[string]string{"X-Token": "secret"},
		"metadata":           map[string]string{"team": "a"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := sdk.lastRequest("sdk-go-retry-options"); got.Header.Get("x-token") != "secret" || got.ProtoMajor != 1 {
		t.Fatalf("discovery request %s headers %v", got.Proto, got.Header)
	}
	dep := admin.do(t, http.MethodGet, "/deployments", "").json(t)["deployments"].([]any)[0].(map[string]any)
	wantFields(t, dep, map[string]any{"http_version": "HTTP/1.1"})
	if fmt.Sprint(dep["additional_headers"]) != "map[x-token:secret]" || fmt.Sprint(dep["metadata"]) != "map[team:a]" {
		t.Fatalf("headers %v metadata %v", dep["additional_headers"], dep["metadata"])
	}
	// The same address with other headers is the same endpoint, as in restate-server
	// 1.7.12 (no deployment-routing-headers): unchanged without force, its headers kept.
	id := dep["id"]
	other := admin.register(t, "/deployments", sdk, "sdk-go-retry-options", map[string]any{"use_http_11": true})
	if other.status != http.StatusOK || other.json(t)["id"] != id {
		t.Fatalf("other headers: %d %s", other.status, other.body)
	}
	if deps := admin.do(t, http.MethodGet, "/deployments", "").json(t)["deployments"].([]any); len(deps) != 1 ||
		fmt.Sprint(deps[0].(map[string]any)["additional_headers"]) != "map[x-token:secret]" {
		t.Fatalf("deployments after registering other headers: %v", deps)
	}
	// With force the deployment keeps its id and takes the new headers.
	forced := admin.register(t, "/deployments", sdk, "sdk-go-retry-options", map[string]any{
		"use_http_11": true, "force": true, "additional_headers": map[string]string{"X-Token": "new"}})
	if forced.status != http.StatusOK || forced.json(t)["id"] != id {
		t.Fatalf("forced: %d %s", forced.status, forced.body)
	}
	if deps := admin.do(t, http.MethodGet, "/deployments", "").json(t)["deployments"].([]any); len(deps) != 1 ||
		fmt.Sprint(deps[0].(map[string]any)["additional_headers"]) != "map[x-token:new]" {
		t.Fatalf("deployments after a forced registration: %v", deps)
	}
}

// With [admin] deployment-routing-headers, the values of those headers tell deployments at
// the same address apart (names case-insensitive, other headers still ignored), as in
// Restate: a gateway in front of several versions routes by them.
func TestRegisterWithDeploymentRoutingHeaders(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore(), func(o *Options) { o.DeploymentRoutingHeaders = []string{"X-Routing"} })
	reg := func(headers map[string]string) response {
		t.Helper()
		return admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", map[string]any{"additional_headers": headers})
	}
	v1 := reg(map[string]string{"x-routing": "v1"})
	if v1.status != http.StatusCreated {
		t.Fatalf("v1: %d %s", v1.status, v1.body)
	}
	id1 := v1.json(t)["id"]
	if again := reg(map[string]string{"X-ROUTING": "v1", "x-token": "other"}); again.status != http.StatusOK || again.json(t)["id"] != id1 {
		t.Fatalf("v1 again (other case, another header): %d %s", again.status, again.body)
	}
	v2 := reg(map[string]string{"x-routing": "v2"})
	if v2.status != http.StatusCreated || v2.json(t)["id"] == id1 {
		t.Fatalf("v2: %d %s, want a new deployment", v2.status, v2.body)
	}
	none := reg(nil)
	if none.status != http.StatusCreated || none.json(t)["id"] == id1 || none.json(t)["id"] == v2.json(t)["id"] {
		t.Fatalf("without the routing header: %d %s, want a new deployment", none.status, none.body)
	}
	if again := reg(map[string]string{"x-token": "x"}); again.status != http.StatusOK || again.json(t)["id"] != none.json(t)["id"] {
		t.Fatalf("without the routing header again: %d %s", again.status, again.body)
	}
	if deps := admin.do(t, http.MethodGet, "/deployments", "").json(t)["deployments"].([]any); len(deps) != 3 {
		t.Fatalf("%d deployments, want 3: %v", len(deps), deps)
	}
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	sdk.manifest("oldProtocol", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":1,"maxProtocolVersion":3,"services":[]}`)
	sdk.manifest("noMode", `{"minProtocolVersion":5,"maxProtocolVersion":6,"services":[]}`)
	sdk.manifest("badName", manifestWith(`{"name":"9lives","ty":"SERVICE","handlers":[]}`))
	sdk.manifest("badHandlerType", manifestWith(`{"name":"S","ty":"SERVICE","handlers":[{"name":"h","ty":"EXCLUSIVE"}]}`))
	sdk.manifest("reserved", manifestWith(`{"name":"restate_internal","ty":"SERVICE","handlers":[]}`))
	sdk.handle("jsonCT", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write([]byte(manifestWith("")))
	})
	admin := startAdmin(t, newMemStore())
	post := func(body string, header ...string) func() response {
		return func() response { return admin.do(t, http.MethodPost, "/deployments", body, header...) }
	}
	reg := func(name string) func() response {
		return func() response { return admin.register(t, "/deployments", sdk, name, nil) }
	}
	tests := []struct {
		name     string
		call     func() response
		status   int
		message  string
		code     any
		attempts int // discovery requests expected for the endpoint named by the case, if any
	}{
		{"malformed json", post(`{bad`), 400, "Failed to parse the request body as JSON", nil, 0},
		{"empty body", post(` `), 400, "Failed to parse the request body as JSON: EOF while parsing a value at line 1 column 1", nil, 0},
		{"blank lines", post("\n\n  "), 400, "Failed to parse the request body as JSON: EOF while parsing a value at line 3 column 2", nil, 0},
		// Restate's request is an untagged enum: any field of the wrong type matches no variant.
		{"wrong field type", post(`{"uri": 5}`), 422, "Failed to deserialize the JSON body into the target type: data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"headers not a map", post(`{"uri":"http://127.0.0.1:1/","additional_headers":5}`), 422, "Failed to deserialize the JSON body into the target type: data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"not an object", post(`[]`), 422, "Failed to deserialize the JSON body into the target type: data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"no uri", post(`{}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"relative uri", post(`{"uri":"127.0.0.1:9080"}`), 400, "The request field 'uri' is invalid. Reason: The provided uri 127.0.0.1:9080 is not absolute", nil, 0},
		{"unsupported scheme", post(`{"uri":"ftp://127.0.0.1:9080"}`), 400, "The request field 'uri' is invalid", nil, 0},
		{"lambda", post(`{"arn":"arn:aws:lambda:eu-central-1:1:function:f"}`), 400, "The request field 'arn' is invalid", nil, 0},
		// restate-server 1.7.12 deserializes uri and headers into Rust's http types: what they
		// do not parse matches no variant of its request enum.
		{"bad header name", post(`{"uri":"http://127.0.0.1:1/","additional_headers":{"a b":"c"}}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"bad header value", post(`{"uri":"http://127.0.0.1:1/","additional_headers":{"a":"\u0001"}}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"empty uri", post(`{"uri":""}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"uri with a blank", post(`{"uri":"http://127.0.0.1 :1/"}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"scheme without authority", post(`{"uri":"http://"}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"authority with a path but no scheme", post(`{"uri":"localhost:9080/x"}`), 422, "data did not match any variant of untagged enum RegisterDeploymentRequest", nil, 0},
		{"unparsable uri beside an arn", post(`{"uri":"http://","arn":"arn:aws:lambda:eu-central-1:1:function:f"}`), 400, "The request field 'arn' is invalid", nil, 0},
		{"huge body", post(`{"uri":"` + strings.Repeat("a", 2<<20) + `"}`), 413, "Failed to buffer the request body: length limit exceeded", nil, 0},
		{"text body", post(`{"uri":"http://127.0.0.1:1/"}`, "content-type", "text/plain"), 415, "Expected request with `Content-Type: application/json`", nil, 0},
		{"endpoint not found", reg("missing"), 500, "[META0003] got status code '404 Not Found'. Make sure the provided URI has the correct path", "META0003", 1},
		{"protocol too old", reg("oldProtocol"), 500, "[META0012] unsupported service protocol versions: [1, 3]", "META0012", 1},
		{"no protocol mode", reg("noMode"), 500, "[META0013] received a bad response from the SDK: missing protocol mode", "META0013", 1},
		{"manifest content type", reg("jsonCT"), 500, "[META0013] received a bad response from the SDK: Bad content type header", "META0013", 1},
		{"bad service name", reg("badName"), 500, "received a bad response from the SDK that cannot be decoded", nil, 1},
		{"bad handler type", reg("badHandlerType"), 400, "invalid combination of service type and handler type", nil, 1},
		{"reserved name", reg("reserved"), 400, "[META0005] cannot insert/modify service 'restate_internal'", "META0005", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, tc.call(), tc.status, tc.message, tc.code)
		})
	}
	for _, tc := range tests {
		if tc.attempts == 0 {
			continue
		}
		name := map[string]string{
			"endpoint not found": "missing", "protocol too old": "oldProtocol", "no protocol mode": "noMode",
			"manifest content type": "jsonCT", "bad service name": "badName", "bad handler type": "badHandlerType", "reserved name": "reserved",
		}[tc.name]
		if got := sdk.hitCount(name); got != tc.attempts {
			t.Errorf("%s: %d discovery requests, want %d (the answer is final)", tc.name, got, tc.attempts)
		}
	}
	if n := admin.store.puts.Load(); n != 0 {
		t.Fatalf("failed registrations wrote the registry %d times", n)
	}
}

// TestRegisterURIBesideARN: with a usable uri Restate's request is the HTTP variant, and an
// arn beside it is ignored.
func TestRegisterURIBesideARN(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	r := admin.register(t, "/deployments", sdk, "sdk-go-retry-options", map[string]any{"arn": "arn:aws:lambda:eu-central-1:1:function:f"})
	if r.status != http.StatusCreated {
		t.Fatalf("register with uri and arn: %d %s, want 201", r.status, r.body)
	}
}

// The uris restate-server 1.7.12 was sent: parsed by Rust's http::Uri or refused with 422.
func TestParsesAsRustURI(t *testing.T) {
	parses := []string{
		"foo", "/path", "/", "http:", "127.0.0.1", "127.0.0.1:9080", "http://127.0.0.1:99999", "HTTP://127.0.0.1:1",
		"http://127.0.0.1:1/a{b}", "http://127.0.0.1:1/a|b", "http://127.0.0.1:1/a^b", "http://127.0.0.1:1/a\\\\b",
		"http://127.0.0.1:1/a#b c", "http://127.0.0.1:1/a%zz", "http://127.0.0.1:1/a%", "http://127.0.0.1:1/\u00e9",
		"http://user@127.0.0.1:1/", "http://a@b@c/", "http://a_b:1/", "http://[::1]:1/", "://x", "x://y", "h+t.t-p://y",
		"1http://y", "http://127.0.0.1:1/?\u00e9", "http://127.0.0.1:1/?a`b", "http://127.0.0.1:1/?a{b",
	}
	refused := []string{
		"", "http://", "http://a b", "http://[::1", "http://127.0.0.1:1/a`b", "http://127.0.0.1:1/a<b", "http://127.0.0.1:1/a>b",
		"http://127.0.0.1:1/?a<b", "http://127.0.0.1:1/?a b", "http://127.0.0.1:1/\u007f", "http://1%27.0.0.1:1/",
		"http://a:1:2/", "http://a@/", "http://\u00e9/", "http:/127.0.0.1:1", "localhost:1/x", "not a uri",
	}
	for _, want := range []bool{true, false} {
		list := parses
		if !want {
			list = refused
		}
		for _, q := range list {
			var s string
			if err := json.Unmarshal([]byte(`"`+q+`"`), &s); err != nil {
				t.Fatal(err)
			}
			if got := parsesAsRustURI(s); got != want {
				t.Errorf("parsesAsRustURI(%q) = %v, want %v", s, got, want)
			}
		}
	}
}

// TestRequestBodyLimit: restate-server 1.7.12 reads JSON bodies of up to 2 MiB (axum's
// default limit) and refuses a longer one with 413 in plain text.
func TestRequestBodyLimit(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, newMemStore())
	body := func(n int) string {
		const head, tail = `{"public":true,"pad":"`, `"}`
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	expectError(t, admin.do(t, http.MethodPatch, "/services/Nope", body(2<<20)), 404, "not found in the schema registry: service with name 'Nope'", nil)
	expectError(t, admin.do(t, http.MethodPatch, "/services/Nope", body(2<<20+1)), 413, "Failed to buffer the request body: length limit exceeded", nil)
}

func TestRegisterRetriesLostCompareAndSet(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	store := &racingStore{memStore: newMemStore()}
	store.conflicts.Store(3)
	admin := startAdmin(t, store)
	r := admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if n := store.puts.Load(); n != 1 {
		t.Fatalf("%d successful writes, want 1", n)
	}
}

func TestConcurrentRegistrationsAllLand(t *testing.T) {
	t.Parallel()
	const n = 8
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		name := fmt.Sprintf("svc%d", i)
		sdk.manifest(name, manifestWith(fmt.Sprintf(`{"name":"S%d","ty":"SERVICE","handlers":[{"name":"h"}]},{"name":"Shared","ty":"SERVICE","handlers":[{"name":"h"}]}`, i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = admin.register(t, "/deployments", sdk, name, nil).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusCreated {
			t.Fatalf("registration %d: status %d", i, s)
		}
	}
	if got := len(admin.do(t, http.MethodGet, "/deployments", "").json(t)["deployments"].([]any)); got != n {
		t.Fatalf("%d deployments stored, want %d", got, n)
	}
	// Every registration of the shared service made a new revision.
	wantFields(t, admin.do(t, http.MethodGet, "/services/Shared", "").json(t), map[string]any{"revision": float64(n)})
}

func TestServiceEndpoints(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)

	list := admin.do(t, http.MethodGet, "/services", "")
	var names []string
	for _, s := range list.json(t)["services"].([]any) {
		names = append(names, s.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "Counter,Greeter,Signup" {
		t.Fatalf("services %v", names)
	}

	counter := admin.do(t, http.MethodGet, "/services/Counter", "").json(t)
	wantFields(t, counter, map[string]any{"ty": "VirtualObject", "public": true, "journal_retention": "1d", "abort_timeout": "10m"})
	if _, ok := counter["workflow_completion_retention"]; ok {
		t.Fatal("an object shows a workflow completion retention")
	}
	if got := fmt.Sprint(counter["retry_policy"]); got != "map[exponentiation_factor:2 initial_interval:500ms max_attempts:70 max_interval:1m on_max_attempts:Pause]" {
		t.Fatalf("retry policy %s", got)
	}
	// Restate prints the factor as a float.
	if body := admin.do(t, http.MethodGet, "/services/Counter", "").body; !strings.Contains(string(body), `"exponentiation_factor":2.0`) {
		t.Fatalf("exponentiation_factor not printed as 2.0: %s", body)
	}

	handlers := admin.do(t, http.MethodGet, "/services/Counter/handlers", "").json(t)["handlers"].([]any)
	if len(handlers) != 2 {
		t.Fatalf("handlers %v", handlers)
	}
	add := admin.do(t, http.MethodGet, "/services/Counter/handlers/Add", "").json(t)
	wantKeys(t, "handler", add, "name", "ty", "documentation", "public", "input_description", "output_description",
		"input_json_schema", "output_json_schema", "retry_policy")
	wantFields(t, add, map[string]any{"ty": "Exclusive", "input_description": "JSON integer", "output_description": "JSON integer"})
	if got := fmt.Sprint(add["retry_policy"]); got != "map[max_attempts:<nil>]" {
		t.Fatalf("handler retry policy %s", got)
	}
	get := admin.do(t, http.MethodGet, "/services/Counter/handlers/Get", "").json(t)
	wantFields(t, get, map[string]any{"ty": "Shared", "input_description": "none"})

	expectError(t, admin.do(t, http.MethodGet, "/services/Nope", ""), 404, "The requested service 'Nope' does not exist", nil)
	expectError(t, admin.do(t, http.MethodGet, "/services/Nope/handlers", ""), 404, "The requested service 'Nope' does not exist", nil)
	expectError(t, admin.do(t, http.MethodGet, "/services/Counter/handlers/Nope", ""), 404, "The requested handler 'Nope' on service 'Counter' does not exist", nil)
	expectError(t, admin.do(t, http.MethodGet, "/services/Nope/handlers/Add", ""), 404, "The requested handler 'Add' on service 'Nope' does not exist", nil)
}

func TestPatchService(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)

	tests := []struct {
		name    string
		service string
		body    string
		status  int
		want    map[string]any // fields of the answer (and of a later GET)
		message string         // for errors
	}{
		{"friendly, verbose and ISO durations", "Greeter",
			`{"public":false,"idempotency_retention":"2h","journal_retention":"1d 12h 4m 2s","inactivity_timeout":"90s","abort_timeout":"PT15M"}`,
			200, map[string]any{"public": false, "idempotency_retention": "2h", "journal_retention": "1d 12h 4m 2s", "inactivity_timeout": "1m 30s", "abort_timeout": "15m"}, ""},
		{"workflow completion retention", "Signup", `{"workflow_completion_retention":"3 hours"}`,
			200, map[string]any{"workflow_completion_retention": "3h", "journal_retention": "1d"}, ""},
		{"empty patch", "Counter", `{}`, 200, map[string]any{"name": "Counter", "revision": 1.0}, ""},
		{"completion retention on an object", "Counter", `{"workflow_completion_retention":"2h"}`,
			400, nil, "modifying retention time for service type VirtualObject is unsupported"},
		{"unparsable duration", "Signup", `{"abort_timeout":"bogus"}`, 422, nil, "abort_timeout:"},
		{"number instead of duration", "Signup", `{"abort_timeout":5}`, 422, nil, "abort_timeout: invalid type: integer `5`, expected a human-friendly duration string"},
		{"public not a bool", "Signup", `{"public":"no"}`, 422, nil, "public: invalid type: string \"no\", expected a boolean"},
		// jiff's words, as restate-server 1.7.12 answers.
		{"duration not starting with a number", "Signup", `{"journal_retention":"abc"}`, 422, nil,
			"journal_retention: failed to parse input in the \"friendly\" duration format: expected duration to start with a unit value (a decimal integer) after an optional sign, but no integer was found"},
		{"negative duration", "Signup", `{"idempotency_retention":"-1s"}`, 422, nil, "idempotency_retention: negative signed durations cannot be converted to an unsigned duration"},
		// As Restate 1.7.12: a change to an unknown service fails in the registry, a patch
		// that changes nothing in the lookup.
		{"unknown service", "Nope", `{"public":true}`, 404, nil, "not found in the schema registry: service with name 'Nope'"},
		{"unknown service, retention", "Nope", `{"journal_retention":"1h"}`, 404, nil, "not found in the schema registry: service with name 'Nope'"},
		{"unknown service, empty patch", "Nope", `{}`, 404, nil, "The requested service 'Nope' does not exist"},
		{"unknown service, null field", "Nope", `{"public":null}`, 404, nil, "The requested service 'Nope' does not exist"},
		{"not json", "Signup", `public=true`, 400, nil, "Failed to parse the request body as JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := admin.do(t, http.MethodPatch, "/services/"+tc.service, tc.body)
			if tc.want == nil {
				expectError(t, r, tc.status, tc.message, nil)
				return
			}
			if r.status != tc.status {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantFields(t, r.json(t), tc.want)
			wantFields(t, admin.do(t, http.MethodGet, "/services/"+tc.service, "").json(t), tc.want)
		})
	}

	// A private service's handlers are private too.
	greet := admin.do(t, http.MethodGet, "/services/Greeter/handlers/Greet", "").json(t)
	wantFields(t, greet, map[string]any{"public": false})
	// The change belongs to the revision: the deployment's view shows it as well.
	reg := loadTestRegistry(t, admin)
	if d := reg.Deployment(reg.Service("Greeter").DeploymentID); d.Services[slices.IndexFunc(d.Services, func(s schema.Service) bool { return s.Name == "Greeter" })].Public {
		t.Fatal("patch did not reach the deployment's copy of the service")
	}
}

func loadTestRegistry(t *testing.T, admin *testAdmin) *schema.Registry {
	t.Helper()
	reg, _, err := loadRegistry(t.Context(), admin.store, schema.BuiltinDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestUpdateDeployment(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	sdk.manifest("narrowRange", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6,"services":[]}`)
	first := admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", map[string]any{
		"additional_headers": map[string]string{"x-a": "1"},
	})
	id := first.json(t)["id"].(string)
	path := "/deployments/" + id

	// Moving the deployment keeps its services and headers.
	moved := admin.do(t, http.MethodPatch, path, `{"uri":"`+sdk.URL+`/sdk-go-service-options"}`)
	if moved.status != http.StatusOK {
		t.Fatalf("move: %d %s", moved.status, moved.body)
	}
	wantFields(t, moved.json(t), map[string]any{"id": id, "uri": sdk.URL + "/sdk-go-service-options"})
	if fmt.Sprint(moved.json(t)["additional_headers"]) != "map[x-a:1]" {
		t.Fatalf("headers lost: %s", moved.body)
	}
	if got := sdk.lastRequest("sdk-go-service-options"); got.Header.Get("x-a") != "1" {
		t.Fatal("rediscovery did not send the deployment's headers")
	}
	wantFields(t, admin.do(t, http.MethodGet, "/services/Signup", "").json(t), map[string]any{"revision": 1.0, "inactivity_timeout": "1m"})

	// With overwrite the newly discovered services replace the old ones, at the same revision.
	over := admin.do(t, http.MethodPatch, path, `{"uri":"`+sdk.URL+`/sdk-go-retry-options","overwrite":true}`)
	if over.status != http.StatusOK {
		t.Fatalf("overwrite: %d %s", over.status, over.body)
	}
	wantFields(t, admin.do(t, http.MethodGet, "/services/Retry", "").json(t), map[string]any{"deployment_id": id, "revision": 1.0})
	expectError(t, admin.do(t, http.MethodGet, "/services/Greeter", ""), 404, "'Greeter' does not exist", nil)

	expectError(t, admin.do(t, http.MethodPatch, path, `{"uri":"`+sdk.URL+`/narrowRange"}`), 400,
		"[META0016] an update deployment operation must provide an endpoint with the same services and handlers. The update tried to change the supported protocol versions from 5..=7 to 5..=6", "META0016")
	expectError(t, admin.do(t, http.MethodPatch, "/deployments/dp_11111111111111111111111", `{}`), 404, "The requested deployment 'dp_11111111111111111111111' does not exist", nil)
	expectError(t, admin.do(t, http.MethodPatch, "/deployments/x", `{}`), 400, "Invalid URL: Cannot parse `deployment`", nil)

	// PUT, the update's deprecated spelling, is refused after the id and the body are
	// checked, as restate-server 1.7.12 does (observed side by side).
	expectError(t, admin.do(t, http.MethodPut, path, `{"uri":"`+sdk.URL+`/sdk-go-service-options"}`), 405, "PUT deployment is deprecated, use PATCH instead", nil)
	expectError(t, admin.do(t, http.MethodPut, "/deployments/dp_11111111111111111111111", `{}`), 405, "PUT deployment is deprecated, use PATCH instead", nil)
	expectError(t, admin.do(t, http.MethodPut, "/deployments/x", `{}`), 400, "Invalid URL: Cannot parse `deployment`", nil)
	expectError(t, admin.do(t, http.MethodPut, path, `nonsense`), 400, "Failed to parse the request body as JSON", nil)
	// Headers that Rust's http types do not take match no variant of Restate's request enum,
	// before the deployment is looked up.
	for _, method := range []string{http.MethodPatch, http.MethodPut} {
		for _, p := range []string{path, "/deployments/dp_11111111111111111111111"} {
			expectError(t, admin.do(t, method, p, `{"additional_headers":{"a b":"c"}}`), 422,
				"Failed to deserialize the JSON body into the target type: data did not match any variant of untagged enum UpdateDeploymentRequest", nil)
		}
	}
	wantFields(t, admin.do(t, http.MethodGet, path, "").json(t), map[string]any{"uri": over.json(t)["uri"]})
}

// The body of PATCH and PUT /deployments/{id} is Restate's untagged UpdateDeploymentRequest:
// its HTTP variant needs a uri Rust parses, its Lambda variant has only optional fields, and
// both ignore keys they do not have. What restate-server 1.7.12 answered, side by side: a body
// whose HTTP fields do not fit falls back to the Lambda variant, which without an arn or
// headers changes nothing and asks the deployment nothing (200 with the deployment as it is;
// PUT 405), while null, a null overwrite or a wrongly typed Lambda field match neither (422).
// We answered 422 for the first kind, and null, {} or {"use_http_11":true} rediscovered the
// deployment.
func TestUpdateDeploymentVariants(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	id := admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil).json(t)["id"].(string)
	path := "/deployments/" + id
	uri := sdk.URL + "/sdk-go-greeter-counter-signup"
	const noVariant = "Failed to deserialize the JSON body into the target type: data did not match any variant of untagged enum UpdateDeploymentRequest"
	discoveries := func() int { return sdk.hitCount("sdk-go-greeter-counter-signup") }

	unchanged := []string{`{}`, `{"uri":5}`, `{"uri":null}`, `{"uri":"not a uri"}`, `{"use_http_11":true}`, `{"use_http_11":"yes"}`,
		`{"uri":"` + uri + `","use_http_11":5}`, `{"arn":null}`, `{"assume_role_arn":null}`, `{"additional_headers":null}`,
		`{"overwrite":true}`, `{"dry_run":true}`, `{"uri":"http://127.0.0.1:1","uri":"http://127.0.0.1:2"}`}
	for _, body := range unchanged {
		before := discoveries()
		r := admin.do(t, http.MethodPatch, path, body)
		if r.status != http.StatusOK {
			t.Errorf("PATCH %s: %d %s, want 200", body, r.status, r.body)
			continue
		}
		wantFields(t, r.json(t), map[string]any{"id": id, "uri": uri})
		if n := discoveries() - before; n != 0 {
			t.Errorf("PATCH %s asked the deployment %d times, want none", body, n)
		}
		expectError(t, admin.do(t, http.MethodPut, path, body), 405, "PUT deployment is deprecated, use PATCH instead", nil)
	}
	for _, body := range []string{`null`, `5`, `[]`, `{"arn":5}`, `{"assume_role_arn":5}`, `{"overwrite":null}`,
		`{"uri":"` + uri + `","dry_run":null}`, `{"uri":"` + uri + `","overwrite":5}`, `{"additional_headers":{"x":5}}`,
		`{"additional_headers":{"x":null}}`, `{"arn":"a","arn":"b"}`} {
		for _, method := range []string{http.MethodPatch, http.MethodPut} {
			expectError(t, admin.do(t, method, path, body), 422, noVariant, nil)
		}
	}
	// The Lambda variant's arn would make it a Lambda deployment, which this server does not
	// invoke; an unknown deployment is still looked up.
	expectError(t, admin.do(t, http.MethodPatch, path, `{"uri":5,"arn":"arn:aws:lambda:eu-central-1:1:function:f:1"}`), 400,
		"Lambda deployments are not supported by this server", nil)
	expectError(t, admin.do(t, http.MethodPatch, "/deployments/dp_11111111111111111111111", `{"use_http_11":"yes"}`), 404,
		"The requested deployment 'dp_11111111111111111111111' does not exist", nil)
	// Headers alone, in either variant, rediscover the deployment at its uri with them; a
	// uri beside an arn is the HTTP variant.
	before := discoveries()
	r := admin.do(t, http.MethodPatch, path, `{"additional_headers":{"x-a":"1"}}`)
	if r.status != http.StatusOK || fmt.Sprint(r.json(t)["additional_headers"]) != "map[x-a:1]" || discoveries() != before+1 {
		t.Fatalf("headers: %d %s, %d discoveries", r.status, r.body, discoveries()-before)
	}
	if r := admin.do(t, http.MethodPatch, path, `{"uri":"`+uri+`","arn":"x","foo":1}`); r.status != http.StatusOK || discoveries() != before+2 {
		t.Fatalf("uri beside an arn: %d %s", r.status, r.body)
	}
}

func TestDeleteDeploymentErrors(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	id := admin.register(t, "/deployments", sdk, "sdk-go-retry-options", nil).json(t)["id"].(string)
	unknown := "dp_11111111111111111111111"

	expectError(t, admin.do(t, http.MethodDelete, "/deployments/"+id, ""), 501, "force=true", nil)
	expectError(t, admin.do(t, http.MethodDelete, "/deployments/"+id+"?force=false", ""), 501, "force=true", nil)
	expectError(t, admin.do(t, http.MethodDelete, "/deployments/"+id+"?force=yes", ""), 400, "Failed to deserialize query string: force: provided string was not `true` or `false`", nil)
	expectError(t, admin.do(t, http.MethodDelete, "/deployments/bogus?force=true", ""), 400, "Invalid URL: Cannot parse `deployment` with value `bogus`", nil)
	expectError(t, admin.do(t, http.MethodGet, "/deployments/bogus", ""), 400, "Invalid URL: Cannot parse `deployment` with value `bogus`", nil)
	// The reason is the id parser's, as restate-server 1.7.12 words it.
	for id, reason := range map[string]string{
		"bogus": "bad format", "dp_nope": "unrecognized codec version", "dp_1": "bad length",
		"dp_1zzzzzzzzzzzzzzzzzzzzzz": "base62 decode error", "sub_11111111111111111111111": "id doesn't match the expected type",
		"xx_11111111111111111111111": "unrecognized resource type: xx",
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodPatch} {
			expectError(t, admin.do(t, method, "/deployments/"+id, `{}`), 400, "Invalid URL: Cannot parse `deployment` with value `"+id+"`: "+reason, nil)
		}
	}
	expectError(t, admin.do(t, http.MethodDelete, "/deployments/"+unknown+"?force=true", ""), 404, "not found in the schema registry: deployment with id '"+unknown+"'", nil)
	if r := admin.do(t, http.MethodGet, "/services/Retry", ""); r.status != http.StatusOK {
		t.Fatalf("failed deletes removed the service: %d", r.status)
	}
}

func TestVersionedRoutes(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	admin.register(t, "/deployments", sdk, "sdk-go-retry-options", nil)

	for _, prefix := range []string{"", "/v2", "/v3", "/v4"} {
		for _, path := range []string{"/services", "/services/Retry", "/services/Retry/handlers/Do", "/deployments", "/version"} {
			if r := admin.do(t, http.MethodGet, prefix+path, ""); r.status != http.StatusOK {
				t.Errorf("GET %s%s: %d %s", prefix, path, r.status, r.body)
			}
		}
		if r := admin.do(t, http.MethodGet, prefix+"/health", ""); r.status != http.StatusOK || len(r.body) != 0 {
			t.Errorf("GET %s/health: %d %q", prefix, r.status, r.body)
		}
	}
	for _, path := range []string{"/v1/services", "/v1/health", "/v1/version", "/v1"} {
		expectError(t, admin.do(t, http.MethodGet, path, ""), 400, "Unsupported Admin API version V1. This server supports versions between V2 and V4.", nil)
	}
	expectError(t, admin.do(t, http.MethodGet, "/v5/services", ""), 404, "No route", nil)
	expectError(t, admin.do(t, http.MethodGet, "/nope", ""), 404, "No route", nil)

	version := admin.do(t, http.MethodGet, "/version", "").json(t)
	wantKeys(t, "version", version, "version", "min_admin_api_version", "max_admin_api_version", "ingress_endpoint", "features")
	wantFields(t, version, map[string]any{"version": "1.7.12", "min_admin_api_version": 2.0, "max_admin_api_version": 4.0, "ingress_endpoint": "http://127.0.0.1:18080/"})
	if f := version["features"].(map[string]any); f["protocol_v7"] != false {
		t.Fatalf("features %v", f)
	}
	if r := admin.do(t, http.MethodHead, "/v3/services", ""); r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("HEAD: %d %q", r.status, r.body)
	}
}

// TestPathParameters: restate-server 1.7.12 routes on the raw path and then percent-decodes
// each parameter: an encoded slash stays in its parameter, a parameter that does not decode
// to UTF-8 is refused in plain text naming it, and paths are not cleaned (no redirect).
func TestPathParameters(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	admin.register(t, "/deployments", sdk, "sdk-go-greeter-counter-signup", nil)

	expectError(t, admin.do(t, http.MethodGet, "/services/Gree%2Fter", ""), 404, "The requested service 'Gree/ter' does not exist", nil)
	expectError(t, admin.do(t, http.MethodGet, "/services/Gree%2Fter/handlers", ""), 404, "The requested service 'Gree/ter' does not exist", nil)
	expectError(t, admin.do(t, http.MethodGet, "/v2/services/%C3%A9", ""), 404, "The requested service 'é' does not exist", nil)
	if r := admin.do(t, http.MethodGet, "/services/Gr%65eter", ""); r.status != http.StatusOK {
		t.Fatalf("GET /services/Gr%%65eter: %d %s", r.status, r.body)
	}
	expectError(t, admin.do(t, http.MethodPatch, "/invocations/inv_1%2Fx/cancel", ""), 400, "The request field 'invocation_id' is invalid. Reason: bad length", nil)
	expectError(t, admin.do(t, http.MethodGet, "/deployments/dp_1%2F", ""), 400, "Invalid URL: Cannot parse `deployment` with value `dp_1/`: bad length", nil)
	for _, c := range []struct{ method, path, param string }{
		{http.MethodGet, "/services/%ff", "service"},
		{http.MethodGet, "/services/%ff/handlers/x", "service"},
		{http.MethodPost, "/services/%ff/state", "service"},
		{http.MethodGet, "/services/Greeter/handlers/%ff", "handler"},
		{http.MethodGet, "/deployments/%ff", "deployment"},
		{http.MethodPatch, "/invocations/%ff/cancel", "invocation_id"},
		{http.MethodDelete, "/v3/invocations/%ff", "invocation_id"},
		{http.MethodDelete, "/subscriptions/%ff", "subscription"},
		{http.MethodGet, "/kafka-clusters/%ff", "cluster_name"},
	} {
		r := admin.do(t, c.method, c.path, `{}`)
		if want := "Invalid URL: Invalid UTF-8 in `" + c.param + "`"; r.status != 400 || string(r.body) != want || r.header.Get("content-type") != "text/plain; charset=utf-8" {
			t.Errorf("%s %s: %d %q %q, want 400 %q in plain text", c.method, c.path, r.status, r.header.Get("content-type"), r.body, want)
		}
	}
	for _, path := range []string{"//services", "/services//handlers", "/services/Greeter/../Greeter"} {
		if r := admin.do(t, http.MethodGet, path, ""); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404 (no cleaning)", path, r.status, r.body)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, newMemStore())
	tests := []struct{ method, path, allow string }{
		{http.MethodPut, "/services", "GET,HEAD"},
		{http.MethodDelete, "/services/Counter", "GET,HEAD,PATCH"},
		{http.MethodPost, "/health", "GET,HEAD"},
		{http.MethodPost, "/v4/deployments/dp_11111111111111111111111", "DELETE,GET,HEAD,PATCH,PUT"},
		{http.MethodDelete, "/v2/deployments", "GET,HEAD,POST"},
	}
	for _, tc := range tests {
		r := admin.do(t, tc.method, tc.path, "")
		expectError(t, r, http.StatusMethodNotAllowed, "Method "+tc.method+" is not allowed", nil)
		if got := r.header.Get("allow"); got != tc.allow {
			t.Errorf("%s %s: allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	got := keys(m)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s keys %v, want %v", what, got, want)
	}
}

func wantFields(t *testing.T, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Fatalf("%s = %#v, want %#v (in %v)", k, m[k], v, m)
		}
	}
}
