package main

import (
	"fmt"
	"time"

	"gorestate.dev/clusterharness/logcluster"
	"gorestate.dev/clusterharness/promtext"
)

// serverStats sums two of the log servers' histograms (from their /metrics): their group
// commits, and the write-ahead log appends inside them (the write and its fdatasync).
type serverStats struct {
	commits, commitSeconds float64
	walAppends, walSeconds float64
}

// The histograms, as logstore names them.
const (
	commitMetric    = "restate_log_server_commit_duration_seconds"
	walAppendMetric = "restate_log_server_wal_append_duration_seconds"
)

// sub is what a cell added. A server restarted within the cell would start its counters
// again (the differences go negative, meanOf reports 0); the bench never restarts one.
func (a serverStats) sub(b serverStats) serverStats {
	return serverStats{
		commits: a.commits - b.commits, commitSeconds: a.commitSeconds - b.commitSeconds,
		walAppends: a.walAppends - b.walAppends, walSeconds: a.walSeconds - b.walSeconds,
	}
}

// commitMean and walMean are the mean durations (0 without samples).
func (a serverStats) commitMean() time.Duration { return meanOf(a.commitSeconds, a.commits) }
func (a serverStats) walMean() time.Duration    { return meanOf(a.walSeconds, a.walAppends) }

func meanOf(seconds, n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(seconds / n * float64(time.Second))
}

// scrapeServers reads the histograms' sums and counts from every log server of c.
func scrapeServers(c *logcluster.Cluster) (serverStats, error) {
	var total serverStats
	for _, s := range c.Servers {
		m, err := promtext.Scrape(s.FabricURL + "/metrics")
		if err != nil {
			return serverStats{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		for _, f := range []struct {
			series string
			dst    *float64
		}{
			{commitMetric + "_count", &total.commits}, {commitMetric + "_sum", &total.commitSeconds},
			{walAppendMetric + "_count", &total.walAppends}, {walAppendMetric + "_sum", &total.walSeconds},
		} {
			v, ok := m.Sum(f.series)
			if !ok {
				return serverStats{}, fmt.Errorf("%s: no %s in its metrics (a logserverd older than this benchlog?)", s.Name, f.series)
			}
			*f.dst += v
		}
	}
	return total, nil
}
