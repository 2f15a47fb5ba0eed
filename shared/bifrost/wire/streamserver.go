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
			req, err := Unmarshal(body)
			if err != nil {
				if st.w.send(frameFail, id, failBody(http.StatusBadRequest, "decode request: "+err.Error())) != nil {
					return
				}
				continue
			}
			// Starts it now if it is ordered. With no further request read ahead, the
			// reader may also make a store durable itself (then it is ready): no hand-off
			// to a writer and back. With more at hand it goes on reading, so that the
			// writer's next group commit takes them together.
			run, ready := h.runner(req, br.Buffered() == 0)
			if ready {
				if st.answer(ctx, id, req, run) != nil {
					return
				}
				continue
			}
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
				_ = st.answer(callCtx, id, req, run)
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

// answer runs call id and sends its answer.
func (st *serverStream) answer(ctx context.Context, id uint64, req any, run func(context.Context) (any, error)) error {
	out, err := run(ctx)
	resp, code, reason := st.h.encode(req, out, err)
	if code != http.StatusOK {
		return st.w.send(frameFail, id, failBody(code, reason))
	}
	return st.w.send(frameReply, id, resp)
}

// runner returns what carries out req: started now if the handler orders it, else
// dispatched when called; and whether it runs without blocking.
func (h *Handler) runner(req any, idle bool) (func(context.Context) (any, error), bool) {
	if h.start != nil {
		if run, ready := h.start(req, idle); run != nil {
			return run, ready
		}
	}
	return func(ctx context.Context) (any, error) { return h.dispatch(ctx, req) }, false
}

// encode turns the outcome of req into an answer: the encoded response with 200, or a
// failure code with its reason, for the HTTP path and a stream's fail frame alike.
func (h *Handler) encode(req, out any, err error) (resp []byte, code int, reason string) {
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
