package logserverd

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
)

// Run runs the log-server role as its own daemon: metadata comes from the metadata servers
// in [metadata-client] addresses, and sequencers, readers and sealers reach it on the
// fabric address (bifrost streams, package wire).
func Run(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
	if len(cfg.MetadataClient.Addresses) == 0 {
		return fmt.Errorf("logserverd: [metadata-client] addresses is empty: name the metadata servers")
	}
	meta := metadata.NewClient(cfg.MetadataClient.Addresses, &http.Client{})
	ln, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		return fmt.Errorf("logserverd: listen on fabric address %s (bind-address): %w", cfg.BindAddress, err)
	}
	mux := http.NewServeMux()
	metrics.Routes(mux)
	// Profiles are served on the fabric port, which only cluster members should reach.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ls, err := Start(ctx, cfg, meta, mux, logger.Named("log-server"))
	if err != nil {
		ln.Close()
		return err
	}
	// Requests from a superseded life of a node are refused once the gossip is up; until
	// then there is no view to check them against.
	var handler atomic.Pointer[http.Handler]
	var h http.Handler = mux
	handler.Store(&h)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(rw, r) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	// Shutdown order: leave the gossip, stop serving, then end the streams (WaitForTail
	// long polls end with them) and close the loglets and the store.
	var m *membership.Membership
	shutdown := func() error {
		if m != nil {
			m.Stop()
		}
		_ = srv.Close()
		return ls.Close()
	}
	advertised := cfg.AdvertisedAddress
	if advertised == "" {
		advertised = "http://" + ln.Addr().String() + "/"
	}
	node := metadata.Node{Name: cfg.NodeName, Roles: []string{config.RoleLogServer}, Address: advertised, LogStorage: ls.StorageState()}
	node, m, err = membership.RegisterAndJoin(ctx, cfg, meta, node, logger)
	if err != nil {
		_ = shutdown()
		return fmt.Errorf("logserverd: %w", err)
	}
	stale := membership.RejectStale(m, mux)
	handler.Store(&stale)
	logger.Info("log server ready", "fabric", ln.Addr().String(), "generation", node.Generation,
		"log_storage", ls.StorageState(), "gossip", m.LocalAddr())
	<-ctx.Done()
	return shutdown()
}
