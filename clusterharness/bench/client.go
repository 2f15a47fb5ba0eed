package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client sends one request and reports the HTTP status. Each worker owns one Client, so
// implementations need not be safe for concurrent use.
type Client interface {
	Do(ctx context.Context, r Request) (status int, err error)
	Close() error
}

// ClientFactory makes one Client per worker.
type ClientFactory func() Client

// NewClientFactory returns a factory for kind "raw" (default; pre-serialised requests on a
// plain TCP connection) or "nethttp" (net/http.Client with a tuned Transport, to cross-check
// the raw client) talking to the ingress base URL.
func NewClientFactory(kind, ingress string, concurrency int, timeout time.Duration) (ClientFactory, error) {
	u, err := url.Parse(ingress)
	if err != nil {
		return nil, fmt.Errorf("parse ingress URL %q: %w", ingress, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("ingress URL %q: only http:// is supported", ingress)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	base := strings.TrimSuffix(u.Path, "/")
	switch kind {
	case "raw", "":
		cache := &wireCache{host: u.Host, base: base, m: map[Request][]byte{}}
		return func() Client {
			return &rawClient{addr: host, timeout: timeout, wire: cache}
		}, nil
	case "nethttp":
		hc := &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				// Enough idle slots that no worker's connection is ever closed and
				// redialled between requests.
				MaxIdleConns:        concurrency * 2,
				MaxIdleConnsPerHost: concurrency * 2,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
			},
		}
		prefix := u.Scheme + "://" + u.Host + base
		return func() Client { return &netHTTPClient{hc: hc, prefix: prefix} }, nil
	default:
		return nil, fmt.Errorf("unknown client kind %q (raw or nethttp)", kind)
	}
}

// wireCache holds the serialised form of every distinct request, built once and shared by
// all workers, so the hot loop does no formatting.
type wireCache struct {
	host, base string
	mu         sync.RWMutex
	m          map[Request][]byte
}

func (w *wireCache) bytes(r Request) []byte {
	w.mu.RLock()
	b, ok := w.m[r]
	w.mu.RUnlock()
	if ok {
		return b
	}
	b = []byte("POST " + w.base + r.Path + " HTTP/1.1\r\n" +
		"Host: " + w.host + "\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(r.Body)) + "\r\n" +
		"\r\n" + r.Body)
	w.mu.Lock()
	w.m[r] = b
	w.mu.Unlock()
	return b
}

// rawClient keeps one keep-alive connection and reconnects after any error or a
// "Connection: close" answer.
type rawClient struct {
	addr    string
	timeout time.Duration
	wire    *wireCache
	conn    net.Conn
	br      *bufio.Reader
}

func (c *rawClient) Do(ctx context.Context, r Request) (int, error) {
	if c.conn == nil {
		d := net.Dialer{Timeout: c.timeout}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 4096)
		} else {
			c.br.Reset(conn)
		}
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		c.drop()
		return 0, fmt.Errorf("set deadline: %w", err)
	}
	if _, err := c.conn.Write(c.wire.bytes(r)); err != nil {
		c.drop()
		return 0, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.drop()
		return 0, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.drop()
		return 0, fmt.Errorf("read response body: %w", err)
	}
	if resp.Close {
		c.drop()
	}
	return resp.StatusCode, nil
}

func (c *rawClient) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *rawClient) Close() error {
	c.drop()
	return nil
}

type netHTTPClient struct {
	hc     *http.Client
	prefix string
}

func (c *netHTTPClient) Do(ctx context.Context, r Request) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.prefix+r.Path, strings.NewReader(r.Body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post %s: %w", r.Path, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read response body: %w", err)
	}
	return resp.StatusCode, nil
}

func (c *netHTTPClient) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
