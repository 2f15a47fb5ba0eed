package h2c

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts accepted connections, to tell multiplexed streams from new dials.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// startServer serves h on 127.0.0.1:0 with only the given protocols enabled, the way sdk-go
// serves only h2c.
func startServer(t *testing.T, h http.Handler, configure func(*http.Protocols)) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	var p http.Protocols
	configure(&p)
	srv := &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(cl) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), cl
}

func h2cOnly(p *http.Protocols)   { p.SetUnencryptedHTTP2(true) }
func http1Only(p *http.Protocols) { p.SetHTTP1(true) }

func protoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	})
}

func get(ctx context.Context, rt http.RoundTripper, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTransportProtocols(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		transport func() *http.Transport
		server    func(*http.Protocols)
		wantProto string // "" = the exchange must fail
	}{
		{"h2c transport to h2c-only server", NewTransport, h2cOnly, "HTTP/2.0"},
		{"h2c transport to http1-only server", NewTransport, http1Only, ""},
		{"http1 transport to http1-only server", NewHTTP11Transport, http1Only, "HTTP/1.1"},
		{"http1 transport to h2c-only server", NewHTTP11Transport, h2cOnly, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, _ := startServer(t, protoHandler(), tc.server)
			tr := tc.transport()
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := get(ctx, tr, url+"/discover")
			if tc.wantProto == "" {
				if err == nil && (got == "HTTP/2.0" || got == "HTTP/1.1") {
					t.Fatalf("expected the exchange to fail, server saw %q", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("request failed: %v", err)
			}
			if got != tc.wantProto {
				t.Fatalf("server saw %q, want %q", got, tc.wantProto)
			}
		})
	}
}

// TestTransportTLSUsesHTTP2 checks the https:// path negotiates h2 through ALPN.
func TestTransportTLSUsesHTTP2(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(protoHandler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	tr := NewTransport()
	defer tr.CloseIdleConnections()
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := get(ctx, tr, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got != "HTTP/2.0" {
		t.Fatalf("server saw %q, want HTTP/2.0", got)
	}
}

// TestTransportMultiplexesStreams holds many requests open at once and checks they share one
// connection, which is what lets the invoker run many invocations against a deployment.
func TestTransportMultiplexesStreams(t *testing.T) {
	t.Parallel()
	const streams = 32
	var (
		mu      sync.Mutex
		inside  int
		allHere = make(chan struct{})
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warm" {
			return
		}
		mu.Lock()
		inside++
		if inside == streams {
			close(allHere)
		}
		mu.Unlock()
		select {
		case <-allHere: // every stream is open at the same time
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "ok")
	})
	url, ln := startServer(t, h, h2cOnly)
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Establish the connection first: concurrent first requests may each dial before any
	// connection exists, which is a property of connection setup and not of multiplexing.
	if _, err := get(ctx, tr, url+"/warm"); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := get(ctx, tr, url+"/s")
			if err == nil && body != "ok" {
				err = fmt.Errorf("body %q", body)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := ln.accepted.Load(); n != 1 {
		t.Fatalf("%d connections for %d concurrent streams, want 1", n, streams)
	}
}

// TestTransportFullDuplex exchanges messages in lock step on one stream: the client only sends
// the next line after reading the echo of the previous one, as the invoker does in bidi mode.
func TestTransportFullDuplex(t *testing.T) {
	t.Parallel()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		if err := rc.Flush(); err != nil {
			return
		}
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			if _, err := fmt.Fprintf(w, "echo %s\n", sc.Text()); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
	url, _ := startServer(t, echo, h2cOnly)
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/invoke/S/h", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("proto %s, want HTTP/2", resp.Proto)
	}
	lines := bufio.NewReader(resp.Body)
	for i := range 5 {
		if _, err := fmt.Fprintf(pw, "m%d\n", i); err != nil {
			t.Fatal(err)
		}
		got, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read echo %d: %v", i, err)
		}
		if want := fmt.Sprintf("echo m%d\n", i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(lines); err != nil || len(rest) != 0 {
		t.Fatalf("after close: %q, %v", rest, err)
	}
}
