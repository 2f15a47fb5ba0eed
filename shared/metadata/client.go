package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable is returned when no metadata server answered.
var ErrUnavailable = errors.New("metadata: no metadata server reachable")

// Client is a Store backed by metadata servers' HTTP API (see NewHTTPHandler).
//
// Failover: each call starts at the server that answered last and moves on to the next on a
// transport error or a 503. A PUT moves on only when its connection could not be opened,
// because after a failure mid-request the write may have landed, and retrying it elsewhere
// would turn success into a spurious ErrVersionMismatch; such a PUT fails with an error that
// says its outcome is unknown, and the caller re-reads.
//
// Never goes backwards: servers may lag one another, so the client remembers per key the
// newest Versioned it has returned or written, and never returns an older one. A Get answered
// by a lagging server (older version, or 404) returns the remembered value instead, and
// WaitNewer returns at once when the remembered value is already newer than asked.
type Client struct {
	// RequestTimeout bounds one attempt at one server (a long poll's attempt gets
	// LongPollWait on top): a server that accepts the connection but never answers (frozen,
	// cut off) then costs that long before the next one is asked, instead of the whole call.
	RequestTimeout time.Duration

	addrs     []string
	hc        *http.Client
	preferred atomic.Int64 // index into addrs of the server that answered last

	mu     sync.Mutex
	newest map[string]Versioned
}

var _ Store = (*Client)(nil)

// DefaultRequestTimeout is a new Client's RequestTimeout.
const DefaultRequestTimeout = 10 * time.Second

// NewClient returns a client of the metadata servers at addresses, base URLs such as
// "http://127.0.0.1:5122" (a missing scheme means http; a trailing slash is ignored). hc nil
// means a client without timeout, as long polls last up to LongPollWait.
func NewClient(addresses []string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	addrs := make([]string, 0, len(addresses))
	for _, a := range addresses {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		addrs = append(addrs, a)
	}
	return &Client{RequestTimeout: DefaultRequestTimeout, addrs: addrs, hc: hc, newest: map[string]Versioned{}}
}

// Get returns the newest value of key known to the servers or to this client.
func (c *Client) Get(ctx context.Context, key string) (Versioned, error) {
	return c.get(ctx, key, nil)
}

var _ ConsistentReader = (*Client)(nil)

// GetConsistent is a linearizable read: the server answers from the metadata leader (a
// replicated metadata server forwards it there; a local one is the only copy), so it
// reflects every write that completed before it was called, whatever copy the server holds.
func (c *Client) GetConsistent(ctx context.Context, key string) (Versioned, error) {
	return c.get(ctx, key, url.Values{"consistent": {"1"}})
}

func (c *Client) get(ctx context.Context, key string, q url.Values) (Versioned, error) {
	res, err := c.do(ctx, http.MethodGet, key, q, nil)
	if err != nil {
		return Versioned{}, err
	}
	switch res.status {
	case http.StatusOK:
		v, err := res.versioned()
		if err != nil {
			return Versioned{}, err
		}
		return c.remember(key, v), nil
	case http.StatusNotFound:
		if v, ok := c.remembered(key); ok {
			return v, nil
		}
		return Versioned{}, res.err(ErrNotFound)
	default:
		return Versioned{}, res.err(nil)
	}
}

// Put compare-and-sets key on the servers.
func (c *Client) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	q := url.Values{"expected": {strconv.FormatUint(expected, 10)}}
	res, err := c.do(ctx, http.MethodPut, key, q, value)
	if err != nil {
		return 0, err
	}
	switch res.status {
	case http.StatusOK:
		version, err := strconv.ParseUint(res.header.Get(VersionHeader), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("metadata: put %q via %s: bad %s header %q", key, res.addr, VersionHeader, res.header.Get(VersionHeader))
		}
		c.remember(key, Versioned{Version: version, Value: bytes.Clone(value)})
		return version, nil
	case http.StatusConflict:
		return 0, res.err(ErrVersionMismatch)
	case http.StatusInternalServerError:
		// The server's store failed the write in a way that says nothing of its outcome
		// (a replicated store's leader lost its leadership while committing it), which
		// the server marks; servers of earlier versions only say so in the message. Any
		// other failure (a full disk) is an error: callers try unknown outcomes again.
		if res.header.Get(OutcomeHeader) == "unknown" || bytes.Contains(res.body, []byte("outcome unknown")) {
			return 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, res.err(nil))
		}
		return 0, res.err(nil)
	default:
		return 0, res.err(nil)
	}
}

