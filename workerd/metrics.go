package workerd

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metrics"
)

// workerMetrics reads the state of the workers in this process when scraped: partition
// progress and queue depths, and the invoker's slots. Usually one worker per process;
// in-process test clusters have several, told apart by the node label.
type workerMetrics struct {
	mu      sync.Mutex
	workers map[*Worker]struct{}
}

var (
	liveWorkers = &workerMetrics{workers: map[*Worker]struct{}{}}

	descApplied  = newDesc("restate_partition_applied_lsn", "The LSN up to which this node's processor of the partition applied the log.", "partition", "mode")
	descLag      = newDesc("restate_partition_lag_records", "Records of the partition's log that this node's processor knows of and has not applied yet.", "partition", "mode")
	descInbox    = newDesc("restate_partition_inbox_entries", "Invocations queued behind their virtual object's or workflow's lock, per partition (from the leader).", "partition")
	descPending  = newDesc("restate_partition_unfinished_invocations", "Invocations not completed yet, per partition (from the leader).", "partition")
	descInvoked  = newDesc("restate_partition_invoked_invocations", "Invocations in the invoked phase (running, suspended or backing off), per partition (from the leader).", "partition")
	descSegments = newDesc("restate_bifrost_log_segments", "Segments in the chain of the partition's virtual log (from the partition's leader).", "log")
	descRunning  = newDesc("restate_invoker_running_attempts", "Attempts holding one of the node's invocation slots.")
	descWaiting  = newDesc("restate_invoker_waiting_attempts", "Attempts waiting for an invocation slot of the node or of their deployment.")
	descTasks    = newDesc("restate_invoker_tasks", "Invocations the invoker drives (running, waiting for a slot or backing off).")
	descSlotWait = newDesc("restate_invoker_slot_waits_total", "Attempts that found every slot taken, by scope (node or deployment).", "scope")
)

var (
	snapshotsTotal = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "restate_partition_snapshots_total",
		Help: "Partition snapshots this node tried to publish, by outcome (published or failed).",
	}, []string{"outcome"})
	snapshotSeconds = promauto.With(metrics.Registry).NewHistogram(prometheus.HistogramOpts{
		Name:    "restate_partition_snapshot_duration_seconds",
		Help:    "Time to export and upload one published partition snapshot.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	})
	snapshotBytes = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_partition_snapshot_bytes_total",
		Help: "Bytes of the partition snapshots this node published.",
	})
)

func init() { metrics.Registry.MustRegister(liveWorkers) }

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"node"}, labels...), nil)
}

func (m *workerMetrics) add(w *Worker) {
	m.mu.Lock()
	m.workers[w] = struct{}{}
	m.mu.Unlock()
}

func (m *workerMetrics) remove(w *Worker) {
	m.mu.Lock()
	delete(m.workers, w)
	m.mu.Unlock()
}

func (m *workerMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSegments, descApplied, descLag, descInbox, descPending, descInvoked, descRunning, descWaiting, descTasks, descSlotWait} {
		ch <- d
	}
}

func (m *workerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	workers := make([]*Worker, 0, len(m.workers))
	for w := range m.workers {
		workers = append(workers, w)
	}
	m.mu.Unlock()
	for _, w := range workers {
		w.collect(ch)
	}
}

func (w *Worker) collect(ch chan<- prometheus.Metric) {
	node := w.cfg.NodeName
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{node}, labels...)...)
	}
	for _, p := range w.processors() {
		part, mode := strconv.FormatUint(uint64(p.Partition()), 10), p.Mode()
		applied, tail := p.Applied(), p.Tail()
		gauge(descApplied, float64(applied), part, mode)
		gauge(descLag, float64(max(int64(tail)-1-int64(applied), 0)), part, mode)
		if p.Leader() == nil {
			continue // followers hold the same queues: counted once, by the leader
		}
		inboxed, unfinished, invoked, err := w.db.Partition(p.Partition()).QueueDepths()
		if err != nil {
			w.log.Warn("metrics: count queued invocations", "partition", p.Partition(), "error", err)
			continue
		}
		if w.bifrost != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			chain, err := w.bifrost.Chain(ctx, p.Partition())
			cancel()
			if err == nil {
				gauge(descSegments, float64(len(chain)), part)
			}
		}
		gauge(descInbox, float64(inboxed), part)
		gauge(descPending, float64(unfinished), part)
		gauge(descInvoked, float64(invoked), part)
	}
	if w.inv == nil {
		return
	}
	st := w.inv.Stats()
	gauge(descRunning, float64(st.Running))
	gauge(descWaiting, float64(st.Waiting))
	gauge(descTasks, float64(st.Tasks))
	var depWaits uint64
	for _, n := range st.DeploymentSlotWaits {
		depWaits += n
	}
	ch <- prometheus.MustNewConstMetric(descSlotWait, prometheus.CounterValue, float64(st.NodeSlotWaits), node, "node")
	ch <- prometheus.MustNewConstMetric(descSlotWait, prometheus.CounterValue, float64(depWaits), node, "deployment")
}
