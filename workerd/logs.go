package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// Timings of the log watchdog (BIFROST.md §6): it looks at every log this node writes once
// a second; reasons that leave the log writable (a changed provider or replication, a
// nodeset member down) must persist for reconfigureDelay so that one reconfiguration
// follows a burst of changes.
const (
	watchdogInterval = time.Second
	reconfigureDelay = 3 * time.Second
)

// clusterView is the worker's cached copy of the metadata objects that log placement needs.
type clusterView struct {
	mu     sync.Mutex
	nodes  metadata.Nodes
	config *metadata.ClusterConfig
}

func (v *clusterView) setNodes(b []byte) error {
	var n metadata.Nodes
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decode nodes configuration: %w", err)
	}
	v.mu.Lock()
	v.nodes = n
	v.mu.Unlock()
	return nil
}

func (v *clusterView) setConfig(b []byte) error {
	var c metadata.ClusterConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("decode cluster configuration: %w", err)
	}
	v.mu.Lock()
	v.config = &c
	v.mu.Unlock()
	return nil
}

// errConfigUnknown is the answer about the cluster configuration before it has been read.
var errConfigUnknown = errors.New("the cluster configuration has not been read from the metadata store yet")

// configWait bounds how long a restore waits for the cluster configuration to be read.
const configWait = 10 * time.Second

// waitConfig waits up to d for the cluster configuration to be read.
func (v *clusterView) waitConfig(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, ok := v.clusterConfig(); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errConfigUnknown
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polls the view the watch keeps
		}
	}
}

// fingerprint is the cluster's fingerprint, which the snapshot repository checks every
// snapshot against (empty for a cluster provisioned before fingerprints).
func (v *clusterView) fingerprint() (string, error) {
	c, ok := v.clusterConfig()
	if !ok {
		return "", errConfigUnknown
	}
	return c.Fingerprint, nil
}

// soleWorker reports whether node is the only worker node of the cluster (false until
// the nodes configuration has been read).
func (v *clusterView) soleWorker(node string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, n := range v.nodes.Nodes {
		if name != node && slices.Contains(n.Roles, config.RoleWorker) {
			return false
		}
	}
	_, ok := v.nodes.Nodes[node]
	return ok
}

// address resolves a node name to its fabric URL.
func (v *clusterView) address(node string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.nodes.Nodes[node]
	if !ok || n.Address == "" {
		return "", fmt.Errorf("node %s has no address in the nodes configuration", node)
	}
	return n.Address, nil
}

// gone reports whether a node life has been superseded (a newer generation registered).
func (v *clusterView) gone(id metadata.NodeID) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.nodes.Nodes[id.Name]
	return ok && n.Generation > id.Generation
}

// readWriteLogServers returns the log servers whose storage is read-write.
func (v *clusterView) readWriteLogServers() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for name, n := range v.nodes.Nodes {
		if n.LogStorage == metadata.StorageReadWrite {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// lostSegments returns, for every log server that lost segments (a wiped disk), which.
func (v *clusterView) lostSegments() map[string]metadata.Node {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]metadata.Node{}
	for name, n := range v.nodes.Nodes {
		if len(n.LostSegments) > 0 {
			out[name] = n
		}
	}
	return out
}

func (v *clusterView) clusterConfig() (metadata.ClusterConfig, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.config == nil {
		return metadata.ClusterConfig{}, false
	}
	return *v.config, true
}

// watchCluster keeps the view current until ctx ends.
func (w *Worker) watchCluster(ctx context.Context) {
	var wg sync.WaitGroup
	for key, set := range map[string]func([]byte) error{metadata.KeyNodes: w.view.setNodes, metadata.KeyClusterConfig: w.view.setConfig} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			metadata.Watch(ctx, w.meta, key, func(v metadata.Versioned) {
				if err := set(v.Value); err != nil {
					w.log.Error("metadata update", "key", key, "error", err)
				}
			})
		}()
	}
	wg.Wait()
}