// WaitNewer long-polls the servers until key is newer than version or ctx is done.
func (c *Client) WaitNewer(ctx context.Context, key string, version uint64) (Versioned, error) {
	if v, ok := c.remembered(key); ok && v.Version > version {
		return v, nil
	}
	q := url.Values{"newer-than": {strconv.FormatUint(version, 10)}}
	for {
		res, err := c.do(ctx, http.MethodGet, key, q, nil)
		if err != nil {
			return Versioned{}, err
		}
		switch res.status {
		case http.StatusOK:
			v, err := res.versioned()
			if err != nil {
				return Versioned{}, err
			}
			if v = c.remember(key, v); v.Version > version {
				return v, nil
			}
		case http.StatusNotModified:
			// The server's wait ended; poll again until ctx says stop.
		default:
			return Versioned{}, res.err(nil)
		}
	}
}

// remember records v unless a newer version is known, and returns the newer of the two.
func (c *Client) remember(key string, v Versioned) Versioned {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.newest[key]; ok && cur.Version >= v.Version {
		return Versioned{Version: cur.Version, Value: bytes.Clone(cur.Value)}
	}
	c.newest[key] = Versioned{Version: v.Version, Value: bytes.Clone(v.Value)}
	return v
}

func (c *Client) remembered(key string) (Versioned, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.newest[key]
	return Versioned{Version: cur.Version, Value: bytes.Clone(cur.Value)}, ok
}

// response is one server's complete answer.
type response struct {
	addr   string
	status int
	header http.Header
	body   []byte
}

func (r response) versioned() (Versioned, error) {
	version, err := strconv.ParseUint(r.header.Get(VersionHeader), 10, 64)
	if err != nil || version == 0 {
		return Versioned{}, fmt.Errorf("metadata: %s sent bad %s header %q", r.addr, VersionHeader, r.header.Get(VersionHeader))
	}
	return Versioned{Version: version, Value: r.body}, nil
}

// err turns an error response into an error carrying the server's message and, for the
// statuses that have one, the matching sentinel.
func (r response) err(sentinel error) error {
	msg := strings.TrimSpace(string(r.body))
	if sentinel == nil {
		return fmt.Errorf("metadata: %s answered %d: %s", r.addr, r.status, msg)
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}

// remoteError keeps the server's message (which already names the sentinel condition) while
// matching the sentinel with errors.Is.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// do sends one request, failing over between servers as the Client doc describes.
func (c *Client) do(ctx context.Context, method, key string, q url.Values, body []byte) (response, error) {
	if len(c.addrs) == 0 {
		return response{}, fmt.Errorf("%w: no addresses configured", ErrUnavailable)
	}
	path := objectPath + url.PathEscape(key)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	timeout := c.RequestTimeout
	if q.Has("newer-than") {
		timeout += LongPollWait
	}
	start := int(c.preferred.Load())
	var errs []error
	for i := range c.addrs {
		idx := (start + i) % len(c.addrs)
		addr := c.addrs[idx]
		res, err := c.attempt(ctx, timeout, method, addr, path, body)
		if err != nil {
			if ctx.Err() != nil {
				return response{}, ctx.Err()
			}
			if method == http.MethodPut && !isDialError(err) {
				return response{}, fmt.Errorf("metadata: put %q via %s: %w: %w", key, addr, ErrOutcomeUnknown, err)
			}
			errs = append(errs, err)
			continue
		}
		if res.status == http.StatusServiceUnavailable {
			errs = append(errs, res.err(nil))
			continue
		}
		c.preferred.Store(int64(idx))
		return res, nil
	}
	return response{}, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

// attempt sends one request to one server, bounded by timeout (0: none).
func (c *Client) attempt(ctx context.Context, timeout time.Duration, method, addr, path string, body []byte) (response, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, addr+path, bytes.NewReader(body))
	if err != nil {
		return response{}, fmt.Errorf("metadata: %s %s: %w", method, addr, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return c.roundTrip(req, addr)
}

func (c *Client) roundTrip(req *http.Request, addr string) (response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("metadata: read response from %s: %w", addr, err)
	}
	return response{addr: addr, status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// isDialError reports whether err happened before the request could be sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
