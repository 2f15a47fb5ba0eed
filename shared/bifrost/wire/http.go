package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/upgrade"
)

// Paths on the fabric port. Each serves streams of calls (GET with Upgrade: StreamProtocol;
// see frame.go), and single calls: a POST whose body is one encoded request, answered 200
// with one encoded response; anything else (an undecodable body, a message the path does
// not serve, a server that failed) is a non-200 answer with a plain-text reason.
const (
	LogServerPath = "/bifrost/v1/log-server"
	SequencerPath = "/bifrost/v1/sequencer"
)

// ContentType is the media type of encoded messages.
const ContentType = "application/x-gorestate-bifrost"

// Handler serves one path (LogServerPath or SequencerPath): a POST carries one call (its
// body one encoded request, answered 200 with one encoded response), and an upgrade to
// StreamProtocol turns the connection into a stream of calls, which is what Client uses.
// Undecodable requests are answered 400 and never reach the server behind the path.
type Handler struct {
	path     string
	dispatch func(context.Context, any) (any, error)
	// start, if set, begins the requests it orders (nil for the others) as they arrive
	// on a stream and returns what finishes them, and whether that will not block; idle
	// says the stream's reader has nothing else to do now (see StoreStarter).
	start   func(req any, idle bool) (func(context.Context) (any, error), bool)
	streams streams
}

// Close ends the streams being served and refuses new ones. Calls in flight on them see
// their context cancelled.
func (h *Handler) Close() { h.streams.close() }

