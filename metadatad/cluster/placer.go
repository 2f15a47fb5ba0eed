package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/liveness"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// KeyController is the lease of the active cluster controller.
const KeyController = "cluster_controller"

// controllerLease is the value of KeyController. The holder rewrites it every pass; a
// controller that sees its version stand still for leaseTimeout takes it over with a
// compare-and-set, so at most one controller places partitions at a time (and a
// controller that lost the lease learns so from its next failed renewal).
type controllerLease struct {
	Holder metadata.NodeID `json:"holder"`
}

// Placer is the cluster controller's partition placement: one per admin node, of which
// the one holding the lease acts. It keeps every partition's leader and followers on alive
// worker nodes in the partition table (see place).
type Placer struct {
	Store metadata.Store
	Self  metadata.NodeID
	// Members is the gossip view (nil until joined): which worker nodes are alive.
	Members func() *membership.Membership
	Logger  hclog.Logger
	// Interval is the time between passes (and lease renewals); LeaseTimeout is how long a
	// silent lease holder is waited for (unless the detector finds its node dead first).
	Interval, LeaseTimeout time.Duration
	// HeartbeatInterval and HeartbeatTimeout configure the fast failure detector
	// (package liveness) that watches the worker and admin nodes.
	HeartbeatInterval, HeartbeatTimeout time.Duration

	detector     *liveness.Detector
	lastFailover time.Time              // when a pass last replaced a lost leader
	lives        map[string]lifeSeen    // by node: its current life, when first seen
	emptySince   map[uint32]emptyLeader // partitions whose leader has applied nothing
	// applying holds the partitions whose placed leader (that life of that node) was seen
	// leading or having applied records: it is not asked again.
	applying map[uint32]emptyLeader
}

type lifeSeen struct {
	generation uint64
	at         time.Time
}

type emptyLeader struct {
	node       string
	generation uint64
	since      time.Time
}

// A placed leader whose processor has applied nothing while a follower has applied the log
// (a node back with an empty store: a wiped disk, its snapshots out of reach) cannot lead
// until it restored a snapshot, and a killed, wiped and restarted node comes back before the
// controller finds it dead, so it kept its leaderships: with the object store down its
// partitions had no leader at all (503) for as long as the store was down, beside caught-up
// followers. After emptyLeaderGrace the leadership goes to the most caught-up follower, and
// the node stays a follower that keeps restoring. Only the leaders of lives younger than
// youngLife are asked (a store is empty only at a processor's start), and only until they
// are seen leading or applying, so a settled cluster costs no requests, and a pass does not
// wait for the answers of a restarted node's partitions that are past their start.
const (
	emptyLeaderGrace = 3 * time.Second
	youngLife        = 2 * time.Minute
)

// balanceAfterFailover is how long balancing waits after a pass replaced a lost leader, so
// that a takeover in progress is not joined by more leadership moves.
const balanceAfterFailover = 5 * time.Second

// retryUnavailable is the pause before a controller tries again a write that found no
// metadata leader: one is usually elected within a few hundred milliseconds.
const retryUnavailable = 50 * time.Millisecond

// Defaults of Placer.
const (
	DefaultPlacementInterval = 500 * time.Millisecond
	DefaultLeaseTimeout      = 3 * time.Second
)

