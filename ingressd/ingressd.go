// Package ingressd is the http-ingress role: Restate's HTTP front door. It is stateless: it
// keeps the schema, the partition table and the nodes configuration cached from the
// metadata store, and forwards each invocation to the leader of its partition.
package ingressd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/ingressd/ingress"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// View is the metadata the ingress routes by, kept fresh from the metadata store.
type View struct {
	// ServiceDefaults are this node's defaults for what services leave unset
	// (config.Config.ServiceDefaults), nil for schema.BuiltinDefaults: the invocations this
	// ingress creates get its node's journal, idempotency and workflow retention, whichever
	// node registered the deployment. Set before Watch.
	ServiceDefaults *schema.Defaults

	store      metadata.Store
	refresh    sync.Mutex // one metadata read at a time, however many misses arrive
	schema     atomic.Pointer[versionedSchema]
	partitions atomic.Uint32
	table      atomic.Pointer[metadata.PartitionTable]
	addresses  atomic.Pointer[map[string]string] // fabric address of every worker node, by name

	changedMu sync.Mutex
	changed   chan struct{} // closed (and replaced) when the partition table changes
}

// TableChanged returns a channel closed at the next change of the partition table.
func (v *View) TableChanged() <-chan struct{} {
	v.changedMu.Lock()
	defer v.changedMu.Unlock()
	if v.changed == nil {
		v.changed = make(chan struct{})
	}
	return v.changed
}

// LeaderOf is the node placed as leader of partition p ("" when none).
func (v *View) LeaderOf(p uint32) string {
	if t := v.table.Load(); t != nil {
		return t.LeaderOf(p)
	}
	return ""
}

func (v *View) setTable(t *metadata.PartitionTable) {
	v.partitions.Store(t.NumPartitions)
	v.table.Store(t)
	v.changedMu.Lock()
	defer v.changedMu.Unlock()
	if v.changed != nil {
		close(v.changed)
		v.changed = nil
	}
}

// Watch keeps the view up to date until ctx ends.
func (v *View) Watch(ctx context.Context, s metadata.Store, log hclog.Logger) {
	v.store = s
	v.schema.Store(&versionedSchema{reg: &schema.Registry{Services: map[string]*schema.Service{}}})
	go metadata.Watch(ctx, s, metadata.KeySchema, func(x metadata.Versioned) {
		if err := v.setSchema(x); err != nil {
			log.Error("decode schema", "version", x.Version, "error", err)
		}
	})
	go metadata.Watch(ctx, s, metadata.KeyPartitionTable, func(x metadata.Versioned) {
		var t metadata.PartitionTable
		if err := json.Unmarshal(x.Value, &t); err != nil {
			log.Error("decode partition table", "error", err)
			return
		}
		v.setTable(&t)
	})
	go metadata.Watch(ctx, s, metadata.KeyNodes, func(x metadata.Versioned) {
		var n metadata.Nodes
		if err := json.Unmarshal(x.Value, &n); err != nil {
			log.Error("decode nodes configuration", "error", err)
			return
		}
		addrs := map[string]string{}
		for _, node := range n.Nodes {
			if slices.Contains(node.Roles, config.RoleWorker) && node.Address != "" {
				addrs[node.Name] = node.Address
			}
		}
		v.addresses.Store(&addrs)
	})
}

// Leader returns the node placed as leader of partition p and its fabric address, or
// rpc.ErrNotLeader while there is none (not placed yet, or its node is not registered):
// the ingress retries.
func (v *View) Leader(p uint32) (name, address string, err error) {
	t := v.table.Load()
	if t == nil {
		return "", "", rpc.ErrNotLeader
	}
	name = t.LeaderOf(p)
	if name == "" {
		return "", "", rpc.ErrNotLeader
	}
	if addrs := v.addresses.Load(); addrs != nil {
		address = (*addrs)[name]
	}
	if address == "" {
		return "", "", rpc.ErrNotLeader
	}
	return name, address, nil
}

type versionedSchema struct {
	version uint64
	reg     *schema.Registry
}

