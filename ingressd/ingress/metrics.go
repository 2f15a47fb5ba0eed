package ingress

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metrics"
)

var (
	requestsTotal = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "restate_ingress_requests_total",
		Help: "HTTP requests answered by the ingress, by status code.",
	}, []string{"status"})
	requestSeconds = promauto.With(metrics.Registry).NewHistogram(prometheus.HistogramOpts{
		Name:    "restate_ingress_request_duration_seconds",
		Help:    "Time from an ingress request's arrival to the end of its answer.",
		Buckets: metrics.LatencyBuckets,
	})
)

// statusRecorder remembers the status code a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func observeRequest(status int, start time.Time) {
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http answers 200
	}
	requestsTotal.WithLabelValues(strconv.Itoa(status)).Inc()
	requestSeconds.Observe(metrics.Since(start))
}
