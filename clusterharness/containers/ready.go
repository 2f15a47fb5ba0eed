package containers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"

	"gorestate.dev/shared/h2c"
)

// hostIP is the only address tests use to reach containers: every port is published on
// loopback only.
const hostIP = "127.0.0.1"

// httpReady is a wait strategy that polls an HTTP endpoint through the port mapped on
// 127.0.0.1 until ok accepts the status. Unlike wait.ForHTTP it reads the mapped port again
// on every poll (ports change when a container restarts), can speak h2c (sdk-go's server
// speaks nothing else), and gives up at once when the container has exited instead of
// waiting out its timeout.
type httpReady struct {
	port    string // container port, e.g. "9070/tcp"
	path    string
	h2c     bool
	ok      func(status int) bool
	timeout time.Duration
}

var _ wait.Strategy = httpReady{}

func (s httpReady) String() string {
	return fmt.Sprintf("HTTP GET %s on %s", s.path, s.port)
}

// WaitUntilReady implements wait.Strategy.
func (s httpReady) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	if s.h2c {
		hc.Transport = h2c.NewTransport()
	} else {
		hc.Transport = &http.Transport{DisableKeepAlives: true}
	}
	defer hc.CloseIdleConnections()
	last := fmt.Errorf("not polled yet")
	for {
		if state, err := target.State(ctx); err == nil && !state.Running && !state.Restarting {
			return fmt.Errorf("%s: the container stopped (status %s, exit code %d)", s, state.Status, state.ExitCode)
		}
		if err := s.probe(ctx, hc, target); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready after %v: %w", s, s.timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s httpReady) probe(ctx context.Context, hc *http.Client, target wait.StrategyTarget) error {
	port, err := target.MappedPort(ctx, s.port)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostIP+":"+port.Port()+s.path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !s.ok(resp.StatusCode) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func statusOK(status int) bool { return status == http.StatusOK }

// statusRouted accepts any answer but 404: the route exists, so the daemon got past the
// point where it adds it.
func statusRouted(status int) bool { return status != http.StatusNotFound }
