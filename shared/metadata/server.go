package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HTTP API of a metadata server, mounted under /metadata/ on the fabric listener:
//
//	GET /metadata/v1/{key}                 200 value + version header, 404 if absent
//	GET /metadata/v1/{key}?newer-than=N    long poll: 200 once newer than N, 304 after the wait
//	PUT /metadata/v1/{key}?expected=N      200 + new version, 409 on a version mismatch
//
// A long poll waits up to LongPollWait; a client may ask for less with wait=<Go duration>.
const (
	PathPrefix    = "/metadata/"
	objectPath    = PathPrefix + "v1/"
	VersionHeader = "x-metadata-version"
	// OutcomeHeader is "unknown" on a failed PUT that may still have taken effect (the
	// store's error is an ErrOutcomeUnknown); a 500 without it is a write the store failed.
	OutcomeHeader = "x-metadata-outcome"
	LongPollWait  = 30 * time.Second
	// maxValueBytes bounds a PUT body; the schema, the largest object, stays far below it.
	maxValueBytes = 64 << 20
)

// NewHTTPHandler serves s over the metadata HTTP API. Error bodies are one line of text.
func NewHTTPHandler(s Store) http.Handler {
	return &httpHandler{store: s}
}

type httpHandler struct{ store Store }

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), objectPath)
	if !ok {
		httpError(w, http.StatusNotFound, fmt.Sprintf("unknown path %q: want %s{key}", r.URL.Path, objectPath))
		return
	}
	key, err := url.PathUnescape(rest)
	if err != nil || key == "" {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("bad key %q", rest))
		return
	}
	switch r.Method {
	case http.MethodGet:
		if r.URL.Query().Has("newer-than") {
			h.waitNewer(w, r, key)
			return
		}
		h.get(w, r, key)
	case http.MethodPut:
		h.put(w, r, key)
	default:
		w.Header().Set("Allow", "GET, PUT")
		httpError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: want GET or PUT", r.Method))
	}
}

func (h *httpHandler) get(w http.ResponseWriter, r *http.Request, key string) {
	v, err := h.store.Get(r.Context(), key)
	if err != nil {
		storeError(w, err)
		return
	}
	writeVersioned(w, v)
}

func (h *httpHandler) waitNewer(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	version, err := strconv.ParseUint(q.Get("newer-than"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("bad newer-than %q: want a version number", q.Get("newer-than")))
		return
	}
	wait := LongPollWait
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("bad wait %q: want a duration such as 5s", s))
			return
		}
		wait = min(d, LongPollWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	v, err := h.store.WaitNewer(ctx, key, version)
	switch {
	case err == nil:
		writeVersioned(w, v)
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		w.WriteHeader(http.StatusNotModified)
	case r.Context().Err() != nil:
		// The client went away; nobody reads a response.
	default:
		storeError(w, err)
	}
}

func (h *httpHandler) put(w http.ResponseWriter, r *http.Request, key string) {
	expected, err := strconv.ParseUint(r.URL.Query().Get("expected"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("bad expected %q: want the version the write replaces (0 for a new key)", r.URL.Query().Get("expected")))
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("value larger than %d bytes", maxValueBytes))
			return
		}
		httpError(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}
	version, err := h.store.Put(r.Context(), key, value, expected)
	if err != nil {
		storeError(w, err)
		return
	}
	w.Header().Set(VersionHeader, strconv.FormatUint(version, 10))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%d\n", version)
}

func writeVersioned(w http.ResponseWriter, v Versioned) {
	w.Header().Set(VersionHeader, strconv.FormatUint(v.Version, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(v.Value)))
	_, _ = w.Write(v.Value)
}

// storeError maps Store errors to statuses the Client maps back. Unavailability is 503 so
// clients fail over to another server.
func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrVersionMismatch):
		httpError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrClosed), errors.Is(err, ErrUnavailable):
		httpError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrOutcomeUnknown):
		w.Header().Set(OutcomeHeader, "unknown")
		httpError(w, http.StatusInternalServerError, err.Error())
	default:
		httpError(w, http.StatusInternalServerError, err.Error())
	}
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}
