package membership

import (
	"context"
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
	n, err := metadata.RegisterNode(ctx, store, n)
	if err != nil {
		return n, nil, fmt.Errorf("register node %s: %w", n.Name, err)
	}
	m, err := Start(ctx, ForDaemon(cfg, n, logger))
	if err != nil {
		return n, nil, err
	}
	return n, m, nil
}

// Stop leaves the gossip gracefully (so peers see "left", not "failed") and stops it.
func (m *Membership) Stop() {
	_ = m.Leave(2 * time.Second)
	_ = m.Close()
}
