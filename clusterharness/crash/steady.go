package crash

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// SteadyLoad runs a Workload without pause across faults of any process of a cluster:
// each worker re-sends its request with bounded backoff until it is acknowledged, as a
// client would, and only then issues the next. An outage therefore shows as a gap between
// acknowledgements rather than as a pile of abandoned requests, and every request cut off
// by a kill is re-sent with its idempotency key. It records when each acknowledgement
// arrived, to report the longest gap around a fault.
type SteadyLoad struct {
	w     *Workload
	phase atomic.Int64 // recorded as Op.AckedIn

	stopped atomic.Bool
	stop    chan struct{}
	wg      sync.WaitGroup

	mu   sync.Mutex
	acks []time.Time
}

// StartSteady starts w's workers; phase is what acknowledgements record as Op.AckedIn
// until SetPhase changes it. Names of requests start with tag, which must differ between
// loads of one Workload.
func (w *Workload) StartSteady(phase int, tag string) *SteadyLoad {
	l := &SteadyLoad{w: w, stop: make(chan struct{})}
	l.phase.Store(int64(phase))
	for worker := range w.Workers {
		l.wg.Go(func() { l.run(fmt.Sprintf("%s-w%d", tag, worker)) })
	}
	return l
}

func (l *SteadyLoad) run(name string) {
	for n := 0; !l.stopped.Load(); n++ {
		op := l.w.newOp(fmt.Sprintf("%s-%d", name, n))
		backoff := 20 * time.Millisecond
		for !l.stopped.Load() {
			if l.w.attempt(context.Background(), op, int(l.phase.Load())) {
				l.mu.Lock()
				l.acks = append(l.acks, time.Now())
				l.mu.Unlock()
				break
			}
			// Bounded backoff between attempts of one request; Stop cuts it short.
			select {
			case <-l.stop:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
		}
	}
}

// SetPhase sets what later acknowledgements record as Op.AckedIn (an incarnation number).
func (l *SteadyLoad) SetPhase(phase int) { l.phase.Store(int64(phase)) }

// Stop stops the workers and waits until each has seen the answer to its last attempt. A
// request left unacknowledged keeps its unknown outcome in the ledger (Workload.Drain).
func (l *SteadyLoad) Stop() {
	if l.stopped.Swap(true) {
		return
	}
	close(l.stop)
	l.wg.Wait()
}

// AckedSince counts the acknowledgements that arrived at or after t.
func (l *SteadyLoad) AckedSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.acks {
		if !a.Before(t) {
			n++
		}
	}
	return n
}

// WaitAcked waits until n acknowledgements arrived at or after t, or timeout passed; it
// reports whether they did.
func (l *SteadyLoad) WaitAcked(t time.Time, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for l.AckedSince(t) < n {
		if time.Now().After(deadline) {
			return false
		}
		// Polls the ledger of acknowledgements; the deadline bounds the wait.
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// LongestGap returns the longest time between two consecutive acknowledgements (of any
// worker) where the later one arrived after from and the earlier one before to, and when
// that gap began. A gap that spans a fault at time k is found with from = to = k.
func (l *SteadyLoad) LongestGap(from, to time.Time) (gap time.Duration, began time.Time) {
	l.mu.Lock()
	acks := slices.Clone(l.acks)
	l.mu.Unlock()
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(acks); i++ {
		if acks[i].Before(from) || acks[i-1].After(to) {
			continue
		}
		if d := acks[i].Sub(acks[i-1]); d > gap {
			gap, began = d, acks[i-1]
		}
	}
	return gap, began
}
