package raftstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A member without raft state refuses vote and pre-vote requests until it is opened, and
// passes every other RPC on; once opened, votes reach raft too.
func TestVoteGate(t *testing.T) {
	_, candidate := raft.NewInmemTransport("a")
	_, inner := raft.NewInmemTransport("b")
	candidate.Connect("b", inner)
	inner.Connect("a", candidate)
	gate := newVoteGate(inner, true)
	defer gate.Close()

	vote := func() error {
		var resp raft.RequestVoteResponse
		return candidate.RequestVote("b", "b", &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("a"), Addr: []byte("a")}, Term: 7}, &resp)
	}
	if err := vote(); err == nil || !strings.Contains(err.Error(), "does not vote") {
		t.Fatalf("vote to a closed gate: %v", err)
	}
	// Other RPCs go through while closed.
	go func() {
		rpc := <-gate.Consumer()
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
	}()
	var ae raft.AppendEntriesResponse
	if err := candidate.AppendEntries("b", "b", &raft.AppendEntriesRequest{Term: 7, Entries: []*raft.Log{{Index: 1, Term: 7}}}, &ae); err != nil || !ae.Success {
		t.Fatalf("append entries through a closed gate: %+v, %v", ae, err)
	}
	gate.open()
	got := make(chan any, 1)
	go func() {
		select {
		case rpc := <-gate.Consumer():
			got <- rpc.Command
			rpc.Respond(&raft.RequestVoteResponse{Term: 7, Granted: true}, nil)
		case <-time.After(5 * time.Second):
			got <- errors.New("no RPC")
		}
	}()
	if err := vote(); err != nil {
		t.Fatalf("vote through an open gate: %v", err)
	}
	if _, ok := (<-got).(*raft.RequestVoteRequest); !ok {
		t.Fatal("the vote request did not reach raft")
	}
}