// Run places partitions until ctx ends.
func (pl *Placer) Run(ctx context.Context) {
	if pl.Interval <= 0 {
		pl.Interval = DefaultPlacementInterval
	}
	if pl.LeaseTimeout <= 0 {
		pl.LeaseTimeout = DefaultLeaseTimeout
	}
	if pl.Logger == nil {
		pl.Logger = hclog.NewNullLogger()
	}
	pl.detector = liveness.NewDetector(pl.HeartbeatInterval, pl.HeartbeatTimeout, pl.Logger.Named("liveness"))
	defer pl.detector.Close()
	wake := make(chan struct{}, 1)
	go pl.wakeOnMembership(ctx, wake)
	t := time.NewTicker(pl.Interval)
	defer t.Stop()
	var seen leaseSeen
	holding := false
	for {
		retry := false // a write failed for want of a metadata leader: try again soon
		// Every controller watches the nodes, so that one can take the lease over as soon
		// as the holder's node is known dead.
		nodes, nodesErr := pl.readNodes(ctx)
		if nodesErr == nil {
			pl.watch(nodes)
		}
		lease, version, err := pl.readLease(ctx)
		switch {
		case err != nil:
			seen.readErr = time.Now()
			pl.Logger.Debug("read controller lease", "error", err)
		case takesLease(pl.Self, lease, version, seen, pl.detector.Dead(lease.Holder.Name), time.Now(), pl.LeaseTimeout):
			// Ours to renew, free, or abandoned: take it (a lost race shows as a mismatch).
			if _, err := pl.writeLease(ctx, version); err == nil {
				if !holding && lease.Holder != pl.Self {
					args := []any{}
					if lease.Holder.Name != "" {
						args = append(args, "previous", lease.Holder.String())
					}
					pl.Logger.Info("acting as cluster controller", args...)
				}
				holding = true
				if nodesErr != nil {
					err = nodesErr
				} else {
					err = pl.pass(ctx, nodes)
				}
				if err != nil && ctx.Err() == nil {
					retry = errors.Is(err, metadata.ErrUnavailable)
					pl.Logger.Warn("partition placement", "error", err)
				}
			} else {
				retry = errors.Is(err, metadata.ErrUnavailable)
				if holding {
					pl.Logger.Info("no longer the cluster controller", "error", err)
					holding = false
				}
			}
		default:
			if version != seen.version {
				seen.version, seen.at = version, time.Now()
			}
			holding = false
		}
		var soon <-chan time.Time
		if retry {
			soon = time.After(retryUnavailable)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-soon:
		case <-wake:
		case <-pl.detector.Changed():
		}
	}
}

// leaseSeen is what a controller that does not hold the lease remembers of it.
type leaseSeen struct {
	version uint64    // the version last read
	at      time.Time // when that version was first read
	readErr time.Time // when a read last failed
}

// takesLease says whether the controller self takes (or renews) the lease it just read at
// version: its own, free, not renewed for timeout, or held by a node the failure detector
// finds dead (holderDead). A node that could not read the lease lately may have been the
// one cut off, and the detector's verdicts from then can outlive the heal by a probe's
// timeout: for timeout after a failed read, a dead verdict also wants the lease to have
// stood still since the last read (a renewal shows the holder alive).
func takesLease(self metadata.NodeID, lease controllerLease, version uint64, seen leaseSeen, holderDead bool, now time.Time, timeout time.Duration) bool {
	switch {
	case lease.Holder == self || version == 0:
		return true
	case version == seen.version && now.Sub(seen.at) >= timeout:
		return true
	}
	return holderDead && (version == seen.version || now.Sub(seen.readErr) >= timeout)
}

func (pl *Placer) wakeOnMembership(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		m := pl.Members()
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pl.Interval):
			}
			continue
		}
		events, cancel := m.Subscribe()
		for e := range events {
			if e.Kind == membership.EventJoined {
				// Gossip heard the node (again): a dead verdict of the detector may be stale,
				// reached while this node was the one cut off.
				pl.detector.Recheck(e.Member.Name)
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		cancel()
	}
}

func (pl *Placer) readLease(ctx context.Context) (controllerLease, uint64, error) {
	v, err := pl.Store.Get(ctx, KeyController)
	if errors.Is(err, metadata.ErrNotFound) {
		return controllerLease{}, 0, nil
	}
	if err != nil {
		return controllerLease{}, 0, err
	}
	var l controllerLease
	if err := json.Unmarshal(v.Value, &l); err != nil {
		return controllerLease{}, 0, fmt.Errorf("decode %s: %w", KeyController, err)
	}
	return l, v.Version, nil
}

func (pl *Placer) writeLease(ctx context.Context, version uint64) (uint64, error) {
	b, _ := json.Marshal(controllerLease{Holder: pl.Self})
	return pl.Store.Put(ctx, KeyController, b, version)
}

