package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"gorestate.dev/shared/h2c"
)

// maxManifestSize bounds a discovery response; manifests carry JSON schemas, so they can be
// large, but not unboundedly so.
const maxManifestSize = 16 << 20

// discoveryRetry is how often and how patiently discovery retries transient failures. A
// variable so tests can shorten the waits.
var discoveryRetry = struct {
	attempts int
	initial  time.Duration
	max      time.Duration
}{attempts: 5, initial: 100 * time.Millisecond, max: 2 * time.Second}

// retryableStatus lists the answers that say "try again later" rather than "wrong endpoint".
var retryableStatus = map[int]bool{
	http.StatusRequestTimeout:      true,
	http.StatusTooManyRequests:     true,
	http.StatusInternalServerError: true,
	http.StatusBadGateway:          true,
	http.StatusServiceUnavailable:  true,
	http.StatusGatewayTimeout:      true,
}

// defaultDiscoveryClient is used when Discover gets no client.
var defaultDiscoveryClient = &http.Client{Transport: h2c.NewTransport()}

// Discover fetches and checks the endpoint manifest of the deployment at uri:
// GET {uri path}/discover (query string kept) with the manifest versions this server reads in
// accept and additionalHeaders added. Transport errors and 408/429/5xx answers are retried a
// few times with exponential backoff; any other answer is final. hc should speak h2c (see
// package h2c), or HTTP/1.1 for deployments registered with use_http_11. Errors are
// *DiscoveryError values.
func Discover(ctx context.Context, hc *http.Client, uri string, additionalHeaders map[string]string) (*Manifest, error) {
	if hc == nil {
		hc = defaultDiscoveryClient
	}
	target, err := discoverURL(uri)
	if err != nil {
		return nil, &DiscoveryError{Code: codeDiscoveryFailed, Message: err.Error(), Err: err}
	}
	backoff := discoveryRetry.initial
	for attempt := 1; ; attempt++ {
		m, err := discoverOnce(ctx, hc, uri, target, additionalHeaders)
		if err == nil {
			return m, nil
		}
		var de *DiscoveryError
		if !errors.As(err, &de) || !de.Retryable || attempt >= discoveryRetry.attempts || ctx.Err() != nil {
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, discoveryRetry.max)
	}
}

// discoverURL joins the deployment URI's path with /discover, keeping its query string.
func discoverURL(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("bad deployment uri %q: %w", uri, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("deployment uri %q is not absolute", uri)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/discover"
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/") + "/discover"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

func discoverOnce(ctx context.Context, hc *http.Client, uri, target string, additionalHeaders map[string]string) (*Manifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, &DiscoveryError{Code: codeDiscoveryFailed, Message: err.Error(), Err: err}
	}
	for k, v := range additionalHeaders {
		req.Header.Set(k, v)
	}
	// Set last: a registration's additional headers must not change what we can parse.
	req.Header.Set("accept", manifestAccept)

	resp, err := hc.Do(req)
	if err != nil {
		return nil, &DiscoveryError{
			Code:      codeDiscoveryFailed,
			Message:   fmt.Sprintf("error when calling '%s': %v", uri, err),
			Retryable: ctx.Err() == nil,
			Err:       err,
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, &DiscoveryError{
			Code:      codeDiscoveryFailed,
			Message:   fmt.Sprintf("cannot read the discovery response body of '%s': %v", uri, err),
			Retryable: ctx.Err() == nil,
			Err:       err,
		}
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = " Make sure the provided URI has the correct path where the Restate SDK endpoint is mounted."
		}
		return nil, &DiscoveryError{
			Code: codeDiscoveryFailed,
			Message: fmt.Sprintf("got status code '%s'.%s Response headers: %s. Body: %s",
				resp.Status, hint, formatHeaders(resp.Header), truncate(body, 4096)),
			Retryable: retryableStatus[resp.StatusCode],
		}
	}
	if len(body) > maxManifestSize {
		return nil, badResponse(fmt.Sprintf("the manifest is larger than %d bytes", maxManifestSize))
	}
	ct := resp.Header.Get("content-type")
	version := ManifestVersionOf(ct)
	if version == 0 {
		return nil, badResponse(fmt.Sprintf("Bad content type header: %q. Expected one of '%s'", ct, manifestAccept))
	}
	m, err := ParseManifest(body)
	if err != nil {
		return nil, err
	}
	m.ManifestVersion = version
	m.SDKVersion = resp.Header.Get("x-restate-server")
	m.HTTPVersion = resp.Proto
	return m, nil
}

// formatHeaders renders response headers for an error message, in a stable order.
func formatHeaders(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%q: %q", strings.ToLower(k), strings.Join(h[k], ", ")))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
