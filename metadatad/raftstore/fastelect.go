package raftstore

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// A follower notices a dead leader only when the leader's heartbeats have been missing for
// a random time between the heartbeat timeout and twice it. When the leader's process dies,
// its tunnels break at once; a follower that sees the leader's tunnel break and then finds
// nothing listening at the leader's address (connection refused: the process is gone, not
// merely a connection) shortens its heartbeat timeout to the leader lease until a new
// leader is known, so that the election starts within one lease instead of one to two
// heartbeat timeouts. A slow or partitioned leader still answers the probe (or times it
// out), so only a dead one is acted on.
//
// Both followers see the same death at the same moment, so both hurry, and now and then
// both stand at once and split the vote; each then waits a random election timeout before
// standing again. That timeout is shortened to the lease as well, so a split costs one
// lease to two instead of one to two election timeouts.

// fastElectionHold bounds how long the shortened timeout stays without a new leader.
const fastElectionHold = 3 * time.Second

func (s *Store) peerLost(remote string) {
	leader, _ := s.raft.LeaderWithID()
	if string(leader) != remote || s.raft.State() != raft.Follower {
		return
	}
	c, err := net.DialTimeout("tcp", remote, 200*time.Millisecond)
	if err == nil {
		_ = c.Close()
		return // alive: only the connection broke
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	s.electSoon(raft.ServerAddress(remote))
}

// electSoon shortens the heartbeat timeout until a leader other than dead is known.
func (s *Store) electSoon(dead raft.ServerAddress) {
	if !s.fastElecting.CompareAndSwap(false, true) {
		return
	}
	orig := s.raft.ReloadableConfig()
	fast := orig
	fast.HeartbeatTimeout = s.leaseTimeout
	fast.ElectionTimeout = min(orig.ElectionTimeout, s.leaseTimeout)
	if fast.HeartbeatTimeout >= orig.HeartbeatTimeout {
		s.fastElecting.Store(false)
		return
	}
	if err := s.raft.ReloadConfig(fast); err != nil {
		s.logger.Warn("shorten the heartbeat timeout after the leader died", "error", err)
		s.fastElecting.Store(false)
		return
	}
	s.logger.Info("the metadata leader's process is gone: electing a new leader now", "leader", dead)
	go func() {
		defer s.fastElecting.Store(false)
		deadline := time.Now().Add(fastElectionHold)
		for time.Now().Before(deadline) && !s.isClosed() {
			if l, _ := s.raft.LeaderWithID(); l != "" && l != dead {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := s.raft.ReloadConfig(orig); err != nil && !s.isClosed() {
			s.logger.Warn("restore the heartbeat timeout", "error", err)
		}
	}()
}
