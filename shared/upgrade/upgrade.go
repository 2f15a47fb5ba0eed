// Package upgrade turns a connection to a node's HTTP fabric port into a raw byte stream
// (HTTP/1.1 Upgrade, as WebSocket does), so that protocols with their own framing (the Raft
// tunnel, bifrost streams) need no port of their own:
//
//	GET <path> HTTP/1.1
//	Connection: Upgrade
//	Upgrade: <protocol>
//
// answered by "101 Switching Protocols", after which both ends own the connection.
package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrRefused is a handshake the server answered with something other than 101: it is up,
// but does not serve the protocol there.
var ErrRefused = errors.New("upgrade refused")

// HandshakeTimeout bounds a handshake whose context has no earlier deadline.
const HandshakeTimeout = 10 * time.Second

// Dial connects to addr (host:port) and upgrades the connection on path to protocol,
// sending the extra request headers. The dial and the handshake are bounded by ctx and
// HandshakeTimeout.
func Dial(ctx context.Context, addr, path, protocol string, header http.Header) (net.Conn, error) {
	d := net.Dialer{Timeout: HandshakeTimeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := handshake(ctx, conn, addr, path, protocol, header)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

func handshake(ctx context.Context, conn net.Conn, addr, path, protocol string, header http.Header) (net.Conn, error) {
	deadline := time.Now().Add(HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A cancelled context ends the handshake at once instead of at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var req strings.Builder
	req.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nConnection: Upgrade\r\nUpgrade: " + protocol + "\r\n")
	for k, vs := range header {
		for _, v := range vs {
			req.WriteString(k + ": " + v + "\r\n")
		}
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return nil, withCtx(ctx, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("read upgrade response: %w", withCtx(ctx, err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: upgrade to %s refused: %s: %s", ErrRefused, protocol, resp.Status, strings.TrimSpace(string(msg)))
	}
	if !stop() {
		return nil, ctx.Err() // the context ended the handshake just as it finished
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return buffered(conn, br), nil
}

// withCtx prefers the context's error to the i/o timeout it caused.
func withCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Requested reports whether r asks to upgrade to protocol.
func Requested(r *http.Request, protocol string) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), protocol)
}

// Accept is the server half: it hijacks the connection of r (which must be Requested) and
// answers 101. On error it has already answered r.
func Accept(w http.ResponseWriter, r *http.Request, protocol string) (net.Conn, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "upgrade to "+protocol+": connection cannot be hijacked (HTTP/2?)", http.StatusHTTPVersionNotSupported)
		return nil, fmt.Errorf("upgrade to %s: not hijackable", protocol)
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		http.Error(w, "upgrade to "+protocol+": hijack: "+err.Error(), http.StatusInternalServerError)
		return nil, err
	}
	// The HTTP server may have set deadlines for its exchange; the protocol sets its own.
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+protocol+"\r\n\r\n"); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return buffered(conn, brw.Reader), nil
}

// buffered returns conn, reading first what br already took from it. Normally br holds
// nothing (the peer waits for the handshake to finish before it sends), but if it did those
// bytes must not be lost.
func buffered(conn net.Conn, br *bufio.Reader) net.Conn {
	if br.Buffered() == 0 {
		return conn
	}
	return &bufferedConn{Conn: conn, r: br}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
