package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/h2c"
)

// Paths on the fabric port. Each takes a POST whose body is one encoded request and answers
// 200 with one encoded response; anything else (an undecodable body, a message the path
// does not serve, a server that failed) is a non-200 answer with a plain-text reason.
const (
	LogServerPath = "/bifrost/v1/log-server"
	SequencerPath = "/bifrost/v1/sequencer"
)

// ContentType is the media type of encoded messages.
const ContentType = "application/x-gorestate-bifrost"

// FabricProtocols are the protocols a fabric listener serves: HTTP/1.1 (metadata and Raft,
// which upgrades connections) and HTTP/2 cleartext with prior knowledge, so that the many
// concurrent requests of sequencers and readers share a few connections.
func FabricProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// NewH2CClient returns an HTTP client that speaks HTTP/2 cleartext with prior knowledge, the
// client side of FabricProtocols. It sets no timeout: every call is bounded by its context
// (WaitForTail legitimately waits long).
func NewH2CClient() *http.Client {
	t := h2c.NewTransport()
	// Without a bound, a burst of calls to a node with no open connection yet dials once per
	// call (the transport only shares an HTTP/2 connection once it is up); the bound makes
	// the burst wait for the first few connections and share them.
	t.MaxConnsPerHost = 4
	return &http.Client{Transport: t}
}

// LogServerHandler serves s on LogServerPath. Undecodable requests are answered 400 and
// never reach s.
func LogServerHandler(s LogServer) http.Handler {
	return handler{path: LogServerPath, dispatch: func(ctx context.Context, req any) (any, error) {
		switch req := req.(type) {
		case *Store:
			return s.Store(ctx, req)
		case *Seal:
			return s.Seal(ctx, req)
		case *GetLogletInfo:
			return s.GetLogletInfo(ctx, req)
		case *GetRecords:
			return s.GetRecords(ctx, req)
		case *Trim:
			return s.Trim(ctx, req)
		case *WaitForTail:
			return s.WaitForTail(ctx, req)
		case *GetDigest:
			return s.GetDigest(ctx, req)
		}
		return nil, errNotServed
	}}
}

// SequencerHandler serves s on SequencerPath. A nil s means the node runs no sequencers: it
// answers every request with StatusNotSequencer, which tells the writer to look elsewhere
// rather than retry here.
func SequencerHandler(s Sequencer) http.Handler {
	if s == nil {
		s = noSequencers{}
	}
	return handler{path: SequencerPath, dispatch: func(ctx context.Context, req any) (any, error) {
		switch req := req.(type) {
		case *Append:
			return s.Append(ctx, req)
		case *GetSequencerState:
			return s.GetSequencerState(ctx, req)
		}
		return nil, errNotServed
	}}
}

type noSequencers struct{}

func (noSequencers) Append(context.Context, *Append) (*Appended, error) {
	return &Appended{Status: StatusNotSequencer}, nil
}

func (noSequencers) GetSequencerState(context.Context, *GetSequencerState) (*SequencerState, error) {
	return &SequencerState{Status: StatusNotSequencer}, nil
}

var errNotServed = errors.New("not served")

type handler struct {
	path     string
	dispatch func(context.Context, any) (any, error)
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, fmt.Sprintf("%s takes POST, not %s", h.path, r.Method), http.StatusMethodNotAllowed)
		return
	}
	body, err := readBody(r.Body, r.ContentLength)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "read request: "+err.Error(), code)
		return
	}
	req, err := Unmarshal(body)
	if err != nil {
		http.Error(w, "decode request: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := h.dispatch(r.Context(), req)
	switch {
	case errors.Is(err, errNotServed):
		http.Error(w, fmt.Sprintf("%s does not serve %s requests", h.path, MessageName(req)), http.StatusBadRequest)
		return
	case err != nil:
		// Refusals are statuses inside a 200; an error is the server being unable to answer
		// (closing, or the caller gave up), which the caller treats like a lost connection.
		code := http.StatusInternalServerError
		if errors.Is(err, bifrost.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, fmt.Sprintf("%s: %v", MessageName(req), err), code)
		return
	}
	b, err := Marshal(resp)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	_, _ = w.Write(b)
}

var errTooLarge = fmt.Errorf("body exceeds %d bytes", MaxMessageBytes)

// readBody reads a whole message body, refusing more than MaxMessageBytes.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength > MaxMessageBytes {
		return nil, errTooLarge
	}
	var buf bytes.Buffer
	if contentLength > 0 {
		buf.Grow(int(contentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r, MaxMessageBytes+1))
	if err != nil {
		return nil, err
	}
	if n > MaxMessageBytes {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// StatusError is a non-200 answer: the server could not decode or did not serve the
// request (400), or could not answer it (5xx).
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message)
}

