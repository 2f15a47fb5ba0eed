package raftstore

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/metadata"
)

// BenchmarkCASThreeMembers measures compare-and-set writes on a 3-member in-process
// cluster: each writer owns a key and runs a read-modify-write loop (local Get, then Put
// with the version read) through the member it is attached to, followers first and spread
// over all members, so a single writer goes through a follower and with many writers two
// thirds of the writes are forwarded. b.N is the total number of writes.
// Sub-benchmarks vary the writer count and raft's CommitTimeout (how soon followers learn
// that an entry committed, which bounds forwarded writes' latency): the store's default and
// raft's own default of 50ms.
func BenchmarkCASThreeMembers(b *testing.B) {
	for _, commit := range []time.Duration{0, 50 * time.Millisecond} {
		for _, writers := range []int{1, 16} {
			name := fmt.Sprintf("writers=%d/commit-timeout=%s", writers, commitName(commit))
			b.Run(name, func(b *testing.B) { benchCAS(b, writers, commit) })
		}
	}
}

func commitName(d time.Duration) string {
	if d == 0 {
		return "default(10ms)"
	}
	return d.String()
}

func benchCAS(b *testing.B, writers int, commit time.Duration) {
	c := newCluster(b, 3, func(o *Options) {
		// Production timings, but for the commit timeout under test.
		*o = Options{CommitTimeout: commit}
	})
	leader := c.waitLeader()
	// Followers first, so that a single writer measures a forwarded write.
	attach := append(c.followers(leader), leader)
	ctx := testCtx(b)

	var (
		next      atomic.Int64 // writes handed out so far
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		failures  []error
	)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		m := attach[w%len(attach)]
		key := fmt.Sprintf("bench-%d", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			defer func() {
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
			}()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				var expected uint64
				cur, err := m.store().Get(ctx, key)
				if err == nil {
					expected = cur.Version
				} else if !errors.Is(err, metadata.ErrNotFound) {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				if _, err := m.store().Put(ctx, key, []byte(t0.String()), expected); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(failures) > 0 {
		b.Fatalf("%d writes failed, first: %v", len(failures), failures[0])
	}
	slices.Sort(latencies)
	p99 := latencies[min(len(latencies)-1, len(latencies)*99/100)]
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
