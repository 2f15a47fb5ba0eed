package upgrade

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestDialAndAccept(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if !Requested(r, "test/1") || r.URL.Path != "/p" || r.Header.Get("X-From") != "me" {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		conn, err := Accept(w, r, "test/1")
		if err != nil {
			return
		}
		defer conn.Close()
		// Sent at once after the 101: the client's handshake reader may take it along,
		// and it must not be lost.
		_, _ = io.WriteString(conn, "hello ")
		b := make([]byte, 4)
		if _, err := io.ReadFull(conn, b); err == nil {
			_, _ = conn.Write(b)
		}
	})
	conn, err := Dial(context.Background(), addr, "/p", "test/1", http.Header{"X-From": {"me"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "hello ping" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestDialRefused(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	_, err := Dial(context.Background(), addr, "/p", "test/1", nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "upgrade to test/1 refused: 404 Not Found: 404 page not found") {
		t.Fatalf("err %v", err)
	}
	// A plain GET is not an upgrade request.
	r := httptest.NewRequest(http.MethodGet, "/p", nil)
	if Requested(r, "test/1") {
		t.Fatal("plain GET taken for an upgrade")
	}
}

func TestDialEndsWithItsContext(t *testing.T) {
	// A listener that accepts and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = Dial(ctx, ln.Addr().String(), "/p", "test/1", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want the cancellation", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}
