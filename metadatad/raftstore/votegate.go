package raftstore

import (
	"errors"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// errNotVoting answers vote requests while a member without raft state waits to be
// (re-)added.
var errNotVoting = errors.New("raftstore: this member has no raft state yet and does not vote until it is added to the cluster")

// voteGate wraps raft's transport and refuses vote requests while closed, and neither
// asks for votes. A member whose
// disk was wiped comes back with the same name at the same address, so the other members'
// configuration still counts it as a voter; hashicorp/raft grants votes while its own
// configuration is empty, and an empty log is "up to date" to anyone. Voting then could
// elect a leader that lacks committed entries. So a member without state does not vote
// until it has been bootstrapped or re-added (the leader first removes its old self). The
// gate stays closed across restarts until then (notAddedFile): the first entries from the
// leader give the member raft state long before it is re-added.
type voteGate struct {
	raft.Transport
	closed atomic.Bool
	out    chan raft.RPC
	done   chan struct{}
}

var (
	_ raft.WithPreVote = (*voteGate)(nil)
	_ raft.WithClose   = (*voteGate)(nil)
)

func newVoteGate(inner raft.Transport, closed bool) *voteGate {
	g := &voteGate{Transport: inner, out: make(chan raft.RPC), done: make(chan struct{})}
	g.closed.Store(closed)
	go g.pump()
	return g
}

func (g *voteGate) pump() {
	in := g.Transport.Consumer()
	for {
		select {
		case rpc := <-in:
			if g.closed.Load() {
				switch rpc.Command.(type) {
				case *raft.RequestVoteRequest, *raft.RequestPreVoteRequest:
					rpc.Respond(nil, errNotVoting)
					continue
				}
			}
			select {
			case g.out <- rpc:
			case <-g.done:
				return
			}
		case <-g.done:
			return
		}
	}
}

// open lets the member vote.
func (g *voteGate) open() { g.closed.Store(false) }

func (g *voteGate) Consumer() <-chan raft.RPC { return g.out }

// RequestVote and RequestPreVote fail while the gate is closed: a member that may lack
// committed entries must not stand for election either (it votes for itself, and a
// member that missed the same entries could give it a majority).
func (g *voteGate) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if g.closed.Load() {
		return errNotVoting
	}
	return g.Transport.RequestVote(id, target, args, resp)
}

func (g *voteGate) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if g.closed.Load() {
		return errNotVoting
	}
	return g.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

func (g *voteGate) Close() error {
	select {
	case <-g.done:
	default:
		close(g.done)
	}
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}
