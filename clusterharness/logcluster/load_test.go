package logcluster

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// ackLog collects what concurrent appenders saw.
type ackLog struct {
	mu        sync.Mutex
	acked     map[bifrost.Offset]string
	times     []time.Time // acknowledgement times, all appenders
	latencies []time.Duration
	errs      []error
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

// BIFROST.md §10 milestone 1: 3 log servers, r=2, 50 appenders; one server is SIGKILLed
// under load and restarted. No appender sees an error, and every acknowledged record reads
// back exactly once, in offset order, from readers on other nodes that each start with a
// different server, so that one of them must cross the holes the restarted server has
// (the sequencer skips a returning server to the global tail, it does not backfill it).
func TestKillAndRestartUnderLoad(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testCtx(t, 2*time.Minute)
	seg := c.Segment(1, 0, writer, 2)
	l := open(t, newProvider(t, writer, c.Network(), nil), seg)

	const (
		appenders = 50
		victim    = 1 // ls2
		phase     = 1500 * time.Millisecond
		minAcks   = 200 // per phase, so that a slow machine still loads every phase
	)
	log := &ackLog{acked: map[bifrost.Offset]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				payload := fmt.Sprintf("appender=%02d record=%06d", a, n)
				start := time.Now()
				off, err := l.Append(ctx, [][]byte{[]byte(payload)})
				end := time.Now()
				log.mu.Lock()
				if err != nil {
					log.errs = append(log.errs, fmt.Errorf("appender %d record %d: %w", a, n, err))
					log.mu.Unlock()
					return
				}
				if prev, dup := log.acked[off]; dup {
					log.errs = append(log.errs, fmt.Errorf("offset %d acknowledged for %q and %q", off, prev, payload))
				}
				log.acked[off] = payload
				log.times = append(log.times, end)
				log.latencies = append(log.latencies, end.Sub(start))
				log.mu.Unlock()
			}
		})
	}
	// Each phase lasts at least phase and until minAcks more records were acknowledged.
	runPhase := func(name string) {
		t.Helper()
		deadline := time.Now().Add(phase)
		target := log.count() + minAcks
		waitFor(t, ctx, "acknowledgements during "+name, func() bool {
			return time.Now().After(deadline) && log.count() >= target
		})
	}
	start := time.Now()
	runPhase("warm-up")
	killAt := time.Now()
	c.Kill(victim)
	runPhase("ls2 down")
	restartAt := time.Now()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	runPhase("after restart")
	close(stop)
	wg.Wait()
	loadEnd := time.Now()

	if len(log.errs) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(log.errs), log.errs[0])
	}
	var last bifrost.Offset
	for o := range log.acked {
		last = max(last, o)
	}
	tail := last + 1
	if len(log.acked) != int(last) {
		t.Fatalf("%d records acknowledged, highest offset %d: every offset below it should be", len(log.acked), last)
	}

	// Timing is reported, never asserted.
	slices.SortFunc(log.times, func(a, b time.Time) int { return a.Compare(b) })
	var stall time.Duration
	var stallEnd time.Time
	for i := 1; i < len(log.times); i++ {
		if g := log.times[i].Sub(log.times[i-1]); g > stall {
			stall, stallEnd = g, log.times[i]
		}
	}
	slices.Sort(log.latencies)
	pct := func(p float64) time.Duration { return log.latencies[int(p*float64(len(log.latencies)-1))] }
	rel := func(at time.Time) string { return at.Sub(start).Round(time.Millisecond).String() }
	t.Logf("%d records acknowledged by %d appenders in %v (%.0f/s); ls2 killed at %s, restart at %s, ready at %s (restart took %v)",
		len(log.acked), appenders, loadEnd.Sub(start).Round(time.Millisecond), float64(len(log.acked))/loadEnd.Sub(start).Seconds(),
		rel(killAt), rel(restartAt), rel(restarted), restarted.Sub(restartAt).Round(time.Millisecond))
	t.Logf("longest stall between acknowledgements: %v, ending at %s; append latency p50 %v, p99 %v, max %v",
		stall.Round(time.Microsecond), rel(stallEnd), pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond),
		log.latencies[len(log.latencies)-1].Round(time.Microsecond))

	// Servers skip to the global tail whenever they fall behind, so every one has holes;
	// the restarted one has a large one.
	for i := range c.Servers {
		_, entries, err := digest(ctx, c, i, seg.LogletID, 1, last)
		if err != nil {
			t.Fatalf("digest of %s: %v", c.Servers[i].Name, err)
		}
		held, next := 0, bifrost.Offset(1)
		var gapFrom, gapTo bifrost.Offset
		for _, e := range entries {
			held += int(e.To - e.From + 1)
			if e.From-next > gapTo-gapFrom {
				gapFrom, gapTo = next, e.From
			}
			next = e.To + 1
		}
		t.Logf("%s holds %d of %d records in %d runs; largest hole [%d, %d)", c.Servers[i].Name, held, last, len(entries), gapFrom, gapTo)
	}

	// Readers on other nodes: each starts with the log server of its own name.
	for _, name := range c.Names() {
		self := metadata.NodeID{Name: name, Generation: 1000}
		l := open(t, newProvider(t, self, c.Network(), nil), seg)
		recs := readRange(t, ctx, l, 1, tail)
		checkReadBack(t, log.acked, recs)
	}
}
