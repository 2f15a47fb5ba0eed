package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
)

// DaemonRejoinInterval is how often a daemon that sees no other live member joins its seeds
// again: seeds may start after it, or come back after a partition.
const DaemonRejoinInterval = 5 * time.Second

// ForDaemon is the membership configuration of a daemon: its [gossip] settings and its
// identity as RegisterNode stored it (the generation of this process's life).
func ForDaemon(cfg *config.Config, n metadata.Node, logger hclog.Logger) Config {
	return Config{
		ClusterName:    cfg.ClusterName,
		NodeName:       n.Name,
		Generation:     n.Generation,
		Roles:          n.Roles,
		Address:        n.Address,
		BindAddr:       cfg.Gossip.BindAddress,
		AdvertiseAddr:  cfg.Gossip.AdvertisedAddress,
		Seeds:          cfg.Gossip.Seeds,
		RejoinInterval: DaemonRejoinInterval,
		Logger:         logger.Named("membership"),
	}
}

// RegisterAndJoin registers the daemon in the nodes configuration (which gives this life its
// generation) and joins the gossip with that identity.
func RegisterAndJoin(ctx context.Context, cfg *config.Config, store metadata.Store, n metadata.Node, logger hclog.Logger) (metadata.Node, *Membership, error) {
	// The metadata servers may still be starting (joining, migrating, electing a leader):
	// wait for them rather than give up, as a daemon started with its cluster would. A
	// leader that lost its leadership while committing the registration leaves its outcome
	// unknown; RegisterNode reads again to learn it, and when it cannot, it is asked again
	// here like an unavailable store (the next registration reads what landed). A write the
	// servers failed otherwise is not an unknown outcome (metadata.Client), and stops us.
	backoff := 100 * time.Millisecond
	var lastLog time.Time
	for {
		registered, err := metadata.RegisterNode(ctx, store, n)
		if err == nil {
			n = registered
			break
		}
		if !(errors.Is(err, metadata.ErrUnavailable) || errors.Is(err, metadata.ErrOutcomeUnknown)) || ctx.Err() != nil {
			return n, nil, fmt.Errorf("register node %s: %w", n.Name, err)
		}
		if time.Since(lastLog) > 5*time.Second {
			logger.Warn("waiting for the metadata servers to register this node", "error", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return n, nil, fmt.Errorf("register node %s: %w", n.Name, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	m, err := Start(ctx, ForDaemon(cfg, n, logger))
	if err != nil {
		return n, nil, err
	}
	follow, stop := context.WithCancel(ctx)
	m.stopFollow = stop // Stop ends the watch with the membership it feeds
	go FollowNodesConfig(follow, store, m)
	return n, m, nil
}

// Stop leaves the gossip gracefully (so peers see "left", not "failed") and stops it.
func (m *Membership) Stop() {
	if m.stopFollow != nil {
		m.stopFollow()
	}
	_ = m.Leave(2 * time.Second)
	_ = m.Close()
}

// FollowNodesConfig feeds every generation of the metadata store's nodes configuration (the
// source of truth for node identity) into m until ctx ends, so that a restarted node's
// previous life is fenced even before the gossip about its new life arrives.
func FollowNodesConfig(ctx context.Context, store metadata.Store, m *Membership) {
	w := metadata.Watcher{OnError: func(err error) { m.logger.Debug("watch nodes configuration", "error", err) }}
	_ = w.Watch(ctx, store, metadata.KeyNodes, func(v metadata.Versioned) {
		var nodes metadata.Nodes
		if err := json.Unmarshal(v.Value, &nodes); err != nil {
			m.logger.Warn("undecodable nodes configuration", "version", v.Version, "error", err)
			return
		}
		for _, n := range nodes.Nodes {
			m.ObserveGeneration(n.Name, n.Generation)
		}
	})
}