// Client calls one node's log server and sequencers over HTTP. Errors are transport
// failures and non-200 answers (a *StatusError), wrapped with the operation and the node's
// URL; refusals come back as Statuses.
type Client struct {
	base string
	hc   *http.Client
}

var (
	_ LogServer = (*Client)(nil)
	_ Sequencer = (*Client)(nil)
)

// NewClient returns a client of the node whose fabric base URL is baseURL (for example
// "http://10.0.0.5:5122/"). hc should speak h2c (NewH2CClient); nil uses a shared one.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = defaultClient()
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

var defaultClient = sync.OnceValue(NewH2CClient)

// URL is the node's fabric base URL.
func (c *Client) URL() string { return c.base }

func (c *Client) Store(ctx context.Context, req *Store) (*Stored, error) {
	return call[Stored](ctx, c, LogServerPath, req)
}

func (c *Client) Seal(ctx context.Context, req *Seal) (*Sealed, error) {
	return call[Sealed](ctx, c, LogServerPath, req)
}

func (c *Client) GetLogletInfo(ctx context.Context, req *GetLogletInfo) (*LogletInfo, error) {
	return call[LogletInfo](ctx, c, LogServerPath, req)
}

func (c *Client) GetRecords(ctx context.Context, req *GetRecords) (*Records, error) {
	return call[Records](ctx, c, LogServerPath, req)
}

func (c *Client) Trim(ctx context.Context, req *Trim) (*Trimmed, error) {
	return call[Trimmed](ctx, c, LogServerPath, req)
}

func (c *Client) WaitForTail(ctx context.Context, req *WaitForTail) (*TailUpdated, error) {
	return call[TailUpdated](ctx, c, LogServerPath, req)
}

func (c *Client) GetDigest(ctx context.Context, req *GetDigest) (*Digest, error) {
	return call[Digest](ctx, c, LogServerPath, req)
}

func (c *Client) Append(ctx context.Context, req *Append) (*Appended, error) {
	return call[Appended](ctx, c, SequencerPath, req)
}

func (c *Client) GetSequencerState(ctx context.Context, req *GetSequencerState) (*SequencerState, error) {
	return call[SequencerState](ctx, c, SequencerPath, req)
}

// call sends req and decodes the answer, which must be a *Resp.
func call[Resp any](ctx context.Context, c *Client, path string, req any) (*Resp, error) {
	op := MessageName(req)
	resp, err := c.roundTrip(ctx, path, req)
	if err != nil {
		return nil, fmt.Errorf("bifrost %s to %s: %w", op, c.base, err)
	}
	out, ok := resp.(*Resp)
	if !ok {
		return nil, fmt.Errorf("bifrost %s to %s: answered with %s, want %s", op, c.base, MessageName(resp), MessageName(new(Resp)))
	}
	return out, nil
}

func (c *Client) roundTrip(ctx context.Context, path string, req any) (any, error) {
	body, err := Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", ContentType)
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(hresp.Body, 4<<10))
		return nil, &StatusError{Code: hresp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}
	b, err := readBody(hresp.Body, hresp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	resp, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return resp, nil
}

// HTTPNetwork is the Network of a cluster whose nodes serve LogServerPath and SequencerPath
// on their fabric port. It keeps one Client per URL, so that calls to a node share its
// connections.
type HTTPNetwork struct {
	resolve func(node string) (string, error)
	hc      *http.Client

	mu      sync.Mutex
	clients map[string]*Client
}

var _ Network = (*HTTPNetwork)(nil)

// NewHTTPNetwork returns a network that finds a node's fabric base URL with resolve (asked
// on every lookup, so a node that moved is found at its new address). hc nil uses
// NewH2CClient.
func NewHTTPNetwork(resolve func(node string) (string, error), hc *http.Client) *HTTPNetwork {
	if hc == nil {
		hc = NewH2CClient()
	}
	return &HTTPNetwork{resolve: resolve, hc: hc, clients: map[string]*Client{}}
}

// Client returns the client of a node.
func (n *HTTPNetwork) Client(node string) (*Client, error) {
	url, err := n.resolve(node)
	if err != nil {
		return nil, fmt.Errorf("find node %s: %w", node, err)
	}
	url = strings.TrimRight(url, "/")
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.clients[url]
	if !ok {
		c = NewClient(url, n.hc)
		n.clients[url] = c
	}
	return c, nil
}

// LogServer returns the log server of a node.
func (n *HTTPNetwork) LogServer(node string) (LogServer, error) {
	c, err := n.Client(node)
	if err != nil {
		return nil, err // not a nil *Client inside a non-nil interface
	}
	return c, nil
}

// Sequencer returns the sequencers of a node.
func (n *HTTPNetwork) Sequencer(node string) (Sequencer, error) {
	c, err := n.Client(node)
	if err != nil {
		return nil, err
	}
	return c, nil
}
