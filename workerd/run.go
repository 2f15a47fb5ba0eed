package workerd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/liveness"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
	"gorestate.dev/shared/rpc"
)

// Routes adds the worker's fabric endpoints (Invoke for ingress nodes) to mux.
func (w *Worker) Routes(mux *http.ServeMux) {
	rpc.Routes(mux, w)
	w.logRoutes(mux)
	w.snapshotRoutes(mux)
	mux.Handle(liveness.Path, liveness.Handler(w.cfg.Gossip.HeartbeatInterval.Duration()))
	mux.HandleFunc("GET "+rpc.PartitionsPath, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(rw).Encode(w.Partitions())
	})
}

// Run runs the worker role as its own daemon: metadata comes from the metadata servers in
// [metadata-client] addresses, and the ingress reaches it on the fabric address.
func Run(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
	if len(cfg.MetadataClient.Addresses) == 0 {
		return fmt.Errorf("workerd: [metadata-client] addresses is empty: name the metadata servers")
	}
	meta := metadata.NewClient(cfg.MetadataClient.Addresses, &http.Client{})
	w := New(cfg, meta, logger)
	ln, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		return fmt.Errorf("workerd: listen on fabric address %s (bind-address): %w", cfg.BindAddress, err)
	}
	mux := http.NewServeMux()
	metrics.Routes(mux)
	w.Routes(mux)
	// Requests from a superseded life of a node (it restarted since) are refused once the
	// gossip is up; until then there is no view to check them against.
	var handler atomic.Pointer[http.Handler] // mux until the gossip is up, then fenced
	var h http.Handler = mux
	handler.Store(&h)
	fenced := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(rw, r) })
	srv := &http.Server{Handler: fenced, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	// Shutdown order: leave the gossip, stop serving, stop the processors, close storage.
	ctx, cancel := context.WithCancel(ctx)
	var m *membership.Membership
	shutdown := func() error {
		if m != nil {
			m.Stop()
		}
		_ = srv.Close()
		cancel()
		return w.Close()
	}
	advertised := cfg.AdvertisedAddress
	if advertised == "" {
		advertised = "http://" + ln.Addr().String() + "/"
	}
	// Registered before the partitions start: this life's generation makes it the
	// sequencer of the replicated segments it creates.
	node, m, err := membership.RegisterAndJoin(ctx, cfg, meta, metadata.Node{Name: cfg.NodeName, Roles: []string{config.RoleWorker}, Address: advertised}, logger)
	if err != nil {
		_ = shutdown()
		return fmt.Errorf("workerd: %w", err)
	}
	w.SetIdentity(node)
	w.SetMembership(m)
	stale := membership.RejectStale(m, mux)
	handler.Store(&stale)
	if err := w.Start(ctx); err != nil {
		_ = shutdown()
		return err
	}
	w.IntrospectRoutes(mux) // Rows needs a started worker
	logger.Info("worker ready", "fabric", ln.Addr().String(), "generation", node.Generation, "gossip", m.LocalAddr())
	<-ctx.Done()
	return shutdown()
}
