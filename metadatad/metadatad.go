// Package metadatad is the metadata-server role (the versioned metadata store every other
// role reads through a metadata client) and the admin role (Restate's admin API and the
// cluster provisioning). Run starts it as its own daemon; Open and the handlers let other
// programs compose it with the other roles in one process.
package metadatad

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/metadatad/admin"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/identity"
	"gorestate.dev/shared/liveness"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
	"gorestate.dev/shared/version"
)

// Version is the Restate server version whose APIs this server implements.
const Version = version.Restate

// ClusterDefaults is the cluster configuration a provision without arguments (and
// auto-provision) writes: the node's default-num-partitions, default-replication and
// [bifrost] default-provider; [bifrost.replicated-loglet] default-log-replication, when set,
// overrides the log replication only.
func ClusterDefaults(cfg *config.Config) metadata.ClusterConfig {
	logReplication := int(cfg.DefaultReplication)
	if r := cfg.Bifrost.ReplicatedLoglet.DefaultLogReplication; r > 0 {
		logReplication = int(r)
	}
	return metadata.ClusterConfig{
		NumPartitions:        uint32(cfg.DefaultNumPartitions),
		PartitionReplication: int(cfg.DefaultReplication),
		LogProvider:          cfg.Bifrost.DefaultProvider,
		LogReplication:       logReplication,
	}
}

