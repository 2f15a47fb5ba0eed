package crash

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Reads reads the Counter values of a Workload's keys (its shared handler get) through the
// workload's ingresses while the workload and the faults run, and checks each value against
// real time: it counts at least every add acknowledged before the read was sent and at most
// every add first sent before its answer arrived. A read below that is stale: served from
// a copy of the state that misses an acknowledged add (a deposed leader, records lost);
// above it, an add took effect before anyone sent it.
type Reads struct {
	w       *Workload
	stopped atomic.Bool
	wg      sync.WaitGroup

	mu    sync.Mutex
	reads []read
	fails int
}

type read struct {
	key            string
	sent, answered time.Time
	value          int
}

// StartReads starts workers readers of w's keys, each reading one key after another
// through the next ingress.
func (w *Workload) StartReads(workers int) *Reads {
	r := &Reads{w: w}
	for i := range workers {
		r.wg.Go(func() {
			for n := i; !r.stopped.Load(); n += workers {
				r.readOnce(w.Keys[n%len(w.Keys)], n)
			}
		})
	}
	return r
}

func (r *Reads) readOnce(key string, n int) {
	ing := r.w.ingressFor(&Op{n: n})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ing+"/"+r.w.service()+"/"+key+"/get", nil)
	if err != nil {
		panic(err) // the URL is ours
	}
	sent := time.Now()
	resp, err := r.w.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	answered := time.Now()
	v, convErr := strconv.Atoi(string(body))
	ok := err == nil && resp.StatusCode == http.StatusOK && convErr == nil
	r.mu.Lock()
	if ok {
		r.reads = append(r.reads, read{key: key, sent: sent, answered: answered, value: v})
	} else {
		r.fails++
	}
	r.mu.Unlock()
	if !ok {
		// A dead or frozen ingress: back off a little rather than spin on it.
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the readers and waits for their last reads.
func (r *Reads) Stop() {
	r.stopped.Store(true)
	r.wg.Wait()
}

// Check compares every answered read with the workload's ledger; call it once the
// workload's load stopped. It returns the reads answered, those that failed, and at most
// a few problems.
func (r *Reads) Check() (answered, failed int, problems []string) {
	r.Stop()
	// Per key, when its adds were acknowledged and first sent, sorted: a read's bounds are
	// how many of each came before it.
	acked, sent := map[string][]time.Time{}, map[string][]time.Time{}
	for _, op := range r.w.Ops() {
		if op.Acked {
			acked[op.Key] = append(acked[op.Key], op.AckedAt)
		}
		if !op.FirstSent.IsZero() {
			sent[op.Key] = append(sent[op.Key], op.FirstSent)
		}
	}
	for _, m := range []map[string][]time.Time{acked, sent} {
		for _, ts := range m {
			slices.SortFunc(ts, time.Time.Compare)
		}
	}
	before := func(ts []time.Time, t time.Time) int {
		n, _ := slices.BinarySearchFunc(ts, t, time.Time.Compare)
		return n
	}
	for _, rd := range r.reads {
		lo, hi := before(acked[rd.key], rd.sent), before(sent[rd.key], rd.answered)
		if (rd.value < lo || rd.value > hi) && len(problems) < 5 {
			problems = append(problems, fmt.Sprintf("key %s read %d, sent %s answered %s: %d adds were acknowledged before it was sent and %d sent before its answer",
				rd.key, rd.value, rd.sent.Format("15:04:05.000000"), rd.answered.Format("15:04:05.000000"), lo, hi))
		}
	}
	return len(r.reads), r.fails, problems
}

// CheckReads fails the test if a read was out of real-time order, or if none was answered.
func CheckReads(t testing.TB, r *Reads) {
	t.Helper()
	answered, failed, problems := r.Check()
	if len(problems) > 0 {
		t.Fatalf("reads out of real-time order:\n%s", strings.Join(problems, "\n"))
	}
	if answered == 0 {
		t.Fatalf("no read answered (%d failed)", failed)
	}
	t.Logf("%d reads each counted every add acknowledged before it and none not yet sent (%d reads failed)", answered, failed)
}
