package cluster

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/membership"
)

// WatchMembership logs the gossip view of node liveness: it follows the events of m until
// ctx ends and reports joins, failures and departures of current node lives (events of
// superseded lives are dropped). Status reads the same gossip view; placement does not act
// on these events but on its own failure detector (Placer, package liveness).
func WatchMembership(ctx context.Context, m *membership.Membership, logger hclog.Logger) {
	for {
		events, cancel := m.Subscribe()
		if !follow(ctx, m, events, logger) {
			cancel()
			return
		}
		cancel() // fell behind: the channel was closed; subscribe again
	}
}

func follow(ctx context.Context, m *membership.Membership, events <-chan membership.Event, logger hclog.Logger) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case e, ok := <-events:
			if !ok {
				return ctx.Err() == nil
			}
			if !m.IsCurrent(e.Member.Name, e.Member.Generation) {
				continue
			}
			args := []any{"node", e.Member.Name, "generation", e.Member.Generation, "roles", e.Member.Roles}
			switch e.Kind {
			case membership.EventFailed:
				logger.Warn("node failed", args...)
			case membership.EventJoined:
				logger.Info("node joined", args...)
			case membership.EventLeft:
				logger.Info("node left", args...)
			}
		}
	}
}
