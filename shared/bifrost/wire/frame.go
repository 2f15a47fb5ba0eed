package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A bifrost stream is a fabric connection upgraded (package upgrade) on LogServerPath or
// SequencerPath to StreamProtocol. It carries many calls at once, each a frame:
//
//	u32 length of the body (big-endian) | u8 kind | u64 call id | body
//
// A call frame's body is one encoded request; the server answers with a reply frame (one
// encoded response) or a fail frame (u16 status code, as an HTTP answer would carry it,
// then the reason in text) with the same id. The client sends a cancel frame when its
// caller gives up, and pings when it has heard nothing for a while; the server answers a
// ping with a pong. Calls are answered in any order. Over HTTP/2 (what this replaced),
// one call cost a request with headers, flow control and several goroutine hand-offs; here
// it is a frame in one write and one read, which took a small call's round trip on
// loopback from 0.23 ms to 0.07 ms (p50).
const StreamProtocol = "gorestate-bifrost/1"

type frameKind uint8

const (
	frameCall frameKind = iota + 1
	frameReply
	frameFail
	frameCancel
	framePing
	framePong
)

const (
	frameHeaderLen = 4 + 1 + 8
	// maxFrameBody bounds a body: an encoded message, or a fail frame's code and reason.
	maxFrameBody = MaxMessageBytes
	// smallFrame is the largest body read into a buffer of its announced size.
	smallFrame = 1 << 20
	// maxFailReason bounds the reason text of a fail frame.
	maxFailReason = 4 << 10
	// frameWriteTimeout bounds one write: a peer that stops reading fails its connection
	// instead of holding up every caller behind the write.
	frameWriteTimeout = 10 * time.Second
)

var errProtocol = errors.New("bifrost stream: protocol violation")

// readFrame reads the next frame. The body is freshly allocated (decoded messages keep
// slices of it).
func readFrame(r *bufio.Reader) (frameKind, uint64, []byte, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[0:4])
	kind := frameKind(h[4])
	id := binary.BigEndian.Uint64(h[5:13])
	if kind < frameCall || kind > framePong {
		return 0, 0, nil, fmt.Errorf("%w: unknown frame kind %d", errProtocol, kind)
	}
	if n > maxFrameBody {
		return 0, 0, nil, fmt.Errorf("%w: frame body of %d bytes, over the limit of %d", errProtocol, n, maxFrameBody)
	}
	if n > 0 && kind != frameCall && kind != frameReply && kind != frameFail {
		return 0, 0, nil, fmt.Errorf("%w: a %s frame carries no body, got %d bytes", errProtocol, kind, n)
	}
	if n <= smallFrame {
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, nil, err
		}
		return kind, id, body, nil
	}
	// A large body grows with what arrives, so that a header alone cannot make the
	// reader allocate the maximum.
	buf := bytes.NewBuffer(make([]byte, 0, smallFrame))
	if _, err := io.CopyN(buf, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, err
	}
	return kind, id, buf.Bytes(), nil
}

func (k frameKind) String() string {
	switch k {
	case frameCall:
		return "call"
	case frameReply:
		return "reply"
	case frameFail:
		return "fail"
	case frameCancel:
		return "cancel"
	case framePing:
		return "ping"
	case framePong:
		return "pong"
	}
	return fmt.Sprintf("frame kind %d", uint8(k))
}

func appendFrame(b []byte, kind frameKind, id uint64, body ...[]byte) []byte {
	n := 0
	for _, p := range body {
		n += len(p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint64(b, id)
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

// failBody is the body of a fail frame.
func failBody(code int, reason string) []byte {
	if len(reason) > maxFailReason {
		reason = reason[:maxFailReason]
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func parseFail(body []byte) (*StatusError, error) {
	if len(body) < 2 {
		return nil, fmt.Errorf("%w: fail frame of %d bytes, want a status code", errProtocol, len(body))
	}
	return &StatusError{Code: int(binary.BigEndian.Uint16(body)), Message: string(body[2:])}, nil
}

// frameWriter writes frames from many goroutines to one connection. Whoever finds no
// write under way writes everything queued, again until the queue is empty, so frames
// queued meanwhile by others go out together in one system call: no writer goroutine to
// hand off to when the connection is quiet, and few writes when it is busy.
type frameWriter struct {
	conn net.Conn

	mu      sync.Mutex
	queue   []byte
	spare   []byte
	writing bool
	err     error
}

// send queues a frame and, unless another goroutine is writing, writes the queue. An
// error means the connection failed (now or before); whether the frame left is unknown.
func (w *frameWriter) send(kind frameKind, id uint64, body ...[]byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.queue = appendFrame(w.queue, kind, id, body...)
	if w.writing {
		w.mu.Unlock()
		return nil
	}
	w.writing = true
	var err error
	for len(w.queue) > 0 && err == nil {
		b := w.queue
		w.queue = w.spare[:0]
		w.mu.Unlock()
		if err = w.conn.SetWriteDeadline(time.Now().Add(frameWriteTimeout)); err == nil {
			_, err = w.conn.Write(b)
		}
		w.mu.Lock()
		if cap(b) <= 1<<20 {
			w.spare = b[:0] // keep one buffer for reuse, but not a huge one
		}
	}
	w.writing = false
	if err != nil && w.err == nil {
		w.err = err
		w.queue = nil
	}
	err = w.err
	w.mu.Unlock()
	if err != nil {
		_ = w.conn.Close() // the reader sees it and fails the calls in flight
	}
	return err
}
