// Package h2c builds the HTTP transports used to reach SDK deployments: cleartext HTTP/2 with
// prior knowledge (what Restate uses for http:// deployments, and the only thing sdk-go's
// server speaks) and plain HTTP/1.1 for deployments registered with use_http_11.
package h2c

import (
	"net"
	"net/http"
	"time"
)

// Timeouts and pool sizes shared by both transports. Response-header and overall timeouts are
// deliberately absent: an invocation stream legitimately stays open for minutes, so callers
// bound each exchange with their own context (discovery) or inactivity timers (invoker).
const (
	dialTimeout         = 10 * time.Second
	tcpKeepAlive        = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 90 * time.Second
	// HTTP/2 multiplexes many streams on one connection, so a handful of idle connections per
	// deployment is plenty; HTTP/1.1 needs one connection per concurrent invocation.
	maxIdleConnsPerHostH2 = 16
	maxIdleConnsPerHostH1 = 256
	// Pings detect a half-dead connection under a long-lived bidi stream that would otherwise
	// only be noticed when the abort timeout fires.
	sendPingTimeout = 30 * time.Second
	pingTimeout     = 15 * time.Second
)

func dialer() *net.Dialer {
	return &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
}

// NewTransport returns a transport that speaks HTTP/2 only: h2c with prior knowledge for http://
// URLs and HTTP/2 over TLS (ALPN "h2") for https:// URLs. HTTP/1.1 is switched off on purpose:
// with it enabled Go would use HTTP/1.1 for http:// URLs, which sdk-go answers with a reset.
//
// When a server's concurrent-stream limit is reached, the transport opens another connection
// instead of queueing, so the invoker can run many invocations against one deployment.
func NewTransport() *http.Transport {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	return &http.Transport{
		Proxy:               nil, // deployments are addressed directly, never via HTTP_PROXY
		DialContext:         clampDialer(dialer()),
		Protocols:           &protocols,
		TLSHandshakeTimeout: tlsHandshakeTimeout,
		IdleConnTimeout:     idleConnTimeout,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: maxIdleConnsPerHostH2,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: sendPingTimeout,
			PingTimeout:     pingTimeout,
		},
	}
}

// NewHTTP11Transport returns a transport that speaks HTTP/1.1 only (TLS for https:// URLs), for
// deployments registered with use_http_11 (for example behind a proxy without HTTP/2).
func NewHTTP11Transport() *http.Transport {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Transport{
		Proxy:               nil,
		DialContext:         dialer().DialContext,
		Protocols:           &protocols,
		TLSHandshakeTimeout: tlsHandshakeTimeout,
		IdleConnTimeout:     idleConnTimeout,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: maxIdleConnsPerHostH1,
	}
}
