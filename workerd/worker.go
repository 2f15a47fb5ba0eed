// Package workerd is the worker role: it runs one partition processor per partition on top
// of the partition logs and the partition store, and the invoker that executes invocations
// against SDK deployments. Run starts it as its own daemon; New lets other programs compose
// it with the other roles in one process.
package workerd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/bifrost/replicated"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/identity"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/invoker"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
)

// Worker runs the partitions of one node.
type Worker struct {
	cfg    *config.Config
	meta   metadata.Store
	log    hclog.Logger
	schema atomic.Pointer[schema.Registry]
	// schemaMu orders schema installs; schemaVersion is the installed version.
	schemaMu      sync.Mutex
	schemaVersion uint64

	logs       *localloglet.Store
	bifrost    *bifrost.Bifrost
	replicated *replicated.Provider
	// self is this node's life (name and generation) as registered: the sequencer identity
	// of the replicated segments this node writes. Set by SetIdentity before Start.
	self       metadata.NodeID
	view       clusterView
	network    *wire.FabricNetwork
	sequencers sequencerService
	// sequencerHandler serves sequencers to other nodes (set by logRoutes); Close ends its
	// streams.
	sequencerHandler *wire.Handler
	members          atomic.Pointer[membership.Membership]
	aliveMu          sync.Mutex
	aliveAt          time.Time
	aliveCache       map[string]bool
	db               *store.DB
	inv              *invoker.Invoker
	procsMu          sync.Mutex
	procs            map[uint32]*running // the processors placed on this node
	placed           atomic.Pointer[metadata.PartitionTable]
	kicksMu          sync.Mutex
	kicks            map[uint32]chan struct{} // wakes a log's watchdog (watchdogKick)
	snapshots        snapshotter
	wg               sync.WaitGroup
}

// New creates a worker that reads metadata from meta.
func New(cfg *config.Config, meta metadata.Store, logger hclog.Logger) *Worker {
	w := &Worker{cfg: cfg, meta: meta, log: logger.Named("worker")}
	// Set once here, read by the fabric handlers from the start: a bad destination fails
	// Start.
	repo, err := newSnapshotRepository(cfg)
	if repo != nil {
		repo.ClusterFingerprint = w.view.fingerprint
	}
	w.snapshots = snapshotter{w: w, repo: repo, repoErr: err, parts: map[uint32]*partitionSnapshots{}}
	w.schema.Store(&schema.Registry{Services: map[string]*schema.Service{}})
	return w
}

// Start opens the worker's storage, waits for the cluster to be provisioned and starts every
// partition processor. It returns once all partitions lead and are ready for requests.
func (w *Worker) Start(ctx context.Context) error {
	dir := w.cfg.NodeDir()
	var err error
	if w.snapshots.repoErr != nil {
		return fmt.Errorf("worker: %w", w.snapshots.repoErr)
	}
	w.checkSnapshotDestination(ctx)
	if w.logs, err = localloglet.Open(filepath.Join(dir, "local-loglet"), localloglet.Options{
		// Processors read right behind the writer, so a small cache serves nearly every read.
		CacheSize: 4 << 20,
	}); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if w.db, err = store.Open(filepath.Join(dir, "db")); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	table, err := w.waitProvisioned(ctx)
	if err != nil {
		return err
	}
	if w.self.Generation == 0 {
		// Without this life's generation every restart would be the same sequencer and
		// resume its previous life's loglets, which a replicated loglet must never do.
		return errors.New("worker: SetIdentity was not called before Start: the worker needs its registered generation")
	}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.watchCluster(ctx) }()
	w.replicated = w.newReplicatedProvider()
	registry := bifrost.Registry{
		bifrost.ProviderLocal:      localloglet.NewProvider(w.logs, w.cfg.NodeName),
		bifrost.ProviderReplicated: w.replicated,
	}
	w.bifrost = bifrost.New(bifrost.Options{
		Meta:        w.meta,
		Registry:    registry,
		Logger:      w.log,
		Reconfigure: w.reconfigureLog,
	})
	// Only now: forwarded appends may look segments up through w.bifrost.
	w.sequencers.set(w.replicated.SequencerService())
	logIDs := make([]uint32, table.NumPartitions)
	for p := range logIDs {
		logIDs[p] = uint32(p)
	}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.runWatchdog(ctx, logIDs) }()
	if err := w.loadSchema(ctx); err != nil {
		// Not fatal: the schema watch below keeps trying, and attempts refresh it too.
		w.log.Warn("read the schema at start", "error", err)
	}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.watchSchema(ctx) }()

	transport, signer, err := identity.Wrap(w.cfg.Worker.Invoker.RequestIdentityPrivateKeyPEMFile, h2c.NewTransport())
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if signer != nil {
		w.log.Info("signing requests to deployments (request identity)", "public_key", signer.KeyID())
	}
	client := &http.Client{Transport: transport}
	w.inv = invoker.New(invoker.Options{
		Schema:            func() *schema.Registry { return w.schema.Load() },
		RefreshSchema:     w.refreshSchema,
		HTTPClient:        client,
		InactivityTimeout: w.cfg.Worker.Invoker.InactivityTimeout.Duration(),
		AbortTimeout:      w.cfg.Worker.Invoker.AbortTimeout.Duration(),
		RetryPolicy:       w.cfg.ServiceDefaults().RetryPolicy,
		ConcurrencyLimit:  w.cfg.Worker.Invoker.ConcurrentInvocationsLimit,
		DisableEagerState: w.cfg.Worker.Invoker.DisableEagerState,
		NodeName:          w.cfg.NodeName,
		Logger:            w.log,

		DeploymentConcurrencyLimit: w.cfg.Worker.Invoker.ConcurrentInvocationsPerDeploymentLimit,
	})
	liveWorkers.add(w) // its storage and invoker exist from here on
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.followPlacement(ctx) }()
	go func() { defer w.wg.Done(); w.snapshots.run(ctx) }()
	return w.waitLeading(ctx)
}

