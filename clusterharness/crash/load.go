package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one logical request: one idempotency key, re-sent until the server acknowledges it.
// Only one goroutine at a time owns an Op, so its fields need no lock.
type Op struct {
	Key  string // Counter key
	Idem string // idempotency-key header, the same on every attempt
	n    int    // sequence number, which spreads requests over the ingresses

	Acked    bool
	Status   int    // status of the acknowledging answer
	Body     string // body of the acknowledging answer
	ID       string // x-restate-id of the acknowledging answer
	AckedIn  int    // incarnation that acknowledged it
	Attempts int
	LastErr  string // why the last unacknowledged attempt was not an acknowledgement

	// FirstSent is when the first attempt was sent, AckedAt when the acknowledging answer
	// had been read: an op acknowledged before another was first sent took effect before
	// it (see realTimeProblems).
	FirstSent, AckedAt time.Time
}

// Accept says whether an answer acknowledges an op; anything else leaves its outcome unknown.
type Accept func(status int, body string) bool

// Workload drives idempotent requests to POST {ingress}/Counter/{key}/{path} with body
// `1` (or to another object with another body: Service, Body) from a fixed number of
// workers, and keeps the ledger of every logical request.
type Workload struct {
	// Service is the virtual object the requests go to ("Counter" if empty); its shared
	// handler get must answer the number of requests that took effect on a key.
	Service string
	Body    string // the body of every request ("1" if empty)

	Ingress string
	// Ingresses, if set, replace Ingress: a request goes to one of them and each retry to
	// the next, as a client of a cluster fails over to another node's ingress. Set it before
	// the workers start, or with SetIngresses while they run.
	Ingresses []string
	ingMu     sync.RWMutex
	Path      string // "add" or "add/send"
	Keys      []string
	Workers   int
	Accept    Accept

	client   *http.Client
	seq      atomic.Int64 // logical requests created, for key choice and naming
	inflight atomic.Int64 // HTTP requests between send and answer

	mu  sync.Mutex
	ops []*Op
}

// NewWorkload returns a workload with its own connection pool, sized so that workers do not
// churn connections (the default pool keeps two idle connections per host).
func NewWorkload(ingress, path string, keys []string, workers int, accept Accept) *Workload {
	return &Workload{
		Ingress: ingress,
		Path:    path,
		Keys:    keys,
		Workers: workers,
		Accept:  accept,
		client: &http.Client{
			// Long enough for an attached retry to wait out recovery, short enough that a
			// request lost in a dead connection does not hold up the test.
			Timeout:   15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 2 * workers, MaxConnsPerHost: 4 * workers},
		},
	}
}

// CycleStats describes one load phase ended by a kill.
type CycleStats struct {
	Started        int           // logical requests created in this phase
	Retried        int           // unacknowledged requests of earlier phases re-sent in this phase
	Acked          int           // logical requests acknowledged in this phase
	InflightAtKill int64         // HTTP requests awaiting an answer just after SIGKILL was sent
	Unknown        int           // logical requests unacknowledged at the end of the phase
	FirstAck       time.Duration // from the phase's start to its first acknowledgement
	Duration       time.Duration
}

// RunAndKill runs the workers against incarnation inc of srv: each first re-sends the
// unacknowledged requests of earlier phases, then issues new ones. After loadFor, and once
// this phase has acknowledged at least one request (so every phase shows the restarted
// server works), it SIGKILLs the server while requests are in flight and returns when
// every worker has seen its last answer or error.
func (w *Workload) RunAndKill(srv *Server, inc int, loadFor time.Duration) (CycleStats, error) {
	start := time.Now()
	pending := w.Unacked()
	queue := make(chan *Op, len(pending))
	for _, op := range pending {
		queue <- op
	}
	close(queue)

	var stopped atomic.Bool
	var started, retried, acked atomic.Int64
	var firstAck atomic.Int64 // nanoseconds since start; 0 until the first acknowledgement
	var wg sync.WaitGroup
	for worker := range w.Workers {
		wg.Go(func() {
			for n := 0; !stopped.Load(); {
				op, ok := <-queue
				if ok {
					retried.Add(1)
				} else {
					op = w.newOp(fmt.Sprintf("i%d-w%d-%d", inc, worker, n))
					n++
					started.Add(1)
				}
				if w.attempt(context.Background(), op, inc) {
					acked.Add(1)
					firstAck.CompareAndSwap(0, int64(time.Since(start)))
				}
			}
		})
	}

	ackDeadline := start.Add(loadFor + startTimeout)
	for time.Since(start) < loadFor || acked.Load() == 0 {
		if time.Now().After(ackDeadline) {
			stopped.Store(true)
			srv.Kill()
			wg.Wait()
			return CycleStats{}, fmt.Errorf("incarnation %d acknowledged nothing in %v", inc, time.Since(start))
		}
		// Polls the clock and the ack counter; the deadline above bounds the wait.
		time.Sleep(10 * time.Millisecond)
	}
	// The workers keep going until the signal is out, so requests are in flight when it
	// lands; they stop right after, so that few requests start against the dead port.
	var inflight int64
	srv.KillThen(func() {
		inflight = w.inflight.Load()
		stopped.Store(true)
	})
	wg.Wait()
	// Pooled connections point at the dead process.
	w.client.CloseIdleConnections()
	return CycleStats{
		Started:        int(started.Load()),
		Retried:        int(retried.Load()),
		Acked:          int(acked.Load()),
		InflightAtKill: inflight,
		Unknown:        len(w.Unacked()),
		FirstAck:       time.Duration(firstAck.Load()),
		Duration:       time.Since(start),
	}, nil
}

