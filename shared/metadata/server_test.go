package metadata

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHTTPHandlerStatuses(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := openLocal(t)
	if _, err := s.Put(ctx, "k", []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a/b", []byte("slash"), 0); err != nil {
		t.Fatal(err)
	}
	h := NewHTTPHandler(s)
	tests := []struct {
		name        string
		method      string
		target      string
		body        string
		wantStatus  int
		wantVersion string
		wantBody    string // substring
	}{
		{"get", "GET", "/metadata/v1/k", "", 200, "1", "hello"},
		{"get escaped key", "GET", "/metadata/v1/a%2Fb", "", 200, "1", "slash"},
		{"get absent", "GET", "/metadata/v1/nope", "", 404, "", `not found: key "nope"`},
		{"put mismatch", "PUT", "/metadata/v1/k?expected=0", "x", 409, "", "is at version 1, not 0"},
		{"put", "PUT", "/metadata/v1/k?expected=1", "world", 200, "2", "2"},
		{"get after put", "GET", "/metadata/v1/k", "", 200, "2", "world"},
		{"put new key", "PUT", "/metadata/v1/fresh?expected=0", "v", 200, "1", "1"},
		{"put without expected", "PUT", "/metadata/v1/k", "x", 400, "", "bad expected"},
		{"newer-than already newer", "GET", "/metadata/v1/k?newer-than=1", "", 200, "2", "world"},
		{"newer-than times out", "GET", "/metadata/v1/k?newer-than=2&wait=20ms", "", 304, "", ""},
		{"bad newer-than", "GET", "/metadata/v1/k?newer-than=x", "", 400, "", "bad newer-than"},
		{"bad wait", "GET", "/metadata/v1/k?newer-than=2&wait=soon", "", 400, "", "bad wait"},
		{"empty key", "GET", "/metadata/v1/", "", 400, "", "bad key"},
		{"unknown path", "GET", "/metadata/v2/k", "", 404, "", "unknown path"},
		{"method", "DELETE", "/metadata/v1/k", "", 405, "", "not allowed"},
	}
	for _, tt := range tests {
		req := httptest.NewRequestWithContext(ctx, tt.method, tt.target, strings.NewReader(tt.body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.wantStatus {
			t.Errorf("%s: status %d, want %d (body %q)", tt.name, rec.Code, tt.wantStatus, rec.Body)
		}
		if got := rec.Header().Get(VersionHeader); got != tt.wantVersion {
			t.Errorf("%s: %s = %q, want %q", tt.name, VersionHeader, got, tt.wantVersion)
		}
		if !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("%s: body %q lacks %q", tt.name, rec.Body, tt.wantBody)
		}
	}
}

// failingStore answers every call with err.
type failingStore struct{ err error }

func (f failingStore) Get(context.Context, string) (Versioned, error) { return Versioned{}, f.err }
func (f failingStore) Put(context.Context, string, []byte, uint64) (uint64, error) {
	return 0, f.err
}
func (f failingStore) WaitNewer(context.Context, string, uint64) (Versioned, error) {
	return Versioned{}, f.err
}

func TestHTTPHandlerStoreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{ErrClosed, http.StatusServiceUnavailable},
		{ErrUnavailable, http.StatusServiceUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		NewHTTPHandler(failingStore{tt.err}).ServeHTTP(rec, httptest.NewRequest("GET", "/metadata/v1/k", nil))
		if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.err.Error()) {
			t.Errorf("%v: %d %q, want %d with the error text", tt.err, rec.Code, rec.Body, tt.want)
		}
	}
}
