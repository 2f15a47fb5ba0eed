package processor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metrics"
)

var (
	leaderships = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_partition_leader_changes_total",
		Help: "Partition leaderships taken up by processors on this node (each read its own announcement back).",
	})
	recordsApplied = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "restate_partition_records_applied_total",
		Help: "Log records applied by partition processors on this node, by mode (leader or follower).",
	}, []string{"mode"})
	// applyDelay is the replication delay as a replica sees it: from the moment a leader
	// stamped a record to the moment this replica applied it.
	applyDelay = promauto.With(metrics.Registry).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "restate_partition_apply_delay_seconds",
		Help:    "Time from a record's creation by its leader to its apply by a processor on this node, by mode (leader or follower).",
		Buckets: metrics.LatencyBuckets,
	}, []string{"mode"})
	invocationSeconds = promauto.With(metrics.Registry).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "restate_invocation_duration_seconds",
		Help:    "Time from an invocation's creation to its completion, per target handler and outcome (succeeded or failed), counted by the leader.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
	}, []string{"service", "handler", "outcome"})
)

// observeApplied records a committed batch of n records whose last one was stamped at
// stampedMs (0: unknown).
func observeApplied(leader bool, n int, stampedMs int64) {
	mode := ModeFollower
	if leader {
		mode = ModeLeader
	}
	recordsApplied.WithLabelValues(mode).Add(float64(n))
	if stampedMs > 0 {
		applyDelay.WithLabelValues(mode).Observe(max(0, time.Since(time.UnixMilli(stampedMs)).Seconds()))
	}
}

func observeCompleted(a ActCompleted) {
	outcome := "succeeded"
	if a.Result.Failed {
		outcome = "failed"
	}
	invocationSeconds.WithLabelValues(a.Service, a.Handler, outcome).Observe(float64(max(a.Millis, 0)) / 1000)
}
