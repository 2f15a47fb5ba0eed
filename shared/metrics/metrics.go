// Package metrics owns the process's Prometheus registry and the /metrics endpoint that
// every daemon serves on its fabric port. Components declare their own metrics with
// promauto.With(metrics.Registry) next to the code they measure; names carry the
// restate_ prefix and labels stay bounded (no invocation ids, keys or LSNs).
package metrics

import (
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the fabric listener serves the metrics.
const Path = "/metrics"

// Registry holds every metric of the process: a composite node runs several roles in one
// process and serves them all on one fabric port.
var Registry = newRegistry()

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Routes mounts Handler at Path.
func Routes(mux *http.ServeMux) { mux.Handle("GET "+Path, Handler()) }

// LatencyBuckets are the buckets of latency histograms, in seconds: 100 µs to 10 s, which
// covers an fsync on a fast disk up to a stalled quorum.
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Since returns the seconds elapsed since t, for Observe.
func Since(t time.Time) float64 { return time.Since(t).Seconds() }

// DirSize is a gauge of the bytes on disk under the directories of the stores open in
// this process (usually one), measured when scraped.
type DirSize struct {
	mu   sync.Mutex
	dirs map[string]int // dir -> how many opens
}

// NewDirSize registers a gauge called name.
func NewDirSize(name, help string) *DirSize {
	d := &DirSize{dirs: map[string]int{}}
	Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, d.bytes))
	return d
}

// Add counts dir until the returned function is called.
func (d *DirSize) Add(dir string) (remove func()) {
	d.mu.Lock()
	d.dirs[dir]++
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			if d.dirs[dir]--; d.dirs[dir] <= 0 {
				delete(d.dirs, dir)
			}
			d.mu.Unlock()
		})
	}
}

func (d *DirSize) bytes() float64 {
	d.mu.Lock()
	dirs := make([]string, 0, len(d.dirs))
	for dir := range d.dirs {
		dirs = append(dirs, dir)
	}
	d.mu.Unlock()
	var total int64
	for _, dir := range dirs {
		// Files come and go under a running store (compactions): skip what vanished.
		_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
			return nil
		})
	}
	return float64(total)
}
