// Package node composes every role in one process: the single-node server that the
// README starts with one command, and the in-process nodes of integration tests. Roles
// talk through in-process interfaces here; the daemons use the network instead.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/ingressd"
	"gorestate.dev/logserverd"
	"gorestate.dev/metadatad"
	"gorestate.dev/metadatad/admin"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/liveness"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd"
)

// Node is a running single-process node.
type Node struct {
	// Addresses the node listens on.
	IngressAddr, AdminAddr, FabricAddr net.Addr
	// Meta is the node's metadata store (local or a Raft member).
	Meta *metadatad.MetadataServer
	// Registered is the node as the nodes configuration holds it (its generation).
	Registered metadata.Node

	cancel    context.CancelFunc
	logServer *logserverd.LogServer
	worker    *workerd.Worker
	members   atomic.Pointer[membership.Membership]
	done      chan struct{}
}

// Worker is the node's worker role.
func (n *Node) Worker() *workerd.Worker { return n.worker }

// Members is the node's gossip membership.
func (n *Node) Members() *membership.Membership { return n.members.Load() }

// Start starts every role on one node and returns once the node serves requests.
func Start(ctx context.Context, cfg *config.Config, logger hclog.Logger) (*Node, error) {
	ctx, cancel := context.WithCancel(ctx)
	n := &Node{cancel: cancel, done: make(chan struct{})}
	fail := func(err error) (*Node, error) {
		cancel()
		n.closeStorage()
		return nil, err
	}
	// The fabric listener comes first: a replicated metadata store talks raft through it.
	fabric := http.NewServeMux()
	metrics.Routes(fabric)
	var err error
	if n.FabricAddr, _, err = metadatad.Serve(ctx, "fabric", cfg.BindAddress, fabric); err != nil {
		return fail(err)
	}
	if !cfg.HasRole(config.RoleWorker) {
		fabric.Handle(liveness.Path, liveness.Handler(cfg.Gossip.HeartbeatInterval.Duration())) // the worker's routes include it
	}
	var meta metadata.Store
	if cfg.HasRole(config.RoleMetadataServer) {
		if n.Meta, err = metadatad.OpenMetadataServer(cfg, metadatad.FabricHostPort(cfg.AdvertisedAddress, n.FabricAddr), logger); err != nil {
			return fail(err)
		}
		fabric.Handle(metadata.PathPrefix, n.Meta.Handler())
		fabric.Handle(cluster.PathPrefix, metadatad.ClusterHandler(cfg, n.Meta, n.Members))
		if err := n.Meta.Start(ctx); err != nil {
			return fail(err)
		}
		meta = n.Meta.Store()
	} else {
		// The metadata lives on other nodes: a node must never found a store of its own
		// (a cluster of its own) because its roles leave the metadata server out.
		if len(cfg.MetadataClient.Addresses) == 0 {
			return fail(errors.New("a node without the metadata-server role needs [metadata-client] addresses (RESTATE_METADATA_CLIENT__ADDRESSES)"))
		}
		meta = metadata.NewClient(cfg.MetadataClient.Addresses, &http.Client{})
	}
	if cfg.AutoProvision && n.Meta != nil {
		if err := metadatad.AutoProvision(ctx, cfg, meta); err != nil {
			return fail(err)
		}
	}
	if cfg.HasRole(config.RoleLogServer) {
		if n.logServer, err = logserverd.Start(ctx, cfg, meta, fabric, logger.Named("log-server")); err != nil {
			return fail(err)
		}
	}
	// Profiles are served on the fabric port, which only cluster members should reach.
	fabric.HandleFunc("/debug/pprof/", pprof.Index)
	fabric.HandleFunc("/debug/pprof/profile", pprof.Profile)
	if cfg.HasRole(config.RoleWorker) {
		n.worker = workerd.New(cfg, meta, logger)
		n.worker.Routes(fabric)
	}
	// Registered before the worker starts: the worker's replicated segments name this
	// life's generation as their sequencer.
	registered, members, err := membership.RegisterAndJoin(ctx, cfg, meta, metadata.Node{Name: cfg.NodeName, Roles: cfg.Roles, Address: advertised(cfg, n.FabricAddr)}, logger)
	if err != nil {
		return fail(err)
	}
	n.Registered = registered
	n.members.Store(members)
	if cfg.HasRole(config.RoleAdmin) {
		// The cluster controller places the partitions, this node's worker included: it
		// starts first.
		placer := &cluster.Placer{Store: meta, Self: metadata.NodeID{Name: registered.Name, Generation: registered.Generation},
			Members: n.Members, Logger: logger.Named("controller"),
			HeartbeatInterval: cfg.Gossip.HeartbeatInterval.Duration(), HeartbeatTimeout: cfg.Gossip.HeartbeatTimeout.Duration()}
		go placer.Run(ctx)
		go cluster.WatchMembership(ctx, members, logger.Named("controller"))
	}
	view := &ingressd.View{ServiceDefaults: new(cfg.ServiceDefaults())}
	view.Watch(ctx, meta, logger)
	var (
		workers admin.Workers
		query   admin.QuerySource
		route   func(p uint32) (rpc.Worker, error)
	)
	if n.worker != nil {
		// This node's worker answers for the partitions it leads; the others go to their
		// leader's node.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}
		sender := membership.Sender{Name: registered.Name, Generation: registered.Generation}.String()
		route = func(p uint32) (rpc.Worker, error) {
			name, addr, err := view.Leader(p)
			switch {
			case err != nil:
				return nil, err
			case name == cfg.NodeName:
				return n.worker, nil
			}
			return &rpc.HTTPInvoker{BaseURL: addr, Client: client, Sender: sender}, nil
		}
		n.worker.SetIdentity(registered)
		n.worker.SetMembership(members)
		if err := n.worker.Start(ctx); err != nil {
			return fail(fmt.Errorf("start worker: %w", err))
		}
		n.worker.IntrospectRoutes(fabric)
		// Admin requests for, and the rows of, partitions led elsewhere go to their leaders.
		workers = routedWorkers{view: view, route: route}
		query = admin.NewNodeQuerySource(meta, &http.Client{Timeout: 30 * time.Second}, cfg.NodeName, n.worker)
	}
	if cfg.HasRole(config.RoleAdmin) {
		// Without a local worker the admin API reaches the workers over the network.
		if n.AdminAddr, _, err = metadatad.Serve(ctx, "admin", cfg.Admin.BindAddress, metadatad.AdminHandler(cfg, meta, n.Meta, workers, query, logger)); err != nil {
			return fail(err)
		}
	}
	switch {
	case cfg.HasRole(config.RoleHTTPIngress) && n.worker != nil:
		if n.IngressAddr, _, err = metadatad.Serve(ctx, "ingress", cfg.Ingress.BindAddress, ingressd.Handler(view, route, logger)); err != nil {
			return fail(err)
		}
	case cfg.HasRole(config.RoleHTTPIngress):
		logger.Warn("the http-ingress role runs in gorestate only with the worker role; run ingressd for an ingress apart from the workers")
	}
	go func() {
		<-ctx.Done()
		n.closeStorage()
		close(n.done)
	}()
	return n, nil
}

func advertised(cfg *config.Config, fabric net.Addr) string {
	if cfg.AdvertisedAddress != "" {
		return cfg.AdvertisedAddress
	}
	return "http://" + fabric.String()
}

func (n *Node) closeStorage() {
	if m := n.Members(); m != nil {
		m.Stop()
	}
	if n.worker != nil {
		_ = n.worker.Close()
	}
	if n.logServer != nil {
		_ = n.logServer.Close()
	}
	if n.Meta != nil {
		_ = n.Meta.Close()
	}
}

// Stop stops the node and waits until its storage is closed.
func (n *Node) Stop() {
	n.cancel()
	<-n.done
}

// routedWorkers gives the admin API each partition's leader, as the ingress reaches it.
type routedWorkers struct {
	view  *ingressd.View
	route func(p uint32) (rpc.Worker, error)
}

func (r routedWorkers) NumPartitions() uint32 { return r.view.NumPartitions() }
func (r routedWorkers) Route(p uint32) (rpc.Controller, error) {
	w, err := r.route(p)
	if err != nil {
		return nil, err
	}
	return w, nil
}
