package wire

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"gorestate.dev/shared/upgrade"
)

// maxCallsPerStream bounds the calls one stream has in flight on the server; past it the
// server stops reading the stream until a call finishes (TCP then pushes back on the
// client). WaitForTail calls wait long, so the bound is generous.
const maxCallsPerStream = 4096

// streams are the upgraded connections a Handler serves, so that Close can end them: the
// HTTP server forgets a connection once it is hijacked.
type streams struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (s *streams) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *streams) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *streams) close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

func (s *streams) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serveStream upgrades r and serves calls on the connection until it fails or the
// handler closes.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	if h.streams.isClosed() {
		http.Error(w, h.path+": closed", http.StatusServiceUnavailable)
		return
	}
	conn, err := upgrade.Accept(w, r, StreamProtocol)
	if err != nil {
		return // Accept answered
	}
	if !h.streams.add(conn) {
		_ = conn.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &serverStream{h: h, w: frameWriter{conn: conn}, calls: map[uint64]context.CancelFunc{}}
	slots := make(chan struct{}, maxCallsPerStream)
	var wg sync.WaitGroup
	defer func() {
		// Calls still running see the stream end, and their answers fail at once.
		cancel()
		_ = conn.Close()
		wg.Wait()
		h.streams.remove(conn)
	}()
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		kind, id, body, err := readFrame(br)
		if err != nil {
			return // the client went away, Close closed the connection, or bytes that are no stream
		}
		switch kind {
		case frameCall:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			callCtx, callCancel := context.WithCancel(ctx)
			st.mu.Lock()
			st.calls[id] = callCancel
			st.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.answer(callCtx, id, body)
				st.mu.Lock()
				delete(st.calls, id)
				st.mu.Unlock()
				callCancel()
				<-slots
			}()
		case frameCancel:
			st.mu.Lock()
			if c := st.calls[id]; c != nil {
				c()
			}
			st.mu.Unlock()
		case framePing:
			if st.w.send(framePong, id) != nil {
				return
			}
		default:
			return // a client sends no replies: this is not a stream client
		}
	}
}

type serverStream struct {
	h *Handler
	w frameWriter

	mu    sync.Mutex
	calls map[uint64]context.CancelFunc
}

func (st *serverStream) answer(ctx context.Context, id uint64, body []byte) {
	resp, code, reason := st.h.answer(ctx, body)
	if code != http.StatusOK {
		_ = st.w.send(frameFail, id, failBody(code, reason))
		return
	}
	_ = st.w.send(frameReply, id, resp)
}

// answer decodes one request, dispatches it and encodes the response. A code other than
// 200 is a failure with its reason: the answer of the HTTP path and of a stream's fail
// frame alike.
func (h *Handler) answer(ctx context.Context, body []byte) (resp []byte, code int, reason string) {
	req, err := Unmarshal(body)
	if err != nil {
		return nil, http.StatusBadRequest, "decode request: " + err.Error()
	}
	out, err := h.dispatch(ctx, req)
	switch {
	case errors.Is(err, errNotServed):
		return nil, http.StatusBadRequest, h.path + " does not serve " + MessageName(req) + " requests"
	case err != nil:
		// Refusals are statuses inside a reply; an error is the server being unable to
		// answer (closing, or the caller gave up), which the caller treats like a lost
		// connection.
		code := http.StatusInternalServerError
		if unavailable(err) {
			code = http.StatusServiceUnavailable
		}
		return nil, code, MessageName(req) + ": " + err.Error()
	}
	b, err := Marshal(out)
	if err != nil {
		return nil, http.StatusInternalServerError, "encode response: " + err.Error()
	}
	return b, http.StatusOK, ""
}
