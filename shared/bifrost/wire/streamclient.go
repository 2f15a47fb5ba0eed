package wire

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/upgrade"
)

// streamTiming says when a client stream that has heard nothing pings the server, and
// when it gives up on it: then it fails with every call in flight on it, so that a peer
// that vanished without closing the connection (a partition, a frozen host) costs its
// callers a few seconds at most, even calls without a deadline.
type streamTiming struct {
	ping, dead time.Duration
}

var defaultTiming = streamTiming{ping: time.Second, dead: 5 * time.Second}

// streamSlot is a client's stream to one path of one node: connected on first use, and
// again on the next call after it failed.
type streamSlot struct {
	addr, path string
	timing     streamTiming
	dialing    chan struct{} // holds a token while one caller dials for all

	mu     sync.Mutex
	cur    *clientStream
	closed bool
}

func newStreamSlot(addr, path string) *streamSlot {
	return &streamSlot{addr: addr, path: path, timing: defaultTiming, dialing: make(chan struct{}, 1)}
}

func (sl *streamSlot) usable() (*clientStream, error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		return nil, bifrost.ErrClosed
	}
	if sl.cur != nil && !sl.cur.failed() {
		return sl.cur, nil
	}
	return nil, nil
}

// get returns the slot's stream, connecting it if there is none or it failed.
func (sl *streamSlot) get(ctx context.Context) (*clientStream, error) {
	if s, err := sl.usable(); s != nil || err != nil {
		return s, err
	}
	select {
	case sl.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sl.dialing }()
	if s, err := sl.usable(); s != nil || err != nil {
		return s, err // another caller connected while this one waited
	}
	conn, err := upgrade.Dial(ctx, sl.addr, sl.path, StreamProtocol, nil)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	s := newClientStream(conn, sl.timing)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		s.fail(bifrost.ErrClosed)
		return nil, bifrost.ErrClosed
	}
	sl.cur = s
	return s, nil
}

func (sl *streamSlot) close() {
	sl.mu.Lock()
	sl.closed = true
	s := sl.cur
	sl.mu.Unlock()
	if s != nil {
		s.fail(bifrost.ErrClosed)
	}
}

// clientStream is one connected stream: calls wait for the frame with their id.
type clientStream struct {
	conn   net.Conn
	timing streamTiming
	w      frameWriter
	done   chan struct{} // closed when the stream failed
	heard  atomic.Int64  // unix nanoseconds of the last frame read

	mu sync.Mutex
	// calls holds the calls in flight. Whoever removes a call's entry (the reader with its
	// answer, the call's context ending, or fail) answers it, once.
	calls map[uint64]*pendingCall
	next  uint64
	err   error
}

type pendingCall struct {
	answer func(callResult)
	stop   func() bool // ends the watch on the call's context; nil until set (under mu)
}

// finish answers c, which its caller removed from calls.
func (c *pendingCall) finish(r callResult, stop func() bool) {
	if stop != nil {
		stop()
	}
	c.answer(r)
}

type callResult struct {
	kind frameKind
	body []byte
	err  error
}

func newClientStream(conn net.Conn, timing streamTiming) *clientStream {
	s := &clientStream{
		conn:   conn,
		timing: timing,
		w:      frameWriter{conn: conn},
		done:   make(chan struct{}),
		calls:  map[uint64]*pendingCall{},
	}
	s.heard.Store(time.Now().UnixNano())
	go s.read()
	go s.watch()
	return s
}

func (s *clientStream) failed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// fail ends the stream: every call waiting on it gets err.
func (s *clientStream) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	calls := s.calls
	s.calls = nil
	close(s.done)
	s.mu.Unlock()
	_ = s.conn.Close()
	// Answered on a goroutine of their own: fail runs on whichever goroutine noticed the
	// failure, which may hold locks that the answers of other callers take.
	if len(calls) > 0 {
		go func() {
			for _, c := range calls {
				c.finish(callResult{err: err}, c.stop)
			}
		}()
	}
}

func (s *clientStream) read() {
	br := bufio.NewReaderSize(s.conn, 64<<10)
	for {
		kind, id, body, err := readFrame(br)
		if err != nil {
			s.fail(fmt.Errorf("connection lost: %w", err))
			return
		}
		s.heard.Store(time.Now().UnixNano())
		switch kind {
		case frameReply, frameFail:
			s.mu.Lock()
			c := s.calls[id]
			delete(s.calls, id)
			var stop func() bool
			if c != nil {
				stop = c.stop
			}
			s.mu.Unlock()
			if c != nil { // nil: the caller gave up on it
				c.finish(callResult{kind: kind, body: body}, stop)
			}
		case framePong:
		default:
			s.fail(fmt.Errorf("%w: the server sent a %s frame", errProtocol, kind))
			return
		}
	}
}

// watch pings a quiet stream and fails a silent one.
func (s *clientStream) watch() {
	t := time.NewTicker(s.timing.ping)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		quiet := time.Since(time.Unix(0, s.heard.Load()))
		switch {
		case quiet >= s.timing.dead:
			s.fail(fmt.Errorf("connection lost: no answer from the server for %v", quiet.Round(time.Millisecond)))
			return
		case quiet >= s.timing.ping:
			_ = s.w.send(framePing, 0) // a failed write fails the stream through read
		}
	}
}

// call sends one encoded request and waits for its answer: the encoded response, or a
// *StatusError from a fail frame.
func (s *clientStream) call(ctx context.Context, req []byte) ([]byte, error) {
	ch := make(chan callResult, 1)
	s.send(ctx, req, func(r callResult) { ch <- r })
	return (<-ch).decode()
}

// send sends one encoded request now; answer gets its outcome exactly once: on the
// stream's reader goroutine (so it must not block), on a goroutine of its own when ctx
// ends or the stream fails, or before send returns when the call never left.
func (s *clientStream) send(ctx context.Context, req []byte, answer func(callResult)) {
	if err := ctx.Err(); err != nil {
		answer(callResult{err: err})
		return
	}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		answer(callResult{err: err})
		return
	}
	s.next++
	id := s.next
	c := &pendingCall{answer: answer}
	s.calls[id] = c
	s.mu.Unlock()
	if err := s.w.send(frameCall, id, req); err != nil {
		s.fail(fmt.Errorf("connection lost: %w", err)) // answers the call
		return
	}
	// Watched only once the call is out, so that its cancel frame cannot overtake it.
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		_, waiting := s.calls[id]
		delete(s.calls, id)
		s.mu.Unlock()
		if waiting {
			// The server may still carry the call out; as with any lost answer, the
			// caller cannot tell. Cancelling frees what it holds there (a WaitForTail).
			_ = s.w.send(frameCancel, id)
			c.answer(callResult{err: ctx.Err()})
		}
	})
	s.mu.Lock()
	_, waiting := s.calls[id]
	if waiting {
		c.stop = stop
	}
	s.mu.Unlock()
	if !waiting {
		stop() // answered already
	}
}

// decode turns a call's outcome into the encoded response or its error.
func (r callResult) decode() ([]byte, error) {
	switch {
	case r.err != nil:
		return nil, r.err
	case r.kind == frameFail:
		se, err := parseFail(r.body)
		if err != nil {
			return nil, err
		}
		return nil, se
	}
	return r.body, nil
}
