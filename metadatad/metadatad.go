// Package metadatad is the metadata-server role (the versioned metadata store every other
// role reads through a metadata client) and the admin role (Restate's admin API and the
// cluster provisioning). Run starts it as its own daemon; Open and the handlers let other
// programs compose it with the other roles in one process.
package metadatad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/metadatad/admin"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/metadata"
)

// Version is the Restate server version whose APIs this server implements.
const Version = "1.7.12"

// OpenStore opens the node's metadata store. Only the single-node local store exists so
// far; "replicated" is refused until the Raft store lands.
func OpenStore(cfg *config.Config) (*metadata.LocalStore, error) {
	switch cfg.MetadataServer.Type {
	case "", "local":
	default:
		return nil, fmt.Errorf("metadatad: [metadata-server] type = %q is not supported yet (only \"local\")", cfg.MetadataServer.Type)
	}
	s, err := metadata.OpenLocal(filepath.Join(cfg.NodeDir(), "metadata"))
	if err != nil {
		return nil, fmt.Errorf("metadatad: %w", err)
	}
	return s, nil
}

// Provision writes the initial cluster configuration (partition table and log chains) if
// the cluster has none yet. It is a no-op on a provisioned cluster.
func Provision(ctx context.Context, s metadata.Store, numPartitions uint32) error {
	if numPartitions == 0 {
		return fmt.Errorf("provision: the partition count must be positive")
	}
	if _, err := s.Get(ctx, metadata.KeyPartitionTable); err == nil {
		return nil
	} else if !errors.Is(err, metadata.ErrNotFound) {
		return err
	}
	logs := metadata.Logs{Chains: map[uint32][]metadata.Segment{}}
	for p := uint32(0); p < numPartitions; p++ {
		logs.Chains[p] = []metadata.Segment{{BaseLSN: 1, Provider: "local", LogletID: uint64(p)}}
	}
	lb, _ := json.Marshal(logs)
	if _, err := s.Put(ctx, metadata.KeyLogs, lb, 0); err != nil && !errors.Is(err, metadata.ErrVersionMismatch) {
		return fmt.Errorf("provision logs: %w", err)
	}
	tb, _ := json.Marshal(metadata.PartitionTable{NumPartitions: numPartitions})
	// The partition table goes last: its presence means "provisioned".
	if _, err := s.Put(ctx, metadata.KeyPartitionTable, tb, 0); err != nil && !errors.Is(err, metadata.ErrVersionMismatch) {
		return fmt.Errorf("provision partition table: %w", err)
	}
	return nil
}

// AdminHandler returns Restate's admin API over the metadata store. workers reaches the
// partition leaders; nil finds them through the nodes configuration in the store.
func AdminHandler(cfg *config.Config, s metadata.Store, workers admin.Workers, query admin.QuerySource, logger hclog.Logger) http.Handler {
	if workers == nil {
		workers = storeWorkers{store: s, client: &http.Client{Timeout: time.Minute}}
	}
	if query == nil {
		query = admin.NewWorkerQuerySource(s, &http.Client{Timeout: 30 * time.Second})
	}
	return admin.NewHandler(admin.Options{
		Store:      s,
		Workers:    workers,
		Query:      query,
		HTTPClient: &http.Client{Transport: h2c.NewTransport(), Timeout: 30 * time.Second},
		IngressURL: ingressURL(cfg),
		Version:    Version,
		Logger:     logger.Named("admin"),
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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

// Run runs the metadata-server role (and the admin role if configured) as a daemon.
func Run(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
	s, err := OpenStore(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if cfg.AutoProvision {
		if err := Provision(ctx, s, uint32(cfg.DefaultNumPartitions)); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metadata/", metadata.NewHTTPHandler(s))
	fabric, _, err := Serve(ctx, "fabric", cfg.BindAddress, mux)
	if err != nil {
		return err
	}
	logger.Info("metadata server ready", "fabric", fabric.String())
	if cfg.HasRole(config.RoleAdmin) {
		a, _, err := Serve(ctx, "admin", cfg.Admin.BindAddress, AdminHandler(cfg, s, nil, nil, logger))
		if err != nil {
			return err
		}
		logger.Info("admin API ready", "address", a.String())
	}
	<-ctx.Done()
	return nil
}
