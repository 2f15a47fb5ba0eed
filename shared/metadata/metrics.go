package metadata

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metrics"
)

var (
	opsTotal = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "restate_metadata_operations_total",
		Help: "Operations of the metadata store on this node (get, get-consistent, put, watch), by outcome.",
	}, []string{"op", "outcome"})
	opSeconds = promauto.With(metrics.Registry).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "restate_metadata_operation_duration_seconds",
		Help:    "Duration of the metadata store operations on this node (gets and compare-and-set puts).",
		Buckets: metrics.LatencyBuckets,
	}, []string{"op"})
)

// ObserveOp records one operation of a metadata store serving this node's requests and
// its peers' (Get, Put, WaitNewer, GetConsistent); use it deferred, with the address of
// the operation's error. Watches are counted, not timed, and a watch that ran out of time
// without a newer version is no outcome.
func ObserveOp(op string, start time.Time, errp *error) {
	err := *errp
	outcome := "ok"
	switch {
	case err == nil:
	case op == "watch" && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return
	case errors.Is(err, ErrNotFound):
		outcome = "not-found"
	case errors.Is(err, ErrVersionMismatch):
		outcome = "conflict"
	case errors.Is(err, ErrClosed), errors.Is(err, ErrUnavailable):
		outcome = "unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		outcome = "timeout"
	default:
		outcome = "error"
	}
	opsTotal.WithLabelValues(op, outcome).Inc()
	if !start.IsZero() {
		opSeconds.WithLabelValues(op).Observe(metrics.Since(start))
	}
}