// setSchema installs a schema version unless a newer one is installed already.
func (v *View) setSchema(x metadata.Versioned) error {
	reg, err := schema.Decode(x.Value)
	if err != nil {
		return err
	}
	defaults := schema.BuiltinDefaults()
	if v.ServiceDefaults != nil {
		defaults = *v.ServiceDefaults
	}
	reg.Resolve(defaults)
	for {
		cur := v.schema.Load()
		if cur.version >= x.Version {
			return nil
		}
		if v.schema.CompareAndSwap(cur, &versionedSchema{version: x.Version, reg: reg}) {
			return nil
		}
	}
}

// Schema returns the newest schema seen.
func (v *View) Schema() *schema.Registry { return v.schema.Load().reg }

// RefreshSchema reads the schema from the metadata store, for lookups that missed the cached
// view (a service registered a moment ago).
func (v *View) RefreshSchema(ctx context.Context) *schema.Registry {
	v.refresh.Lock()
	defer v.refresh.Unlock()
	if x, err := v.store.Get(ctx, metadata.KeySchema); err == nil {
		_ = v.setSchema(x)
	}
	return v.Schema()
}

// NumPartitions returns the partition count (0 until provisioned).
func (v *View) NumPartitions() uint32 { return v.partitions.Load() }

// Handler builds the ingress HTTP handler routing through route.
func Handler(v *View, route func(partition uint32) (rpc.Worker, error), logger hclog.Logger) http.Handler {
	return ingress.NewHandler(ingress.Options{
		Schema:        v.Schema,
		RefreshSchema: v.RefreshSchema,
		NumPartitions: v.NumPartitions,
		Route:         route,
		LeaderOf:      v.LeaderOf,
		TableChanged:  v.TableChanged,
		Logger:        logger.Named("ingress"),
	})
}

// Run runs the http-ingress role as its own daemon.
func Run(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
	if len(cfg.MetadataClient.Addresses) == 0 {
		return fmt.Errorf("ingressd: [metadata-client] addresses is empty: name the metadata servers")
	}
	meta := metadata.NewClient(cfg.MetadataClient.Addresses, &http.Client{})
	v := &View{ServiceDefaults: new(cfg.ServiceDefaults())}
	v.Watch(ctx, meta, logger)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}
	var sender atomic.Pointer[string] // this life, once registered
	route := func(partition uint32) (rpc.Worker, error) {
		_, addr, err := v.Leader(partition)
		if err != nil {
			return nil, err
		}
		inv := &rpc.HTTPInvoker{BaseURL: addr, Client: client}
		if s := sender.Load(); s != nil {
			inv.Sender = *s
		}
		return inv, nil
	}
	ln, err := net.Listen("tcp", cfg.Ingress.BindAddress)
	if err != nil {
		return fmt.Errorf("ingressd: listen on %s ([ingress] bind-address): %w", cfg.Ingress.BindAddress, err)
	}
	// The fabric listener serves only /metrics here: nothing in the cluster calls an ingress.
	fabric := http.NewServeMux()
	metrics.Routes(fabric)
	fln, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		ln.Close()
		return fmt.Errorf("ingressd: listen on fabric address %s (bind-address): %w", cfg.BindAddress, err)
	}
	fabricSrv := &http.Server{Handler: fabric, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = fabricSrv.Serve(fln) }()
	srv := &http.Server{Handler: Handler(v, route, logger), ReadHeaderTimeout: 10 * time.Second}
	// The ingress registers without an address (no other node calls it), for the cluster
	// status and the gossip.
	node, members, err := membership.RegisterAndJoin(ctx, cfg, meta, metadata.Node{Name: cfg.NodeName, Roles: []string{config.RoleHTTPIngress}}, logger)
	if err != nil {
		ln.Close()
		_ = fabricSrv.Close()
		return fmt.Errorf("ingressd: %w", err)
	}
	life := membership.Sender{Name: node.Name, Generation: node.Generation}.String()
	sender.Store(&life)
	go func() {
		<-ctx.Done()
		_ = srv.Close()
		_ = fabricSrv.Close()
		members.Stop()
	}()
	logger.Info("ingress ready", "address", ln.Addr().String(), "metrics", "http://"+fln.Addr().String()+metrics.Path, "generation", node.Generation, "gossip", members.LocalAddr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		_ = fabricSrv.Close()
		return err
	}
	return nil
}
