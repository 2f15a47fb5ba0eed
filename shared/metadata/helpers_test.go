package metadata

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testTimeout bounds every blocking call in these tests so a bug fails instead of hanging.
const testTimeout = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func openLocal(t *testing.T) *LocalStore {
	t.Helper()
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serve starts an HTTP metadata server for s on 127.0.0.1.
func serve(t *testing.T, s Store) *httptest.Server {
	t.Helper()
	return serveHandler(t, NewHTTPHandler(s))
}

// serveHandler starts h on 127.0.0.1 (httptest's default listener) until the test ends.
func serveHandler(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