// LogServerHandler serves s on LogServerPath. If s is a StoreStarter, the stores of a
// stream are started in the order they arrived.
func LogServerHandler(s LogServer) *Handler {
	h := &Handler{path: LogServerPath, dispatch: func(ctx context.Context, req any) (any, error) {
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
	if ss, ok := s.(StoreStarter); ok {
		h.start = func(req any, idle bool) (func(context.Context) (any, error), bool) {
			st, ok := req.(*Store)
			if !ok {
				return nil, false
			}
			finish, ready := ss.StartStore(st, idle)
			return func(ctx context.Context) (any, error) { return finish(ctx) }, ready
		}
	}
	return h
}

// SequencerHandler serves s on SequencerPath. A nil s means the node runs no sequencers: it
// answers every request with StatusNotSequencer, which tells the writer to look elsewhere
// rather than retry here.
func SequencerHandler(s Sequencer) *Handler {
	if s == nil {
		s = noSequencers{}
	}
	return &Handler{path: SequencerPath, dispatch: func(ctx context.Context, req any) (any, error) {
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

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if upgrade.Requested(r, StreamProtocol) {
		h.serveStream(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, fmt.Sprintf("%s takes POST, or GET with Upgrade: %s; not %s", h.path, StreamProtocol, r.Method), http.StatusMethodNotAllowed)
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
	var resp []byte
	code, reason := http.StatusBadRequest, ""
	req, err := Unmarshal(body)
	if err != nil {
		reason = "decode request: " + err.Error()
	} else {
		out, err := h.dispatch(r.Context(), req)
		resp, code, reason = h.encode(req, out, err)
	}
	if code != http.StatusOK {
		http.Error(w, reason, code)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(resp)))
	_, _ = w.Write(resp)
}

// unavailable reports whether err means the server could not answer now (closing, or
// the caller gave up) rather than that it failed.
func unavailable(err error) bool {
	return errors.Is(err, bifrost.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
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

// Client calls one node's log server and sequencers, on one stream per path. Errors are
// transport failures and fail frames (a *StatusError), wrapped with the operation and the
// node's URL; refusals come back as Statuses.
type Client struct {
	base      string
	logServer *streamSlot
	sequencer *streamSlot
}

var (
	_ LogServer   = (*Client)(nil)
	_ StoreSender = (*Client)(nil)
	_ Sequencer   = (*Client)(nil)
)

// NewClient returns a client of the node whose fabric base URL is baseURL (for example
// "http://10.0.0.5:5122/"). It connects on first use; Close ends its streams.
func NewClient(baseURL string) (*Client, error) {
	base := strings.TrimRight(baseURL, "/")
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bifrost: node URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("bifrost: node URL %q: want http://host:port", baseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &Client{
		base:      base,
		logServer: newStreamSlot(addr, LogServerPath),
		sequencer: newStreamSlot(addr, SequencerPath),
	}, nil
}

// URL is the node's fabric base URL.
func (c *Client) URL() string { return c.base }

// Close ends the client's streams; calls in flight and later calls fail with
// bifrost.ErrClosed.
func (c *Client) Close() {
	c.logServer.close()
	c.sequencer.close()
}

func (c *Client) Store(ctx context.Context, req *Store) (*Stored, error) {
	return call[Stored](ctx, c, c.logServer, req)
}

func (c *Client) Seal(ctx context.Context, req *Seal) (*Sealed, error) {
	return call[Sealed](ctx, c, c.logServer, req)
}

func (c *Client) GetLogletInfo(ctx context.Context, req *GetLogletInfo) (*LogletInfo, error) {
	return call[LogletInfo](ctx, c, c.logServer, req)
}

func (c *Client) GetRecords(ctx context.Context, req *GetRecords) (*Records, error) {
	return call[Records](ctx, c, c.logServer, req)
}

func (c *Client) Trim(ctx context.Context, req *Trim) (*Trimmed, error) {
	return call[Trimmed](ctx, c, c.logServer, req)
}

func (c *Client) WaitForTail(ctx context.Context, req *WaitForTail) (*TailUpdated, error) {
	return call[TailUpdated](ctx, c, c.logServer, req)
}

func (c *Client) GetDigest(ctx context.Context, req *GetDigest) (*Digest, error) {
	return call[Digest](ctx, c, c.logServer, req)
}

func (c *Client) Append(ctx context.Context, req *Append) (*Appended, error) {
	return call[Appended](ctx, c, c.sequencer, req)
}

func (c *Client) GetSequencerState(ctx context.Context, req *GetSequencerState) (*SequencerState, error) {
	return call[SequencerState](ctx, c, c.sequencer, req)
}

// SendStore sends req at once and calls done with its answer (see StoreSender): stores
// sent one after the other reach the server in that order, on the client's one log-server
// stream.
func (c *Client) SendStore(ctx context.Context, req *Store, done func(*Stored, error)) {
	send(ctx, c, c.logServer, req, done)
}

// call sends req and decodes the answer, which must be a *Resp, on the calling goroutine.
func call[Resp any](ctx context.Context, c *Client, slot *streamSlot, req any) (*Resp, error) {
	ch := make(chan callResult, 1)
	sendRaw(ctx, c, slot, req, func(r callResult) { ch <- r })
	return decodeAnswer[Resp](c, req, <-ch)
}

// send sends req now and calls done with the decoded answer, which must be a *Resp, once:
// on the stream's reader goroutine, or on whichever goroutine learns the call failed.
func send[Resp any](ctx context.Context, c *Client, slot *streamSlot, req any, done func(*Resp, error)) {
	sendRaw(ctx, c, slot, req, func(r callResult) { done(decodeAnswer[Resp](c, req, r)) })
}

// sendRaw sends req now; answer gets the outcome as the stream delivers it.
func sendRaw(ctx context.Context, c *Client, slot *streamSlot, req any, answer func(callResult)) {
	body, err := Marshal(req)
	if err != nil {
		answer(callResult{err: err})
		return
	}
	s, err := slot.get(ctx)
	if err != nil {
		answer(callResult{err: err})
		return
	}
	s.send(ctx, body, answer)
}

// decodeAnswer turns the outcome of req into its response, which must be a *Resp, or an
// error naming the request and the server.
func decodeAnswer[Resp any](c *Client, req any, r callResult) (*Resp, error) {
	fail := func(err error) (*Resp, error) {
		return nil, fmt.Errorf("bifrost %s to %s: %w", MessageName(req), c.base, err)
	}
	b, err := r.decode()
	if err != nil {
		return fail(err)
	}
	resp, err := Unmarshal(b)
	if err != nil {
		return fail(fmt.Errorf("decode response: %w", err))
	}
	out, ok := resp.(*Resp)
	if !ok {
		return fail(fmt.Errorf("answered with %s, want %s", MessageName(resp), MessageName(new(Resp))))
	}
	return out, nil
}

// FabricNetwork is the Network of a cluster whose nodes serve LogServerPath and
// SequencerPath on their fabric port. It keeps one Client per URL, so that calls to a node
// share its streams.
type FabricNetwork struct {
	resolve func(node string) (string, error)

	mu      sync.Mutex
	closed  bool
	clients map[string]*Client
}

var _ Network = (*FabricNetwork)(nil)

// NewFabricNetwork returns a network that finds a node's fabric base URL with resolve
// (asked on every lookup, so a node that moved is found at its new address).
func NewFabricNetwork(resolve func(node string) (string, error)) *FabricNetwork {
	return &FabricNetwork{resolve: resolve, clients: map[string]*Client{}}
}

// Client returns the client of a node.
func (n *FabricNetwork) Client(node string) (*Client, error) {
	url, err := n.resolve(node)
	if err != nil {
		return nil, fmt.Errorf("find node %s: %w", node, err)
	}
	url = strings.TrimRight(url, "/")
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, bifrost.ErrClosed
	}
	c, ok := n.clients[url]
	if !ok {
		if c, err = NewClient(url); err != nil {
			return nil, fmt.Errorf("node %s: %w", node, err)
		}
		n.clients[url] = c
	}
	return c, nil
}

// Close ends the streams of every client; later lookups fail with bifrost.ErrClosed.
func (n *FabricNetwork) Close() {
	n.mu.Lock()
	n.closed = true
	clients := n.clients
	n.clients = nil
	n.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
}

// LogServer returns the log server of a node.
func (n *FabricNetwork) LogServer(node string) (LogServer, error) {
	c, err := n.Client(node)
	if err != nil {
		return nil, err // not a nil *Client inside a non-nil interface
	}
	return c, nil
}

// Sequencer returns the sequencers of a node.
func (n *FabricNetwork) Sequencer(node string) (Sequencer, error) {
	c, err := n.Client(node)
	if err != nil {
		return nil, err
	}
	return c, nil
}
