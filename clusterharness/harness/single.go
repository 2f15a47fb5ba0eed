// Package harness starts engines and example deployments for integration tests: a
// single node in this process, or the real binaries as child processes (for crash tests).
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/node"
	"gorestate.dev/metadatad"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/config"
)

// Single is a single node running in the test process.
type Single struct {
	Node       *node.Node
	IngressURL string
	AdminURL   string
	Config     *config.Config
}

// TestConfig is a node configuration for tests: data under dir, every listener on a free
// loopback port.
func TestConfig(dir string) *config.Config {
	cfg := config.Default()
	cfg.NodeName = "node-1"
	cfg.BaseDir = dir
	cfg.BindAddress = "127.0.0.1:0"
	cfg.Admin.BindAddress = "127.0.0.1:0"
	cfg.Ingress.BindAddress = "127.0.0.1:0"
	cfg.Gossip.BindAddress = "127.0.0.1:0"
	// Both were derived from the default fabric and gossip ports (5122, 5123): a test node
	// must not ask, or gossip with, whatever node runs on this machine's default ports.
	cfg.Gossip.Seeds = nil
	cfg.MetadataClient.Addresses = nil
	cfg.DefaultNumPartitions = 4
	return cfg
}

// StartSingle starts a node on cfg and stops it when the test ends.
func StartSingle(t testing.TB, cfg *config.Config) *Single {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: "node", Level: hclog.Warn, Output: testWriter{t}})
	n, err := node.Start(context.Background(), cfg, logger)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.Stop)
	return &Single{
		Node:       n,
		IngressURL: "http://" + n.IngressAddr.String(),
		AdminURL:   "http://" + n.AdminAddr.String(),
		Config:     cfg,
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// StartExamples serves the example services on a free loopback port until the test ends
// and returns their deployment URI.
func StartExamples(t testing.TB) string {
	return StartExamplesWith(t, examples.ServeOptions{})
}

// StartExamplesWith is StartExamples with options: request identity keys, or TLS (then the
// URI is https://127.0.0.1:port).
func StartExamplesWith(t testing.TB, opts examples.ServeOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = examples.ServeListenerWith(ctx, ln, opts)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if opts.TLS != nil {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// Register registers a deployment and fails the test unless the admin API accepts it.
func Register(t testing.TB, adminURL, uri string) {
	t.Helper()
	status, body := Do(t, http.MethodPost, adminURL+"/deployments", `{"uri":"`+uri+`"}`, map[string]string{"content-type": "application/json"})
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("register %s: %d %s", uri, status, body)
	}
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

var client = &http.Client{Timeout: 60 * time.Second}

// Send sends a request and returns the answer.
func Send(method, url, body string, headers map[string]string) (*Response, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.String()}, nil
}

// Do sends a request and fails the test on a transport error.
func Do(t testing.TB, method, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	resp, err := Send(method, url, body, headers)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.Status, resp.Body
}

// WaitPortFree waits (up to 10s) until addr can be listened on again. A node restarted on a
// fixed port can find it taken for a moment by an outgoing connection of a test running in
// parallel (the kernel hands out local ports from the same range as port 0).
func WaitPortFree(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s still in use after 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Expect fails the test unless the answer has the given status and body.
func Expect(t testing.TB, resp *Response, status int, body string) {
	t.Helper()
	if resp.Status != status || (body != "" && resp.Body != body) {
		t.Fatalf("got %d %q, want %d %q", resp.Status, resp.Body, status, body)
	}
}

// StartMetadatad starts a metadatad daemon in-process and stops it when the test ends (or
// when the returned stop is called).
func StartMetadatad(t testing.TB, cfg *config.Config) (d *metadatad.Daemon, stop func()) {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Name: cfg.NodeName, Level: hclog.Warn, Output: testWriter{t}})
	ctx, cancel := context.WithCancel(context.Background())
	d, err := metadatad.Start(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("start metadatad %s: %v", cfg.NodeName, err)
	}
	stop = func() { cancel(); <-d.Done() }
	t.Cleanup(stop)
	return d, stop
}

// ClusterStatus reads the cluster status from a metadata node's fabric address.
func ClusterStatus(fabricURL string) (*cluster.Status, error) {
	resp, err := Send(http.MethodGet, strings.TrimRight(fabricURL, "/")+cluster.PathPrefix+"status", "", nil)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("cluster status: %d %s", resp.Status, resp.Body)
	}
	var st cluster.Status
	if err := json.Unmarshal([]byte(resp.Body), &st); err != nil {
		return nil, fmt.Errorf("decode cluster status: %w", err)
	}
	return &st, nil
}