// Drain re-sends every unacknowledged request, from all workers, until each is
// acknowledged or the deadline passes. It returns how many attempts it made.
func (w *Workload) Drain(inc int, deadline time.Time) int {
	pending := w.Unacked()
	queue := make(chan *Op, len(pending))
	for _, op := range pending {
		queue <- op
	}
	close(queue)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var attempts atomic.Int64
	var wg sync.WaitGroup
	for range w.Workers {
		wg.Go(func() {
			for op := range queue {
				backoff := 20 * time.Millisecond
				for ctx.Err() == nil {
					attempts.Add(1)
					if w.attempt(ctx, op, inc) {
						break
					}
					// Bounded backoff between retries of one request, as a client would.
					select {
					case <-ctx.Done():
					case <-time.After(backoff):
					}
					backoff = min(2*backoff, 500*time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return int(attempts.Load())
}

func (w *Workload) newOp(name string) *Op {
	n := w.seq.Add(1) - 1
	op := &Op{Key: w.Keys[int(n)%len(w.Keys)], Idem: strings.ReplaceAll(w.Path, "/", "-") + "-" + name, n: int(n)}
	w.mu.Lock()
	w.ops = append(w.ops, op)
	w.mu.Unlock()
	return op
}

// attempt sends op once and records the outcome; it reports whether op is now acknowledged.
func (w *Workload) attempt(ctx context.Context, op *Op, inc int) bool {
	op.Attempts++
	if op.FirstSent.IsZero() {
		op.FirstSent = time.Now()
	}
	resp, err := w.send(ctx, op)
	if err != nil {
		// The URL in a *url.Error is the same for every attempt on a key; without it the
		// reasons group in reports.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		op.LastErr = err.Error()
		return false
	}
	if !w.Accept(resp.Status, resp.Body) {
		op.LastErr = fmt.Sprintf("%d %s", resp.Status, resp.Body)
		return false
	}
	op.Acked, op.Status, op.Body, op.ID, op.AckedIn, op.LastErr = true, resp.Status, resp.Body, resp.ID, inc, ""
	op.AckedAt = time.Now()
	return true
}

// Answer is an HTTP answer to one attempt.
type Answer struct {
	Status int
	Body   string
	ID     string // x-restate-id
}

func (w *Workload) send(ctx context.Context, op *Op) (*Answer, error) {
	body := w.Body
	if body == "" {
		body = "1"
	}
	return w.Post(ctx, w.ingressFor(op)+"/"+w.service()+"/"+op.Key+"/"+w.Path, body, map[string]string{"idempotency-key": op.Idem})
}

func (w *Workload) service() string {
	if w.Service == "" {
		return "Counter"
	}
	return w.Service
}

// ingressFor is the ingress of op's current attempt.
func (w *Workload) ingressFor(op *Op) string {
	w.ingMu.RLock()
	defer w.ingMu.RUnlock()
	if len(w.Ingresses) == 0 {
		return w.Ingress
	}
	return w.Ingresses[(op.n+op.Attempts)%len(w.Ingresses)]
}

// SetIngresses replaces Ingress and Ingresses while the workers run (a node restarted in a
// container comes back on another host port).
func (w *Workload) SetIngresses(ingress string, all []string) {
	w.ingMu.Lock()
	defer w.ingMu.Unlock()
	w.Ingress, w.Ingresses = ingress, all
}

// Post sends a JSON POST through the workload's pool and counts it as in flight until
// the answer has been read.
func (w *Workload) Post(ctx context.Context, url, body string, headers map[string]string) (*Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	return &Answer{Status: resp.StatusCode, Body: buf.String(), ID: resp.Header.Get("x-restate-id")}, nil
}

// Ops returns every logical request issued so far.
func (w *Workload) Ops() []*Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Op(nil), w.ops...)
}

// Unacked returns the logical requests whose outcome is still unknown.
func (w *Workload) Unacked() []*Op {
	var out []*Op
	for _, op := range w.Ops() {
		if !op.Acked {
			out = append(out, op)
		}
	}
	return out
}

// PerKey groups the logical requests by Counter key.
func (w *Workload) PerKey() map[string][]*Op {
	out := make(map[string][]*Op)
	for _, op := range w.Ops() {
		out[op.Key] = append(out[op.Key], op)
	}
	return out
}

// SortedKeys returns the keys of m in order, so failure reports are stable.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