// alive is the failure detector of the replicated loglets: gossip's view of a node, or
// "alive" while this node has no gossip yet or gossip has never heard of the node.
func (w *Worker) alive(node string) bool {
	m := w.members.Load()
	if m == nil {
		return true
	}
	w.aliveMu.Lock()
	defer w.aliveMu.Unlock()
	if time.Since(w.aliveAt) > 200*time.Millisecond {
		// Members copies the whole view: refresh at most five times a second, not per
		// store.
		w.aliveCache = map[string]bool{}
		for _, mb := range m.Members() {
			w.aliveCache[mb.Name] = mb.State == membership.StateAlive || mb.State == membership.StateSuspect
		}
		w.aliveAt = time.Now()
	}
	up, known := w.aliveCache[node]
	return up || !known
}

// newReplicatedProvider builds the replicated loglet provider of this node's life.
func (w *Worker) newReplicatedProvider() *replicated.Provider {
	w.network = wire.NewFabricNetwork(w.view.address)
	return replicated.NewProvider(replicated.Options{
		Self:    w.self,
		Network: w.network,
		Alive:   w.alive,
		Gone:    w.view.gone,
		Segment: func(ctx context.Context, logID, index uint32) (metadata.Segment, bool, error) {
			return w.bifrost.Segment(ctx, logID, index) // set before the sequencer service is served
		},
		Logger: w.log,
	})
}

// reconfigureLog builds the successor of a log's tail segment when this node's writer
// seals and extends the chain (the appender after a refused append, or the watchdog).
func (w *Worker) reconfigureLog(_ context.Context, logID uint32, prev metadata.Segment, sealedTail bifrost.LSN) (metadata.Segment, error) {
	plan, err := w.plan()
	if err != nil {
		return metadata.Segment{}, err
	}
	seg, err := plan.next(logID, prev, sealedTail, prev.Provider == "")
	if err != nil {
		return metadata.Segment{}, err
	}
	w.log.Info("new log segment", "log", logID, "after", prev.Index, "provider", seg.Provider, "base_lsn", sealedTail, "nodeset", nodesetOf(seg))
	return seg, nil
}

func nodesetOf(s metadata.Segment) []string {
	if s.Replicated == nil {
		return nil
	}
	return s.Replicated.Nodeset
}

func (w *Worker) plan() (logPlan, error) {
	c, ok := w.view.clusterConfig()
	if !ok {
		return logPlan{}, errors.New("the cluster configuration is not known yet")
	}
	var up, down []string
	for _, s := range w.view.readWriteLogServers() {
		if w.alive(s) {
			up = append(up, s)
		} else {
			down = append(down, s)
		}
	}
	return logPlan{config: c, self: w.self, logServers: up, standby: down, lost: w.view.lostSegments()}, nil
}

// runWatchdog checks every log this node writes once a second and has the writer seal and
// extend a chain whose tail segment should move: no segment yet, a sequencer that is not
// this node's life, a changed provider or replication. Each log has its own loop, so a
// reconfiguration that waits (too few log servers) does not hold up the others.
func (w *Worker) runWatchdog(ctx context.Context, logs []uint32) {
	var wg sync.WaitGroup
	for _, id := range logs {
		wg.Go(func() { w.watchLog(ctx, id) })
	}
	wg.Wait()
}

// watchdogKick returns the channel that wakes log id's watchdog before its next tick.
func (w *Worker) watchdogKick(id uint32) chan struct{} {
	w.kicksMu.Lock()
	defer w.kicksMu.Unlock()
	if w.kicks == nil {
		w.kicks = map[uint32]chan struct{}{}
	}
	ch := w.kicks[id]
	if ch == nil {
		ch = make(chan struct{}, 1)
		w.kicks[id] = ch
	}
	return ch
}

// kickWatchdog has log id's watchdog look at the log now: a partition placed on this node
// as its leader moves the log's sequencer here at once, not up to a tick later (its
// processor leads only once its log takes appends here).
func (w *Worker) kickWatchdog(id uint32) {
	select {
	case w.watchdogKick(id) <- struct{}{}:
	default:
	}
}