// processors returns the processors running on this node, by partition.
func (w *Worker) processors() []*processor.Processor {
	w.procsMu.Lock()
	defer w.procsMu.Unlock()
	out := make([]*processor.Processor, 0, len(w.procs))
	for _, r := range w.procs {
		out = append(out, r.proc)
	}
	slices.SortFunc(out, func(a, b *processor.Processor) int { return cmp.Compare(a.Partition(), b.Partition()) })
	return out
}

// Partitions reports the state of every partition processor of the worker.
func (w *Worker) Partitions() []rpc.PartitionState {
	procs := w.processors()
	out := make([]rpc.PartitionState, 0, len(procs))
	for _, p := range procs {
		s := rpc.PartitionState{ID: p.Partition(), Node: w.cfg.NodeName, Mode: p.Mode(), AppliedLSN: p.Applied(), DurableLSN: p.Durable(), TailLSN: p.Tail()}
		if l := p.Leader(); l != nil {
			s.Epoch = l.Epoch()
			s.Restore = w.snapshots.restoreInfo(p.Partition())
		}
		out = append(out, s)
	}
	return out
}

// InvokerStats returns the invoker's counters of attempts that waited for a slot.
func (w *Worker) InvokerStats() invoker.Stats { return w.inv.Stats() }

// Close waits for the processors (whose context must be done) and closes storage.
func (w *Worker) Close() error {
	w.wg.Wait()
	liveWorkers.remove(w)
	var errs []error
	if w.bifrost != nil {
		errs = append(errs, w.bifrost.Close())
	}
	if w.replicated != nil {
		errs = append(errs, w.replicated.Close())
	}
	if w.network != nil {
		w.network.Close()
	}
	if w.sequencerHandler != nil {
		w.sequencerHandler.Close()
	}
	if w.logs != nil {
		errs = append(errs, w.logs.Close())
	}
	if w.db != nil {
		errs = append(errs, w.db.Close())
	}
	return errors.Join(errs...)
}