// pass reads the cluster, computes the placement and writes it if it changed.
func (pl *Placer) pass(ctx context.Context, nodes metadata.Nodes) error {
	tv, err := pl.Store.Get(ctx, metadata.KeyPartitionTable)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil // not provisioned yet
	}
	if err != nil {
		return err
	}
	var table metadata.PartitionTable
	if err := json.Unmarshal(tv.Value, &table); err != nil {
		return fmt.Errorf("decode partition table: %w", err)
	}
	replication := 1
	if cv, err := pl.Store.Get(ctx, metadata.KeyClusterConfig); err == nil {
		var cc metadata.ClusterConfig
		if err := json.Unmarshal(cv.Value, &cc); err == nil && cc.PartitionReplication > 0 {
			replication = cc.PartitionReplication
		}
	}
	workers := pl.aliveWorkers(nodes)
	hosts, err := pl.logHosts(ctx)
	if err != nil {
		return err
	}
	reports := &leaderReports{pl: pl, table: table, workers: workers, nodes: nodes}
	for p, h := range hosts {
		// A local segment that is trimmed whole no longer ties the partition to its node.
		if h.end > 0 {
			if ri, _ := reports.restore(ctx, p); ri != nil && ri.TrimPointLSN >= h.end {
				delete(hosts, p)
			}
		}
	}
	applied := pl.followersApplied(ctx, table, workers, nodes)
	current := pl.demoteEmptyLeaders(ctx, table, workers, nodes, reports, time.Now())
	for _, p := range table.Placement {
		if p.Leader != "" && !slices.Contains(workers, p.Leader) {
			pl.lastFailover = time.Now()
		}
	}
	canRead := func(p uint32, node string) bool {
		h, ok := hosts[p]
		return !ok || h.node == node || (h.node == "" && (int(p) >= len(table.Placement) || table.Placement[p].Leader == "" || table.Placement[p].Leader == node))
	}
	in := placementInput{
		noBalance: time.Since(pl.lastFailover) < balanceAfterFailover,
		current:   current, partitions: table.NumPartitions, workers: workers, replication: replication,
		applied: func(p uint32, node string) (uint64, bool) {
			lsn, ok := applied[p][node]
			return lsn, ok
		},
		canHost: canRead,
		whyNot: func(p uint32) string {
			if h, ok := hosts[p]; ok && h.node != "" && !slices.Contains(workers, h.node) {
				return fmt.Sprintf("the log's local segment is on node %s, which is not an alive worker: the partition waits for it (a snapshot and a trim of the log past the segment free the partition from it)", h.node)
			}
			return ""
		},
		caughtUp: func(p uint32, node string) bool { return reports.caughtUp(ctx, p, node) },
	}
	next := placeStartable(in, func(want map[uint32][]string) map[uint32]string { return reports.cannotStart(ctx, want) })
	if reflect.DeepEqual(next, table.Placement) {
		return nil
	}
	old := table.Placement
	table.Placement = next
	b, err := json.Marshal(table)
	if err != nil {
		return err
	}
	if _, err := pl.Store.Put(ctx, metadata.KeyPartitionTable, b, tv.Version); err != nil {
		return fmt.Errorf("write partition placement: %w", err)
	}
	for p := range next {
		var was metadata.PartitionPlacement
		if p < len(old) {
			was = old[p]
		}
		if !reflect.DeepEqual(was, next[p]) {
			pl.Logger.Info("partition placed", "partition", p, "leader", next[p].Leader, "followers", next[p].Followers,
				"was_leader", was.Leader, "was_followers", was.Followers, "under_replicated", next[p].UnderReplicated)
		}
	}
	return nil
}

func (pl *Placer) readNodes(ctx context.Context) (metadata.Nodes, error) {
	v, err := pl.Store.Get(ctx, metadata.KeyNodes)
	if errors.Is(err, metadata.ErrNotFound) {
		return metadata.Nodes{}, nil
	}
	if err != nil {
		return metadata.Nodes{}, err
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		return metadata.Nodes{}, fmt.Errorf("decode nodes configuration: %w", err)
	}
	return nodes, nil
}

// watch has the detector watch the worker and admin nodes.
func (pl *Placer) watch(nodes metadata.Nodes) {
	addrs := map[string]string{}
	for name, n := range nodes.Nodes {
		if slices.Contains(n.Roles, config.RoleWorker) || slices.Contains(n.Roles, config.RoleAdmin) {
			addrs[name] = n.Address
		}
	}
	pl.detector.SetNodes(addrs)
}

