// Package node composes every role in one process: the single-node server that the
// README starts with one command, and the in-process nodes of integration tests. Roles
// talk through in-process interfaces here; the daemons use the network instead.
package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/ingressd"
	"gorestate.dev/metadatad"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd"
)

// Node is a running single-process node.
type Node struct {
	// Addresses the node listens on.
	IngressAddr, AdminAddr, FabricAddr net.Addr

	cancel context.CancelFunc
	meta   *metadata.LocalStore
	worker *workerd.Worker
	done   chan struct{}
}

// Start starts every role on one node and returns once the node serves requests.
func Start(ctx context.Context, cfg *config.Config, logger hclog.Logger) (*Node, error) {
	ctx, cancel := context.WithCancel(ctx)
	n := &Node{cancel: cancel, done: make(chan struct{})}
	fail := func(err error) (*Node, error) {
		cancel()
		n.closeStorage()
		return nil, err
	}
	var err error
	if n.meta, err = metadatad.OpenStore(cfg); err != nil {
		return fail(err)
	}
	if cfg.AutoProvision {
		if err := metadatad.Provision(ctx, n.meta, uint32(cfg.DefaultNumPartitions)); err != nil {
			return fail(err)
		}
	}
	n.worker = workerd.New(cfg, n.meta, logger)

	fabric := http.NewServeMux()
	fabric.Handle("/metadata/", metadata.NewHTTPHandler(n.meta))
	n.worker.Routes(fabric)
	// Profiles are served on the fabric port, which only cluster members should reach.
	fabric.HandleFunc("/debug/pprof/", pprof.Index)
	fabric.HandleFunc("/debug/pprof/profile", pprof.Profile)
	if n.FabricAddr, _, err = metadatad.Serve(ctx, "fabric", cfg.BindAddress, fabric); err != nil {
		return fail(err)
	}
	if err := n.worker.Start(ctx); err != nil {
		return fail(fmt.Errorf("start worker: %w", err))
	}
	n.worker.IntrospectRoutes(fabric)
	if _, err := metadata.RegisterNode(ctx, n.meta, metadata.Node{Name: cfg.NodeName, Roles: cfg.Roles, Address: advertised(cfg, n.FabricAddr)}); err != nil {
		return fail(err)
	}
	view := &ingressd.View{}
	view.Watch(ctx, n.meta, logger)
	route := func(uint32) (rpc.Worker, error) { return n.worker, nil }
	workers := localWorkers{view: view, worker: n.worker}
	if n.AdminAddr, _, err = metadatad.Serve(ctx, "admin", cfg.Admin.BindAddress, metadatad.AdminHandler(cfg, n.meta, workers, n.worker, logger)); err != nil {
		return fail(err)
	}
	if n.IngressAddr, _, err = metadatad.Serve(ctx, "ingress", cfg.Ingress.BindAddress, ingressd.Handler(view, route, logger)); err != nil {
		return fail(err)
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
	if n.worker != nil {
		_ = n.worker.Close()
	}
	if n.meta != nil {
		_ = n.meta.Close()
	}
}

// Stop stops the node and waits until its storage is closed.
func (n *Node) Stop() {
	n.cancel()
	<-n.done
}

// localWorkers gives the admin API the worker of this process.
type localWorkers struct {
	view   *ingressd.View
	worker *workerd.Worker
}

func (l localWorkers) NumPartitions() uint32                { return l.view.NumPartitions() }
func (l localWorkers) Route(uint32) (rpc.Controller, error) { return l.worker, nil }
