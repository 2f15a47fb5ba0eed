package h2c

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
)

// Go's HTTP/2 client gives every request body it streams a write buffer as large as the
// frames the server accepts, up to 512 KiB, for the whole life of the request. Deployments
// built on Go's HTTP/2 server accept 1 MiB frames, and an invocation's request body is
// streamed for as long as its attempt runs: with hundreds of attempts in flight those
// buffers were most of the node's heap (150 MiB in a profile), and the garbage collector
// ran at a quarter of its CPU. So connections to h2c deployments report the server's
// SETTINGS_MAX_FRAME_SIZE as at most 16 KiB, the size every HTTP/2 peer must accept, and
// the client sizes its buffers by that.

const (
	clientPreface    = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	frameHeaderLen   = 9
	frameSettings    = 0x4
	flagAck          = 0x1
	settingFrameSize = 0x5
	minFrameSize     = 16 << 10
	// maxSettingsLen bounds a SETTINGS frame held whole; larger ones pass unchanged.
	maxSettingsLen = 6 * 64
)

// clampDialer dials like d and wraps each connection in a clampConn.
func clampDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &clampConn{Conn: c}, nil
	}
}

// clampConn lowers the max frame size in the SETTINGS frames a server sends, once the
// client's first write shows that the connection speaks h2c (a TLS connection, whose bytes
// are encrypted, passes unchanged).
type clampConn struct {
	net.Conn
	mode atomic.Int32 // 0 undecided, 1 h2c, 2 pass through

	r       *bufio.Reader
	pending []byte // bytes of the current frame ready to return
	left    int    // payload bytes of the current frame to pass through
}

func (c *clampConn) Write(p []byte) (int, error) {
	if c.mode.Load() == 0 {
		if bytes.HasPrefix(p, []byte(clientPreface)) {
			c.mode.Store(1)
		} else {
			c.mode.Store(2)
		}
	}
	return c.Conn.Write(p)
}

func (c *clampConn) Read(p []byte) (int, error) {
	if c.mode.Load() != 1 {
		// A client reads only after its preface: a read before any write is not h2c.
		c.mode.CompareAndSwap(0, 2)
		if c.mode.Load() != 1 {
			return c.Conn.Read(p)
		}
	}
	if c.r == nil {
		c.r = bufio.NewReaderSize(c.Conn, 16<<10)
	}
	if len(c.pending) == 0 && c.left == 0 {
		if err := c.nextFrame(); err != nil {
			if len(c.pending) == 0 {
				return 0, err
			}
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

// nextFrame reads the next frame header (and a SETTINGS frame's payload, clamped) into
// pending. On an error pending holds what was read.
func (c *clampConn) nextFrame() error {
	hdr := make([]byte, frameHeaderLen)
	n, err := io.ReadFull(c.r, hdr)
	if err != nil {
		c.pending = hdr[:n]
		return err
	}
	length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if hdr[3] != frameSettings || hdr[4]&flagAck != 0 || length%6 != 0 || length > maxSettingsLen {
		c.pending, c.left = hdr, length
		return nil
	}
	frame := make([]byte, frameHeaderLen+length)
	copy(frame, hdr)
	n, err = io.ReadFull(c.r, frame[frameHeaderLen:])
	if err != nil {
		c.pending = frame[:frameHeaderLen+n]
		return err
	}
	clampSettings(frame[frameHeaderLen:])
	c.pending = frame
	return nil
}

// clampSettings lowers SETTINGS_MAX_FRAME_SIZE entries of a SETTINGS payload.
func clampSettings(payload []byte) {
	for i := 0; i+6 <= len(payload); i += 6 {
		if binary.BigEndian.Uint16(payload[i:]) == settingFrameSize && binary.BigEndian.Uint32(payload[i+2:]) > minFrameSize {
			binary.BigEndian.PutUint32(payload[i+2:], minFrameSize)
		}
	}
}