func (w *Worker) waitProvisioned(ctx context.Context) (*metadata.PartitionTable, error) {
	for {
		table, terr := getJSON[metadata.PartitionTable](ctx, w.meta.Get, metadata.KeyPartitionTable)
		_, lerr := getJSON[metadata.Logs](ctx, w.meta.Get, metadata.KeyLogs)
		if terr == nil && lerr == nil {
			return table, nil
		}
		w.log.Info("waiting for the cluster to be provisioned", "error", errors.Join(terr, lerr))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func getJSON[T any](ctx context.Context, get func(context.Context, string) (metadata.Versioned, error), key string) (*T, error) {
	v, err := get(ctx, key)
	if err != nil {
		return nil, err
	}
	out := new(T)
	if err := json.Unmarshal(v.Value, out); err != nil {
		return nil, fmt.Errorf("decode metadata %s: %w", key, err)
	}
	return out, nil
}

func (w *Worker) loadSchema(ctx context.Context) error {
	v, err := w.meta.Get(ctx, metadata.KeySchema)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("worker: read schema: %w", err)
	}
	return w.setSchema(v)
}

// setSchema installs a schema version unless a newer one is installed already (the watch
// and refreshSchema race). What services leave unset comes from this node's configuration:
// the invoker runs attempts with its own node's timeouts and retry policy, and sets the
// retention of the calls its handlers make, whichever node registered the deployment.
func (w *Worker) setSchema(v metadata.Versioned) error {
	reg, err := schema.Decode(v.Value)
	if err != nil {
		return fmt.Errorf("worker: decode schema v%d: %w", v.Version, err)
	}
	reg.Resolve(w.cfg.ServiceDefaults())
	w.schemaMu.Lock()
	defer w.schemaMu.Unlock()
	if v.Version > w.schemaVersion {
		w.schemaVersion = v.Version
		w.schema.Store(reg)
	}
	return nil
}

// refreshSchema reads the newest schema from the metadata store, for an attempt whose
// service the cached schema does not know yet.
func (w *Worker) refreshSchema(ctx context.Context) *schema.Registry {
	if err := w.loadSchema(ctx); err != nil {
		w.log.Warn("refresh schema", "error", err)
	}
	return w.schema.Load()
}

func (w *Worker) watchSchema(ctx context.Context) {
	metadata.Watch(ctx, w.meta, metadata.KeySchema, func(v metadata.Versioned) {
		if err := w.setSchema(v); err != nil {
			w.log.Error("schema update", "error", err)
		}
	})
}

// leaderOf returns the leader on this node of partition, after checking that invocation id
// belongs to it: a request sent to the wrong partition must not create or find an
// invocation there.
func (w *Worker) leaderOf(partition uint32, id []byte) (*processor.Leader, error) {
	if t := w.placed.Load(); t != nil {
		inv, err := ids.InvocationIDFromBytes(id)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", rpc.ErrInvalidRequest, err)
		}
		if p := ids.PartitionOf(inv.PartitionKey, t.NumPartitions); p != partition {
			return nil, fmt.Errorf("%w: invocation %s belongs to partition %d, not %d", rpc.ErrInvalidRequest, inv, p, partition)
		}
	}
	return w.leader(partition)
}

// leader returns the leader of a partition on this node.
func (w *Worker) leader(partition uint32) (*processor.Leader, error) {
	if t := w.placed.Load(); t != nil && partition >= t.NumPartitions {
		return nil, fmt.Errorf("worker: no partition %d", partition)
	}
	w.procsMu.Lock()
	r := w.procs[partition]
	w.procsMu.Unlock()
	if r == nil {
		return nil, rpc.ErrNotLeader
	}
	l := r.proc.Leader()
	if l == nil {
		return nil, rpc.ErrNotLeader
	}
	return l, nil
}

// Invoke serves an ingress request on the leader of its partition.
func (w *Worker) Invoke(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
	l, err := w.leaderOf(req.Partition, req.InvocationID)
	if err != nil {
		return nil, err
	}
	return l.Invoke(ctx, req)
}

// Attach serves attach and output requests.
func (w *Worker) Attach(ctx context.Context, req *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	l, err := w.leaderOf(req.Partition, req.InvocationID)
	if err != nil {
		return nil, err
	}
	return l.Attach(ctx, req)
}

// Signal delivers a signal (awakeable completion, cancel) to an invocation.
func (w *Worker) Signal(ctx context.Context, req *rpc.SignalRequest) error {
	l, err := w.leaderOf(req.Partition, req.InvocationID)
	if err != nil {
		return err
	}
	return l.Signal(ctx, req)
}

// PatchState replaces an object's state; it returns once the patch is durable.
func (w *Worker) PatchState(ctx context.Context, req *rpc.PatchStateRequest) error {
	if t := w.placed.Load(); t != nil {
		if p := ids.PartitionOf(ids.PartitionKeyOf(req.Key), t.NumPartitions); p != req.Partition {
			return fmt.Errorf("%w: object %s/%s belongs to partition %d, not %d", rpc.ErrInvalidRequest, req.Service, req.Key, p, req.Partition)
		}
	}
	l, err := w.leader(req.Partition)
	if err != nil {
		return err
	}
	return l.PatchState(ctx, req)
}

// RestartAsNew starts a completed invocation again as a new one; it returns once the new
// invocation is durable.
func (w *Worker) RestartAsNew(ctx context.Context, req *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	l, err := w.leaderOf(req.Partition, req.InvocationID)
	if err != nil {
		return nil, err
	}
	reg := w.schema.Load()
	if d := req.Deployment; d != "" && d != rpc.RestartDeploymentLatest && d != rpc.RestartDeploymentKeep && reg.Deployment(d) == nil {
		reg = w.refreshSchema(ctx) // registered a moment ago, maybe, and not seen here yet
	}
	return l.RestartAsNew(ctx, req, reg)
}

// Manage applies cancel, kill or purge to an invocation.
func (w *Worker) Manage(ctx context.Context, req *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	l, err := w.leaderOf(req.Partition, req.InvocationID)
	if err != nil {
		return "", err
	}
	return l.Manage(ctx, req)
}
