package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
)

func TestMain(m *testing.M) {
	// Retried discoveries must not slow the suite down.
	discoveryRetry.initial = time.Millisecond
	discoveryRetry.max = 5 * time.Millisecond
	os.Exit(m.Run())
}

// memStore is an in-memory metadata.Store with the real compare-and-set semantics.
type memStore struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every Put
	values  map[string]metadata.Versioned
	puts    atomic.Int32
}

func newMemStore() *memStore {
	return &memStore{changed: make(chan struct{}), values: map[string]metadata.Versioned{}}
}

func (s *memStore) Get(_ context.Context, key string) (metadata.Versioned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	if !ok {
		return metadata.Versioned{}, metadata.ErrNotFound
	}
	return v, nil
}

func (s *memStore) Put(_ context.Context, key string, value []byte, expected uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values[key].Version != expected {
		return 0, metadata.ErrVersionMismatch
	}
	v := metadata.Versioned{Version: expected + 1, Value: bytes.Clone(value)}
	s.values[key] = v
	s.puts.Add(1)
	close(s.changed)
	s.changed = make(chan struct{})
	return v.Version, nil
}

func (s *memStore) WaitNewer(ctx context.Context, key string, version uint64) (metadata.Versioned, error) {
	for {
		s.mu.Lock()
		v, ok := s.values[key]
		ch := s.changed
		s.mu.Unlock()
		if ok && v.Version > version {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return metadata.Versioned{}, ctx.Err()
		case <-ch:
		}
	}
}

// racingStore makes the first Puts fail as if another admin had written in between.
type racingStore struct {
	*memStore
	conflicts atomic.Int32
}

func (s *racingStore) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	if s.conflicts.Add(-1) >= 0 {
		return 0, metadata.ErrVersionMismatch
	}
	return s.memStore.Put(ctx, key, value, expected)
}

// sdkServer is a fake SDK deployment speaking only h2c, like sdk-go. GET /{name}/discover
// answers with testdata/{name}.json unless a route for {name} was set.
type sdkServer struct {
	URL    string
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
	last   map[string]*http.Request
}

func startSDK(t *testing.T) *sdkServer {
	t.Helper()
	return startSDKWith(t, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) })
}

func startSDKWith(t *testing.T, protocols func(*http.Protocols)) *sdkServer {
	t.Helper()
	s := &sdkServer{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}, last: map[string]*http.Request{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	protocols(&p)
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), Protocols: &p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.URL = "http://" + ln.Addr().String()
	return s
}

func (s *sdkServer) serve(w http.ResponseWriter, r *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if rest != "discover" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.hits[name]++
	s.last[name] = r.Clone(context.Background())
	route := s.routes[name]
	s.mu.Unlock()
	if route != nil {
		route(w, r)
		return
	}
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	serveManifest(w, b)
}

func serveManifest(w http.ResponseWriter, body []byte) {
	w.Header().Set("content-type", "application/vnd.restate.endpointmanifest.v4+json")
	w.Header().Set("x-restate-server", "restate-sdk-go/v1.2.0")
	_, _ = w.Write(body)
}

// handle sets the answer for GET /{name}/discover.
func (s *sdkServer) handle(name string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[name] = h
}

// manifest makes /{name}/discover serve body as a v4 manifest.
func (s *sdkServer) manifest(name, body string) {
	s.handle(name, func(w http.ResponseWriter, _ *http.Request) { serveManifest(w, []byte(body)) })
}

func (s *sdkServer) hitCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[name]
}

func (s *sdkServer) lastRequest(name string) *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[name]
}

// testAdmin is the admin API under test, with a fixed clock and predictable deployment ids.
type testAdmin struct {
	*httptest.Server
	store *memStore
}

var testClock = time.Date(2026, 11, 21, 22, 2, 50, 139_456_000, time.UTC)

func startAdmin(t *testing.T, store metadata.Store, configure ...func(*Options)) *testAdmin {
	t.Helper()
	var n atomic.Uint32
	opts := Options{
		Store:      store,
		HTTPClient: &http.Client{Transport: h2c.NewTransport()},
		IngressURL: "http://127.0.0.1:18080/",
		now:        func() time.Time { return testClock },
		newID: func() string {
			var u [16]byte
			v := n.Add(1)
			u[0], u[15] = 0x01, byte(v) // timestamp-ish high byte keeps the id well-formed
			return ids.FormatDeploymentID(u)
		},
	}
	for _, c := range configure {
		c(&opts)
	}
	srv := httptest.NewServer(NewHandler(opts))
	t.Cleanup(srv.Close)
	ms, _ := store.(*memStore)
	return &testAdmin{Server: srv, store: ms}
}

// response is a finished admin API exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (a *testAdmin) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// register posts a registration of sdk's /{name} endpoint; extra is merged into the body.
func (a *testAdmin) register(t *testing.T, path string, sdk *sdkServer, name string, extra map[string]any) response {
	t.Helper()
	body := map[string]any{"uri": sdk.URL + "/" + name}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return a.do(t, http.MethodPost, path, string(b))
}

// errorBody checks an admin error response: status, message and restate_code (nil = null).
func expectError(t *testing.T, r response, status int, wantMessage string, wantCode any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if bodyRejection(status, wantMessage) {
		// Restate's HTTP framework rejects bodies in plain text.
		if ct := r.header.Get("content-type"); ct != "text/plain; charset=utf-8" {
			t.Fatalf("content-type %q, want text/plain", ct)
		}
		if !strings.Contains(string(r.body), wantMessage) {
			t.Fatalf("body %q does not contain %q", r.body, wantMessage)
		}
		return
	}
	if ct := r.header.Get("content-type"); ct != "application/json" {
		t.Fatalf("content-type %q, want application/json", ct)
	}
	m := r.json(t)
	if len(m) != 2 {
		t.Fatalf("error body has keys %v, want message and restate_code", keys(m))
	}
	msg, _ := m["message"].(string)
	if !strings.Contains(msg, wantMessage) {
		t.Fatalf("message %q does not contain %q", msg, wantMessage)
	}
	if got := m["restate_code"]; got != wantCode {
		t.Fatalf("restate_code %v, want %v", got, wantCode)
	}
}

// bodyRejection reports whether an expected error is one of the rejections (of a request's
// body, path, query string or API version) that Restate answers in plain text.
func bodyRejection(status int, message string) bool {
	switch status {
	case 400:
		return strings.HasPrefix(message, "Failed to parse the request body as JSON") ||
			strings.HasPrefix(message, "Invalid URL: Cannot parse") ||
			strings.HasPrefix(message, "Failed to deserialize query string") ||
			strings.HasPrefix(message, "Unsupported Admin API version")
	case 413:
		return strings.HasPrefix(message, "Failed to buffer the request body")
	case 415:
		return strings.HasPrefix(message, "Expected request with `Content-Type: application/json`")
	case 422:
		return true
	}
	return false
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkRegistration registers manifest name of sdk on admin as a dry run and compares the
// answer with the recorded one at golden (ids and other run-dependent values normalized).
func checkRegistration(t *testing.T, admin *testAdmin, sdk *sdkServer, name, golden string) {
	t.Helper()
	resp := admin.register(t, "/deployments", sdk, name, map[string]any{"dry_run": true})
	if resp.status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	got, wantN := normalizeRegistration(t, resp.body), normalizeRegistration(t, want)
	if !reflect.DeepEqual(got, wantN) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(wantN, "", " ")
		t.Fatalf("registration differs from Restate's\n--- got\n%s\n--- want\n%s", gb, wb)
	}
}
