package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/workerd/processor"
)

// running is a processor this node runs, with what stops it.
type running struct {
	proc   *processor.Processor
	cancel context.CancelFunc
	done   chan struct{}
}

// reclaimAfter is how long a processor that stepped down because a newer leader announced
// itself waits before it leads again while the placement still makes this node the leader.
// A leader placed by a newer table that this node has not seen yet is left alone that long,
// which is far longer than the table takes to arrive.
const reclaimAfter = 2 * time.Second

// followPlacement runs the processors that the partition table places on this node, as
// leader or follower as it says, and stops those it moves away, until ctx ends.
func (w *Worker) followPlacement(ctx context.Context) {
	go w.reclaimLeaderships(ctx)
	_ = metadata.Watch(ctx, w.meta, metadata.KeyPartitionTable, func(v metadata.Versioned) {
		var t metadata.PartitionTable
		if err := json.Unmarshal(v.Value, &t); err != nil {
			w.log.Error("decode the partition table", "version", v.Version, "error", err)
			return
		}
		w.reconcile(ctx, &t)
	})
	w.procsMu.Lock()
	procs := w.procs
	w.procs = nil
	w.procsMu.Unlock()
	for _, r := range procs {
		<-r.done // ctx ended: they stop by themselves
	}
}

// reclaimLeaderships has a processor lead again when it stepped down for a newer leader's
// announcement while the placement still makes this node the leader (reclaimAfter ago or
// longer): when the controller moves a leadership away and back quickly, the other node's
// claim can land in the log after this node's, and the partition would have no leader
// until the placement changed again.
func (w *Worker) reclaimLeaderships(ctx context.Context) {
	t := time.NewTicker(reclaimAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		table := w.placed.Load()
		if table == nil {
			continue
		}
		type deposed struct {
			r  *running
			at time.Time
		}
		var due []deposed
		w.procsMu.Lock()
		for p, r := range w.procs {
			role, placed := placedRole(table, p, w.cfg.NodeName)
			if at, ok := r.proc.Deposed(); placed && role == processor.RoleLeader && ok && time.Since(at) >= reclaimAfter {
				due = append(due, deposed{r, at})
			}
		}
		w.procsMu.Unlock()
		if len(due) == 0 {
			continue
		}
		// Only on the table as the metadata store has it now: a copy that fell behind (this
		// node cut off from the metadata servers) would take the leadership from a leader
		// placed since, in turn.
		fresh, err := w.freshTable(ctx)
		if err != nil {
			w.log.Debug("read the partition table before leading again", "error", err)
			continue
		}
		for _, d := range due {
			p := d.r.proc.Partition()
			// LeadAgain does nothing if the placement gave the processor a role meanwhile.
			if role, placed := placedRole(fresh, p, w.cfg.NodeName); placed && role == processor.RoleLeader && d.r.proc.LeadAgain(d.at) {
				w.log.Warn("a newer leader announced itself, but the placement still makes this node the leader: leading again", "partition", p)
			}
		}
	}
}

// freshTable reads the partition table from the metadata store, linearizably where the
// store can (a metadata server's own replica).
func (w *Worker) freshTable(ctx context.Context) (*metadata.PartitionTable, error) {
	ctx, cancel := context.WithTimeout(ctx, reclaimAfter)
	defer cancel()
	get := w.meta.Get
	if c, ok := w.meta.(metadata.ConsistentReader); ok {
		get = c.GetConsistent
	}
	return getJSON[metadata.PartitionTable](ctx, get, metadata.KeyPartitionTable)
}

// placedRole says what the placement asks of this node for partition p.
func placedRole(t *metadata.PartitionTable, p uint32, self string) (processor.Role, bool) {
	if int(p) >= len(t.Placement) {
		return 0, false
	}
	pl := t.Placement[p]
	switch {
	case pl.Leader == self:
		return processor.RoleLeader, true
	case slices.Contains(pl.Followers, self):
		return processor.RoleFollower, true
	}
	return 0, false
}