// aliveWorkers are the registered worker nodes whose current life gossip reports alive (or
// merely suspected) and that the fast detector does not know dead. Before the gossip is up
// every registered worker counts.
func (pl *Placer) aliveWorkers(nodes metadata.Nodes) []string {
	var m *membership.Membership
	if pl.Members != nil {
		m = pl.Members()
	}
	state := map[string]membership.State{}
	if m != nil {
		for _, mb := range m.Members() {
			if m.IsCurrent(mb.Name, mb.Generation) {
				state[mb.Name] = mb.State
			}
		}
	}
	var out, dead []string
	for name, n := range nodes.Nodes {
		if !slices.Contains(n.Roles, config.RoleWorker) {
			continue
		}
		if s, ok := state[name]; m == nil || (ok && (s == membership.StateAlive || s == membership.StateSuspect)) {
			if pl.detector.Dead(name) {
				dead = append(dead, name)
			} else {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		// The detector alone never empties the cluster: with no other worker to move to,
		// leaving the partitions without any leader cannot help.
		out = dead
	}
	slices.Sort(out)
	return out
}

// demoteEmptyLeaders returns the placement with the leadership of every partition whose
// leader has applied nothing for emptyLeaderGrace, while an alive follower has, given to
// the follower that applied the most; the old leader stays as a follower.
func (pl *Placer) demoteEmptyLeaders(ctx context.Context, table metadata.PartitionTable, workers []string, nodes metadata.Nodes, reports *leaderReports, now time.Time) []metadata.PartitionPlacement {
	if pl.lives == nil {
		pl.lives, pl.emptySince, pl.applying = map[string]lifeSeen{}, map[uint32]emptyLeader{}, map[uint32]emptyLeader{}
	}
	for _, w := range workers {
		if l, ok := pl.lives[w]; !ok || l.generation != nodes.Nodes[w].Generation {
			pl.lives[w] = lifeSeen{generation: nodes.Nodes[w].Generation, at: now}
		}
	}
	out, cloned := table.Placement, false
	for i, p := range table.Placement {
		id := uint32(i)
		life, ok := pl.lives[p.Leader]
		if !ok || !slices.Contains(workers, p.Leader) || now.Sub(life.at) > youngLife ||
			pl.applying[id] == (emptyLeader{node: p.Leader, generation: life.generation}) {
			delete(pl.emptySince, id)
			continue
		}
		st, ok := reports.state(ctx, p.Leader, id)
		if !ok {
			continue // no answer (or a processor between restarts): ask again next pass
		}
		if st.Mode == "leader" || st.AppliedLSN > 0 {
			// A processor's store empties only at its start: this life's is past that.
			pl.applying[id] = emptyLeader{node: p.Leader, generation: life.generation}
			delete(pl.emptySince, id)
			continue
		}
		e, ok := pl.emptySince[id]
		if !ok || e.node != p.Leader || e.generation != life.generation {
			pl.emptySince[id] = emptyLeader{node: p.Leader, generation: life.generation, since: now}
			continue
		}
		if now.Sub(e.since) < emptyLeaderGrace {
			continue
		}
		best, bestLSN := -1, uint64(0)
		for j, f := range p.Followers {
			if !slices.Contains(workers, f) {
				continue
			}
			if fs, ok := reports.state(ctx, f, id); ok && fs.Mode == "follower" && fs.AppliedLSN > bestLSN {
				best, bestLSN = j, fs.AppliedLSN
			}
		}
		if best < 0 {
			continue
		}
		if !cloned {
			out, cloned = slices.Clone(table.Placement), true
		}
		followers := slices.Clone(p.Followers)
		next := followers[best]
		followers[best] = p.Leader
		out[i] = metadata.PartitionPlacement{Leader: next, Followers: followers, UnderReplicated: p.UnderReplicated}
		pl.Logger.Warn("the partition's leader has applied nothing (an empty store it cannot restore yet): its leadership goes to a follower that applied the log",
			"partition", id, "leader", p.Leader, "applied", st.AppliedLSN, "new_leader", next, "new_leader_applied", bestLSN, "waited", now.Sub(e.since).Round(time.Millisecond))
		delete(pl.emptySince, id)
		pl.lastFailover = now // as after a failover: no balancing moves meanwhile
	}
	return out
}

// followersApplied asks the alive followers of partitions whose leader is gone how far they
// applied the log, when there are several to choose from; the answers that arrive within
// appliedTimeout count.
func (pl *Placer) followersApplied(ctx context.Context, table metadata.PartitionTable, workers []string, nodes metadata.Nodes) map[uint32]map[string]uint64 {
	ask := map[string]bool{}
	for _, p := range table.Placement {
		if slices.Contains(workers, p.Leader) {
			continue
		}
		alive := 0
		for _, f := range p.Followers {
			if slices.Contains(workers, f) {
				alive++
			}
		}
		if alive > 1 {
			for _, f := range p.Followers {
				ask[f] = true
			}
		}
	}
	if len(ask) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, appliedTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		out = map[uint32]map[string]uint64{}
		wg  sync.WaitGroup
	)
	for name := range ask {
		addr := nodes.Nodes[name].Address
		if addr == "" {
			continue
		}
		wg.Go(func() {
			states, err := fetchPartitions(ctx, http.DefaultClient, addr)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range states {
				if out[s.ID] == nil {
					out[s.ID] = map[string]uint64{}
				}
				out[s.ID][name] = s.AppliedLSN
			}
		})
	}
	wg.Wait()
	return out
}

// appliedTimeout bounds asking followers how far they applied: a takeover waits for it.
const appliedTimeout = 200 * time.Millisecond

// newReplicas lists, per partition, the nodes next places that cur does not.
// placeStartable places in, where a new replica can start. A new replica starts without a
// store: it reads the log from its start, or restores a snapshot that reaches the log's trim
// point; cannotStart says, of the partitions given new replicas, which cannot and why. Those
// keep the replicas they have. Placed again without them, the load differs, and other
// partitions may get new replicas that must be checked in turn: each round blocks at least
// one more partition or ends.
func placeStartable(in placementInput, cannotStart func(want map[uint32][]string) map[uint32]string) []metadata.PartitionPlacement {
	canHost, whyNot := in.canHost, in.whyNot
	next := place(in)
	blocked := map[uint32]string{}
	for {
		more := false
		for p, why := range cannotStart(newReplicas(in.current, next)) {
			if _, ok := blocked[p]; !ok {
				blocked[p], more = why, true
			}
		}
		if !more {
			return next
		}
		in.canHost = func(p uint32, node string) bool {
			_, isBlocked := blocked[p]
			return canHost(p, node) && (!isBlocked || (int(p) < len(in.current) && in.current[p].Has(node)))
		}
		in.whyNot = func(p uint32) string {
			if why := blocked[p]; why != "" || whyNot == nil {
				return why
			}
			return whyNot(p)
		}
		next = place(in)
	}
}

func newReplicas(cur, next []metadata.PartitionPlacement) map[uint32][]string {
	out := map[uint32][]string{}
	for p := range next {
		for _, node := range next[p].Replicas() {
			if p >= len(cur) || !cur[p].Has(node) {
				out[uint32(p)] = append(out[uint32(p)], node)
			}
		}
	}
	return out
}

// leaderReports asks the partitions' leaders what a new replica would need (rpc.RestoreInfo),
// each leader's node at most once per pass.
type leaderReports struct {
	pl      *Placer
	table   metadata.PartitionTable
	workers []string
	nodes   metadata.Nodes
	asked   map[string][]rpc.PartitionState // by leader node; nil: no answer
}

// restore is what partition p's leader reports, and the leader (nil and "" without a
// placed leader that is alive; nil and the leader when it does not know yet or did not
// answer within appliedTimeout).
func (r *leaderReports) restore(ctx context.Context, p uint32) (*rpc.RestoreInfo, string) {
	leader := r.table.LeaderOf(p)
	if leader == "" || !slices.Contains(r.workers, leader) {
		return nil, ""
	}
	if st, ok := r.state(ctx, leader, p); ok && st.Mode == "leader" {
		return st.Restore, leader
	}
	return nil, leader
}

// state is node's processor of partition p as node reports it.
func (r *leaderReports) state(ctx context.Context, node string, p uint32) (rpc.PartitionState, bool) {
	if r.asked == nil {
		r.asked = map[string][]rpc.PartitionState{}
	}
	states, ok := r.asked[node]
	if !ok {
		ctx, cancel := context.WithTimeout(ctx, appliedTimeout)
		defer cancel()
		var err error
		if states, err = fetchPartitions(ctx, http.DefaultClient, r.nodes.Nodes[node].Address); err != nil {
			r.pl.Logger.Debug("ask a worker about its partitions", "node", node, "error", err)
		}
		r.asked[node] = states
	}
	for _, st := range states {
		if st.ID == p {
			return st, true
		}
	}
	return rpc.PartitionState{}, false
}

// maxMoveLag is how far behind its leader a follower may be for a balancing move to give it
// the leadership: a follower still restoring a snapshot or catching up on a long log would
// leave the partition without a serving leader until it is done.
const maxMoveLag = 1000

// caughtUp reports whether node's follower of partition p has applied the log up to
// maxMoveLag records behind the leader. A follower that has applied nothing yet is still
// starting (restoring a snapshot, or about to replay the log), however short the log.
func (r *leaderReports) caughtUp(ctx context.Context, p uint32, node string) bool {
	leader := r.table.LeaderOf(p)
	if leader == "" || !slices.Contains(r.workers, leader) {
		return false
	}
	ls, ok := r.state(ctx, leader, p)
	if !ok || ls.Mode != "leader" {
		return false
	}
	fs, ok := r.state(ctx, node, p)
	return ok && fs.Mode == "follower" && fs.AppliedLSN+maxMoveLag >= ls.AppliedLSN && (fs.AppliedLSN > 0 || ls.AppliedLSN == 0)
}

// cannotStart says, for each partition in want that already has replicas, why a new
// replica could not start now: its leader reports a trim point no snapshot reaches, or it
// cannot be asked (dead, not answering, or still reading its log's state; a later pass asks
// again). A partition without any replica yet gets its first ones regardless: there is no
// better place for them, and the processor reports what it cannot restore.
func (r *leaderReports) cannotStart(ctx context.Context, want map[uint32][]string) map[uint32]string {
	out := map[uint32]string{}
	for p := range want {
		if int(p) >= len(r.table.Placement) || len(r.table.Placement[p].Replicas()) == 0 {
			continue
		}
		ri, leader := r.restore(ctx, p)
		switch {
		case leader == "":
			out[p] = "waiting for a leader to report how far the partition's log is trimmed"
		case ri == nil:
			out[p] = fmt.Sprintf("waiting for the leader (%s) to report how far the partition's log is trimmed", leader)
		case !ri.CanStart() && ri.SnapshotLSN == 0:
			out[p] = fmt.Sprintf("the log is trimmed up to LSN %d and there is no snapshot to start a new replica from (set [worker.snapshots] destination, then gorestatectl snapshots create)", ri.TrimPointLSN)
		case !ri.CanStart():
			out[p] = fmt.Sprintf("the log is trimmed up to LSN %d and the newest snapshot is at LSN %d: a new replica could not start from it", ri.TrimPointLSN, ri.SnapshotLSN)
		}
	}
	return out
}

// localHold is a partition's newest local segment: only node can read it ("" for chains
// from before segments named their node: the worker that wrote them). end is its last LSN
// when a later segment follows it (0 while it is the open tail).
type localHold struct {
	node string
	end  uint64
}

// logHosts maps each partition whose log has a local segment to that segment. Partitions
// whose logs are all replicated are absent.
func (pl *Placer) logHosts(ctx context.Context) (map[uint32]localHold, error) {
	v, err := pl.Store.Get(ctx, metadata.KeyLogs)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var logs metadata.Logs
	if err := json.Unmarshal(v.Value, &logs); err != nil {
		return nil, fmt.Errorf("decode logs: %w", err)
	}
	out := map[uint32]localHold{}
	for id, chain := range logs.Chains {
		for i, s := range chain {
			if s.Provider != bifrost.ProviderLocal && s.Provider != "" {
				continue
			}
			h := localHold{node: s.Node}
			if i+1 < len(chain) {
				if chain[i+1].BaseLSN == s.BaseLSN {
					continue // sealed empty: nothing to read there
				}
				h.end = chain[i+1].BaseLSN - 1
			}
			out[id] = h
		}
	}
	return out, nil
}