func (w *Worker) watchLog(ctx context.Context, id uint32) {
	var since time.Time // when a non-urgent reason was first seen; zero if none
	t := time.NewTicker(watchdogInterval)
	defer t.Stop()
	kick := w.watchdogKick(id)
	for {
		w.pinHeldSegments(ctx, id)
		// Only the leader's node reconfigures a log (it moves the sequencer to itself).
		if plan, err := w.plan(); err == nil && w.leads(id) {
			check := func(tail metadata.Segment) bool {
				reason, urgent := plan.reconfigureReason(id, tail)
				switch {
				case reason == "":
					since = time.Time{}
					return false
				case !urgent && since.IsZero():
					since = time.Now()
					return false
				case !urgent && time.Since(since) < reconfigureDelay:
					return false
				}
				w.log.Info("reconfiguring a log", "log", id, "segment", tail.Index, "reason", reason)
				return true
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			moved, err := w.bifrost.Watchdog(wctx, id, check)
			cancel()
			if err != nil && ctx.Err() == nil {
				w.log.Warn("log watchdog", "log", id, "error", err)
			}
			if moved {
				since = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// pinHeldSegments names this node in the chain as the holder of log id's local segments
// that name no node but whose records are on this node's disk (see
// bifrost.PinLocalSegment): once pinned, a partition whose leader's node is down waits for
// that node rather than have a node without the records lead it.
func (w *Worker) pinHeldSegments(ctx context.Context, id uint32) {
	for _, seg := range w.bifrost.CachedChain(id) {
		if (seg.Provider != bifrost.ProviderLocal && seg.Provider != "") || seg.Node != "" || !w.logs.Holds(seg.LogletID) {
			continue
		}
		// Bounded: the watchdog's reconfigurations must not wait on a metadata store that
		// does not answer; the next tick tries again.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.bifrost.PinLocalSegment(pctx, id, seg.Index, w.cfg.NodeName)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("log watchdog", "log", id, "error", err)
		}
	}
}

// logStates reports the open segment of every log this node writes, for the logs view of
// the cluster API.
func (w *Worker) logStates(ctx context.Context) []rpc.LogState {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var out []rpc.LogState
	for _, p := range w.processors() {
		id := p.Partition()
		if p.Leader() == nil {
			continue // written by the leader's node
		}
		st, ok, err := w.bifrost.State(ctx, id)
		if !ok && err == nil {
			continue // no segment yet
		}
		ls := rpc.LogState{LogID: id, Node: w.cfg.NodeName, SegmentIndex: st.Segment.Index,
			TailLSN: uint64(st.Tail), Sealed: st.Sealed, TrimPointLSN: uint64(st.TrimPoint)}
		if err != nil {
			ls.Error = err.Error()
		}
		out = append(out, ls)
	}
	return out
}

// logRoutes serves the logs view and the sequencers of this node's loglets.
func (w *Worker) logRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+rpc.LogsPath, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("content-type", "application/json")
		if err := json.NewEncoder(rw).Encode(w.logStates(r.Context())); err != nil {
			w.log.Debug("answer the logs view", "error", err) // the client went away
		}
	})
	w.sequencerHandler = wire.SequencerHandler(&w.sequencers)
	mux.Handle(wire.SequencerPath, w.sequencerHandler)
}

// SetIdentity tells the worker which life of its node it is (as RegisterNode stored it),
// before Start: replicated segments it creates name this life as their sequencer, so a
// restarted node never resumes its previous life's loglets.
func (w *Worker) SetIdentity(n metadata.Node) {
	w.self = metadata.NodeID{Name: n.Name, Generation: n.Generation}
}

// SetMembership gives the worker the gossip view, its failure detector for log servers.
func (w *Worker) SetMembership(m *membership.Membership) { w.members.Store(m) }

// sequencerService serves the Append and GetSequencerState requests of other nodes for
// the sequencers of this node, once the worker has started them.
type sequencerService struct {
	mu  sync.Mutex
	seq wire.Sequencer
}

func (s *sequencerService) set(seq wire.Sequencer) {
	s.mu.Lock()
	s.seq = seq
	s.mu.Unlock()
}

func (s *sequencerService) get() wire.Sequencer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

func (s *sequencerService) Append(ctx context.Context, req *wire.Append) (*wire.Appended, error) {
	if seq := s.get(); seq != nil {
		return seq.Append(ctx, req)
	}
	return &wire.Appended{Status: wire.StatusNotSequencer}, nil
}

func (s *sequencerService) GetSequencerState(ctx context.Context, req *wire.GetSequencerState) (*wire.SequencerState, error) {
	if seq := s.get(); seq != nil {
		return seq.GetSequencerState(ctx, req)
	}
	return &wire.SequencerState{Status: wire.StatusNotSequencer}, nil
}