// reconcile makes the running processors match the placement.
func (w *Worker) reconcile(ctx context.Context, t *metadata.PartitionTable) {
	if len(t.Placement) == 0 {
		return // the cluster controller has not placed the partitions yet
	}
	prev := w.placed.Swap(t)
	for p := range t.NumPartitions {
		role, placed := placedRole(t, p, w.cfg.NodeName)
		// Only a change of the placed role is asked of a running processor: every new table
		// version asking again would make a leader that a newer leader's announcement just
		// deposed lead again at once, skipping the wait and the linearizable read of the
		// table that reclaimLeaderships does first.
		changed := true
		if prev != nil {
			prevRole, prevPlaced := placedRole(prev, p, w.cfg.NodeName)
			changed = !prevPlaced || prevRole != role
		}
		w.procsMu.Lock()
		r := w.procs[p]
		switch {
		case placed && r == nil:
			r = w.startProcessor(ctx, t, p, role)
			if w.procs == nil {
				w.procs = map[uint32]*running{}
			}
			w.procs[p] = r
		case placed:
			if changed {
				r.proc.SetRole(role)
			}
		case r != nil:
			delete(w.procs, p)
		}
		w.procsMu.Unlock()
		if placed && role == processor.RoleLeader {
			w.kickWatchdog(p)
		}
		if !placed && r != nil {
			w.log.Info("partition moved away from this node", "partition", p)
			r.cancel()
			<-r.done
		}
	}
}

// startProcessor starts partition p's processor in role. Called with procsMu held.
func (w *Worker) startProcessor(ctx context.Context, t *metadata.PartitionTable, p uint32, role processor.Role) *running {
	pctx, cancel := context.WithCancel(ctx)
	proc := processor.New(processor.Config{
		Partition: p, NumPartitions: t.NumPartitions,
		Store: w.db.Partition(p), Log: w.bifrost.Log(p), WriterLog: w.bifrost.WriterLog(p), Logs: w.logOf,
		Invoker: w.inv, Logger: w.log,
		ClaimEpoch: func(ctx context.Context, atLeast uint64) (uint64, error) {
			return metadata.ClaimEpoch(ctx, w.meta, p, w.self, atLeast)
		},
		Role: role, NodeName: w.cfg.NodeName, Restore: w.restoreHook(p),
	})
	r := &running{proc: proc, cancel: cancel, done: make(chan struct{})}
	w.log.Debug("starting partition processor", "partition", p, "role", role)
	go func() {
		defer close(r.done)
		const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
		backoff := minBackoff
		for pctx.Err() == nil {
			started, from := time.Now(), proc.Applied()
			err := proc.Run(pctx)
			if err == nil || pctx.Err() != nil {
				return
			}
			if errors.Is(err, processor.ErrIncompatible) {
				w.log.Error("partition processor stopped for good; it needs an operator", "partition", p, "error", err)
				return
			}
			if proc.Applied() > from || time.Since(started) >= maxBackoff {
				// It ran well before this failure (applied records, or ran for long): a new
				// failure, not the same one again. Waiting as long as for a processor that
				// keeps failing would leave a leader placed here stopped for up to 10s.
				backoff = minBackoff
			}
			// The store and the log are as the failed batch left them (a batch commits
			// whole or not at all): running again resumes after the last applied record.
			w.log.Error("partition processor stopped; restarting", "partition", p, "error", err, "retry_in", backoff)
			select {
			case <-pctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}()
	return r
}

// logOf is the log the shuffler appends to for partition p: in writer mode where this node
// leads p (its appends may seal and extend the chain), the plain log elsewhere (appends go
// to the sequencer of the leader's node).
func (w *Worker) logOf(p uint32) (bifrost.Log, error) {
	t := w.placed.Load()
	if t == nil || p >= t.NumPartitions {
		return nil, fmt.Errorf("no partition %d", p)
	}
	if w.leads(p) {
		return w.bifrost.WriterLog(p), nil
	}
	return w.bifrost.Log(p), nil
}

// leads reports whether the placement makes this node partition p's leader.
func (w *Worker) leads(p uint32) bool {
	t := w.placed.Load()
	return t != nil && t.LeaderOf(p) == w.cfg.NodeName
}

// waitLeading returns once a placement is known and every partition it makes this node
// lead has an active leader here.
func (w *Worker) waitLeading(ctx context.Context) error {
	logged := time.Now()
	for {
		if t := w.placed.Load(); t != nil {
			ready := true
			for p := range t.NumPartitions {
				if t.LeaderOf(p) != w.cfg.NodeName {
					continue
				}
				if _, err := w.leader(p); err != nil {
					ready = false
					break
				}
			}
			if ready {
				return nil
			}
		} else if time.Since(logged) > 5*time.Second {
			w.log.Info("waiting for the cluster controller to place the partitions")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
