package logstore

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metrics"
)

var (
	commitSeconds = promauto.With(metrics.Registry).NewHistogram(prometheus.HistogramOpts{
		Name:    "restate_log_server_commit_duration_seconds",
		Help:    "Duration of a log server's group commit: the write-ahead log append with its fsync, and the apply to goleveldb.",
		Buckets: metrics.LatencyBuckets,
	})
	walAppendSeconds = promauto.With(metrics.Registry).NewHistogram(prometheus.HistogramOpts{
		Name:    "restate_log_server_wal_append_duration_seconds",
		Help:    "Duration of a log server's write-ahead log append: the write and its fdatasync, the part of a group commit that waits for the disk (and, when the append starts a new WAL file, preparing that file).",
		Buckets: metrics.LatencyBuckets,
	})
	commitRequests = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_log_server_writes_total",
		Help: "Writes (stores, seals, trims) made durable by a log server's group commits.",
	})
	storeSize = metrics.NewDirSize("restate_log_server_store_size_bytes",
		"Bytes on disk of the log servers' stores (goleveldb and write-ahead log) in this process.")
)