// AutoProvision provisions the cluster with the node's defaults unless it is provisioned.
func AutoProvision(ctx context.Context, cfg *config.Config, s metadata.Store) error {
	for attempt := 1; ; attempt++ {
		_, err := cluster.Provision(ctx, s, ClusterDefaults(cfg))
		if errors.Is(err, cluster.ErrAlreadyProvisioned) {
			return nil
		}
		// A write whose outcome is unknown (the metadata leader lost its leadership while
		// committing it): Provision picks up an interrupted provision, so run it again.
		if !errors.Is(err, metadata.ErrOutcomeUnknown) || attempt == 10 || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// AdminHandler returns Restate's admin API over the metadata store. meta is this node's
// metadata server, nil when the node runs none. workers reaches the partition leaders; nil
// finds them through the nodes configuration in the store.
func AdminHandler(cfg *config.Config, s metadata.Store, meta *MetadataServer, workers admin.Workers, query admin.QuerySource, logger hclog.Logger) http.Handler {
	if workers == nil {
		workers = storeWorkers{store: s, client: &http.Client{Timeout: time.Minute}}
	}
	if query == nil {
		query = admin.NewWorkerQuerySource(s, &http.Client{Timeout: 30 * time.Second})
	}
	// Discovery requests are signed like invocations; the key was checked when the
	// configuration loaded.
	keyFile := cfg.Worker.Invoker.RequestIdentityPrivateKeyPEMFile
	h2, _, err := identity.Wrap(keyFile, h2c.NewTransport())
	if err != nil {
		logger.Error("request identity: discovery requests go unsigned", "error", err)
		h2 = h2c.NewTransport()
	}
	h1, _, err := identity.Wrap(keyFile, h2c.NewHTTP11Transport())
	if err != nil {
		logger.Error("request identity: HTTP/1.1 discovery requests go unsigned", "error", err)
		h1 = h2c.NewHTTP11Transport()
	}
	return admin.NewHandler(admin.Options{
		Store:           s,
		Workers:         workers,
		Query:           query,
		HTTPClient:      &http.Client{Transport: h2, Timeout: 30 * time.Second},
		HTTP11Client:    &http.Client{Transport: h1, Timeout: 30 * time.Second},
		IngressURL:      ingressURL(cfg),
		Version:         Version,
		Logger:          logger.Named("admin"),
		ClusterName:     cfg.ClusterName,
		MetadataCluster: metadataCluster(cfg, meta),

		DeploymentRoutingHeaders: cfg.Admin.DeploymentRoutingHeaders,
		ServiceDefaults:          new(cfg.ServiceDefaults()),
	})
}

func ingressURL(cfg *config.Config) string {
	if cfg.Ingress.AdvertisedAddress != "" {
		return cfg.Ingress.AdvertisedAddress
	}
	host, port, err := net.SplitHostPort(cfg.Ingress.BindAddress)
	if err != nil {
		return "http://" + cfg.Ingress.BindAddress + "/"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Serve serves h on addr until ctx ends.
func Serve(ctx context.Context, name, addr string, h http.Handler) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	// HTTP/2 cleartext (prior knowledge) next to HTTP/1.1, as Restate's ingress and admin
	// accept both; the Raft tunnel and bifrost streams upgrade HTTP/1.1 connections.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	return ln.Addr(), errc, nil
}

// Daemon is a running metadatad.
type Daemon struct {
	FabricAddr net.Addr
	AdminAddr  net.Addr // nil without the admin role
	Meta       *MetadataServer
	Node       metadata.Node // as registered: name, generation, roles, address

	members atomic.Pointer[membership.Membership]
	done    chan struct{}
}

// Members is the node's gossip membership (nil until it joined).
func (d *Daemon) Members() *membership.Membership { return d.members.Load() }

// Done is closed once the daemon stopped (its context ended) and closed its storage.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// daemonRoles are the roles a metadatad process runs (whatever else roles lists).
var daemonRoles = []string{config.RoleMetadataServer, config.RoleAdmin}

// Start starts the metadata-server role (and the admin role if configured) and returns once
// the node serves: its metadata store is usable, it is registered and in the gossip.
func Start(ctx context.Context, cfg *config.Config, logger hclog.Logger) (*Daemon, error) {
	ln, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		return nil, fmt.Errorf("metadatad: listen on fabric address %s (bind-address): %w", cfg.BindAddress, err)
	}
	d := &Daemon{FabricAddr: ln.Addr(), done: make(chan struct{})}
	if d.Meta, err = OpenMetadataServer(cfg, FabricHostPort(cfg.AdvertisedAddress, ln.Addr()), logger); err != nil {
		ln.Close()
		return nil, err
	}
	fabric := http.NewServeMux()
	metrics.Routes(fabric)
	fabric.Handle(metadata.PathPrefix, d.Meta.Handler())
	fabric.Handle(cluster.PathPrefix, ClusterHandler(cfg, d.Meta, d.Members))
	fabric.Handle(liveness.Path, liveness.Handler(cfg.Gossip.HeartbeatInterval.Duration()))
	srv := &http.Server{Handler: fabric, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		// Leave the gossip first (peers see "left"), then close the store, which ends the
		// metadata long polls (up to 30s each) that would otherwise hold the HTTP shutdown.
		if m := d.Members(); m != nil {
			m.Stop()
		}
		_ = d.Meta.Close()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		close(d.done)
	}
	fail := func(err error) (*Daemon, error) { stop(); return nil, err }
	if err := d.Meta.Start(ctx); err != nil {
		return fail(err)
	}
	if cfg.AutoProvision {
		if err := AutoProvision(ctx, cfg, d.Meta.Store()); err != nil {
			return fail(err)
		}
	}
	var roles []string
	for _, r := range daemonRoles {
		if cfg.HasRole(r) {
			roles = append(roles, r)
		}
	}
	advertised := cfg.AdvertisedAddress
	if advertised == "" {
		advertised = "http://" + d.FabricAddr.String() + "/"
	}
	node, members, err := membership.RegisterAndJoin(ctx, cfg, d.Meta.Store(), metadata.Node{Name: cfg.NodeName, Roles: roles, Address: advertised}, logger)
	if err != nil {
		return fail(fmt.Errorf("metadatad: %w", err))
	}
	d.Node = node
	d.members.Store(members)
	logger.Info("metadata server ready", "fabric", d.FabricAddr.String(), "generation", d.Node.Generation, "gossip", members.LocalAddr())
	if cfg.HasRole(config.RoleAdmin) {
		a, _, err := Serve(ctx, "admin", cfg.Admin.BindAddress, AdminHandler(cfg, d.Meta.Store(), d.Meta, nil, nil, logger))
		if err != nil {
			return fail(err)
		}
		d.AdminAddr = a
		logger.Info("admin API ready", "address", a.String())
		go cluster.WatchMembership(ctx, members, logger.Named("controller"))
		placer := &cluster.Placer{Store: d.Meta.Store(), Self: metadata.NodeID{Name: node.Name, Generation: node.Generation},
			Members: d.members.Load, Logger: logger.Named("controller"),
			HeartbeatInterval: cfg.Gossip.HeartbeatInterval.Duration(), HeartbeatTimeout: cfg.Gossip.HeartbeatTimeout.Duration()}
		go placer.Run(ctx)
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return d, nil
}

// ClusterHandler serves the cluster API (status, provision, cluster configuration) of a
// node with the metadata-server role. members may return nil while the node has not joined
// the gossip yet.
func ClusterHandler(cfg *config.Config, meta *MetadataServer, members func() *membership.Membership) http.Handler {
	return cluster.NewHandler(cluster.Options{
		Sources: cluster.Sources{
			ClusterName: cfg.ClusterName,
			Store:       meta.Store(),
			Members: func() []membership.Member {
				if m := members(); m != nil {
					return m.Members()
				}
				return nil
			},
			Metadata: meta.Status,
			HTTP:     &http.Client{Timeout: 2 * time.Second},
		},
		Defaults:        ClusterDefaults(cfg),
		BeforeProvision: meta.Bootstrap,
	})
}

// Run runs metadatad until ctx ends.
func Run(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
	d, err := Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	<-d.Done()
	return nil
}
