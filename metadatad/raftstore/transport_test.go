package raftstore

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestDialWaitsForAMemberThatIsDown: a dial to a member that is restarting (nothing listens
// yet) is tried again until it listens, within the timeout raft gives the dial, instead of
// failing at once (or after a second) into raft's growing backoff: with a one-second window
// a member down for 20 s or more waited 8-10 s after its restart for the leader to contact
// it. Closing the store ends such dials at once.
func TestDialWaitsForAMemberThatIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()                               // the member is down
	const comeBack = 1500 * time.Millisecond // past the one-second window Dial had before

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
		time.Sleep(comeBack)
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
		t.Fatalf("dial a member that came back after %v: %v", comeBack, err)
	}
	c.Close()
	t.Logf("connected %v after the first attempt", time.Since(start).Round(time.Millisecond))

	// A member that stays down fails the dial once raft's timeout has passed.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln2.Addr().String()
	ln2.Close()
	start = time.Now()
	if _, err := client.Dial(raft.ServerAddress(down), time.Second); err == nil {
		t.Fatal("dial of a member that is down succeeded")
	}
	if took := time.Since(start); took < 700*time.Millisecond || took > 3*time.Second {
		t.Fatalf("dial of a member that is down with a timeout of 1s took %v", took)
	}

	// Once the store closes, a dial of a member that is down ends at once.
	go func() {
		time.Sleep(200 * time.Millisecond)
		client.stopRedial()
	}()
	start = time.Now()
	if _, err := client.Dial(raft.ServerAddress(down), 10*time.Second); err == nil {
		t.Fatal("dial of a member that is down succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("dial of a member that is down went on for %v after the store began to close", took)
	}
}
