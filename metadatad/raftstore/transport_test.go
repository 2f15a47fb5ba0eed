package raftstore

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestDialWaitsForAMemberThatIsDown: a dial to a member that is restarting (nothing listens
// yet) is tried again until it listens, within the redial window, instead of failing at
// once into raft's growing backoff.
func TestDialWaitsForAMemberThatIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the member is down

	server := newStreamLayer(addr, nil)
	defer server.Close()
	go func() {
		for {
			c, err := server.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	back := make(chan *http.Server, 1)
	go func() {
		time.Sleep(redialWindow / 3)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			close(back)
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(server.ServeHTTP)}
		back <- srv
		srv.Serve(ln)
	}()
	defer func() {
		if srv := <-back; srv != nil {
			srv.Close()
		}
	}()

	client := newStreamLayer("127.0.0.1:1", nil)
	defer client.Close()
	start := time.Now()
	c, err := client.Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("dial a member that came back after %v: %v", redialWindow/3, err)
	}
	c.Close()
	t.Logf("connected %v after the first attempt", time.Since(start).Round(time.Millisecond))

	// A member that stays down fails the dial once the window has passed.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln2.Addr().String()
	ln2.Close()
	start = time.Now()
	if _, err := client.Dial(raft.ServerAddress(down), 5*time.Second); err == nil {
		t.Fatal("dial of a member that is down succeeded")
	}
	if took := time.Since(start); took > 3*redialWindow {
		t.Fatalf("dial of a member that is down took %v", took)
	}
}
