package bifrost

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metrics"
)

// Metrics of the loglet providers, labelled by provider (ProviderLocal, ProviderReplicated).
// A loglet observes them itself: it knows when a batch was enqueued and when it became
// durable.
var (
	// AppendSeconds is the time from AppendAsync to the batch's commit, queueing and
	// backpressure included: what a writer waits.
	AppendSeconds = promauto.With(metrics.Registry).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "restate_bifrost_append_duration_seconds",
		Help:    "Time from an append to its commit (durable on this node's disk, or on a write quorum of log servers), per provider.",
		Buckets: metrics.LatencyBuckets,
	}, []string{"provider"})
	// CommitSeconds is the durable write itself: one group commit (write and fsync) of the
	// local loglet, one store round trip to a log server (which fsyncs before it answers)
	// of the replicated loglet.
	CommitSeconds = promauto.With(metrics.Registry).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "restate_bifrost_commit_duration_seconds",
		Help:    "Duration of one durable write: a local group commit (write and fsync) or a store on one log server, per provider.",
		Buckets: metrics.LatencyBuckets,
	}, []string{"provider"})
	// RecordsAppended and BytesAppended grow with every committed record: their rates are
	// the segments' growth.
	RecordsAppended = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "restate_bifrost_records_appended_total",
		Help: "Records appended on this node and committed, per provider.",
	}, []string{"provider"})
	BytesAppended = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "restate_bifrost_bytes_appended_total",
		Help: "Bytes of the records appended on this node and committed, per provider.",
	}, []string{"provider"})
	// Fsyncs counts the fsyncs of the local loglet's group commits.
	Fsyncs = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_bifrost_local_fsyncs_total",
		Help: "fsyncs of the local loglet (one per group commit and per rolled segment).",
	})
)
