// Package invoker owns the runtime side of the Restate service protocol: it runs invocation
// attempts against SDK deployments over HTTP/2, turns what the SDK sends into log records
// (invoker effects), streams notifications back, and retries failed attempts with the
// service's retry policy.
package invoker

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
)

// Options configures the invoker.
type Options struct {
	// Schema returns the newest known schema.
	Schema func() *schema.Registry
	// RefreshSchema, if set, reads the schema from the metadata store: an attempt whose
	// service or deployment the cached schema lacks (registered a moment ago, the cache not
	// updated yet) asks once before failing.
	RefreshSchema func(ctx context.Context) *schema.Registry
	// HTTPClient talks h2c to deployments.
	HTTPClient *http.Client
	// InactivityTimeout closes the request stream of an attempt that exchanged nothing for
	// this long, so the SDK suspends. AbortTimeout fails an attempt that has not ended this
	// long after its request stream was closed.
	InactivityTimeout time.Duration
	AbortTimeout      time.Duration
	// RetryPolicy retries attempts that fail before their service's own policy is known
	// (the service is not in the schema): the node's [default-retry-policy]. The zero value
	// means schema.DefaultRetryPolicy.
	RetryPolicy schema.RetryPolicy
	// DisableEagerState sends no state with the StartMessage: the SDK reads state lazily.
	DisableEagerState bool
	// MaxMessageSize bounds one protocol message from a deployment.
	MaxMessageSize uint32
	// ConcurrencyLimit bounds concurrently running attempts on this node.
	ConcurrencyLimit int
	// DeploymentConcurrencyLimit bounds the concurrently running attempts against one
	// deployment (default: half of ConcurrencyLimit). Attempts beyond it queue for their
	// deployment without holding a node slot, so a deployment that hangs cannot take every
	// slot of the node.
	DeploymentConcurrencyLimit int
	NodeName                   string
	Logger                     hclog.Logger
}

// Invoker runs attempts for every partition this node leads.
type Invoker struct {
	opts Options
	log  hclog.Logger
	sem  chan struct{}

	depMu  sync.Mutex
	depSem map[string]chan struct{} // per deployment id, created on first use
	stats  Stats                    // guarded by depMu
	// pressure is closed (and forgotten) when an attempt starts waiting for a slot, and
	// waiting counts the attempts waiting now: see PressureIdleTimeout. pressure is guarded
	// by depMu.
	pressure chan struct{}
	waiting  atomic.Int64

	mu    sync.Mutex
	tasks map[string]*task // by partition + invocation id
	// aborted holds tasks cut short by Abort until a new task of the same invocation has
	// waited for them, so that runs of one invocation never overlap.
	aborted map[string]*task
	// paused holds the progress of invocations paused while they waited to retry, by task
	// key, until they resume (a new task goes on from it), are killed or the partition's
	// leadership ends: Restate's invoker keeps them, and sys_invocation shows them.
	paused map[string]Progress
}

// New creates an invoker.
func New(opts Options) *Invoker {
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 32 << 20
	}
	if opts.ConcurrencyLimit <= 0 {
		opts.ConcurrencyLimit = 1000
	}
	if opts.RetryPolicy == (schema.RetryPolicy{}) {
		opts.RetryPolicy = schema.DefaultRetryPolicy()
	}
	if opts.DeploymentConcurrencyLimit <= 0 {
		opts.DeploymentConcurrencyLimit = max(opts.ConcurrencyLimit/2, 1)
	}
	return &Invoker{
		opts:    opts,
		log:     opts.Logger.Named("invoker"),
		sem:     make(chan struct{}, opts.ConcurrencyLimit),
		depSem:  map[string]chan struct{}{},
		stats:   Stats{DeploymentSlotWaits: map[string]uint64{}},
		tasks:   map[string]*task{},
		aborted: map[string]*task{},
		paused:  map[string]Progress{},
	}
}

// Stats count the attempts that had to wait for a slot since the invoker started.
type Stats struct {
	// Running: attempts holding a slot of the node now. Waiting: attempts waiting for a
	// slot now. Tasks: invocations the invoker drives now (running, waiting or backing off).
	Running, Waiting, Tasks int
	// NodeSlotWaits: attempts that found every slot of the node taken.
	NodeSlotWaits uint64
	// DeploymentSlotWaits: attempts that found every slot of their deployment taken, by
	// deployment id.
	DeploymentSlotWaits map[string]uint64
}

// Stats returns a copy of the invoker's counters.
func (inv *Invoker) Stats() Stats {
	inv.depMu.Lock()
	out := Stats{NodeSlotWaits: inv.stats.NodeSlotWaits, DeploymentSlotWaits: make(map[string]uint64, len(inv.stats.DeploymentSlotWaits)),
		Running: len(inv.sem), Waiting: int(inv.waiting.Load())}
	for id, n := range inv.stats.DeploymentSlotWaits {
		out.DeploymentSlotWaits[id] = n
	}
	inv.depMu.Unlock()
	inv.mu.Lock()
	out.Tasks = len(inv.tasks)
	inv.mu.Unlock()
	return out
}

// PressureIdleTimeout is how long an attempt may wait without any exchange while other
// attempts wait for a slot: then its request stream is closed so that the SDK suspends and
// the slot goes to them. Invocations that wait on each other (a call to an object whose
// turn needs a slot, an awakeable that another invocation resolves) would otherwise hold
// every slot until the inactivity timeout. The attempt's own inactivity timeout applies if
// it is shorter.
const PressureIdleTimeout = 100 * time.Millisecond

// pressureSignal returns a channel that is closed when an attempt next has to wait for a
// slot, and whether some wait already.
func (inv *Invoker) pressureSignal() (<-chan struct{}, bool) {
	inv.depMu.Lock()
	defer inv.depMu.Unlock()
	if inv.pressure == nil {
		inv.pressure = make(chan struct{})
	}
	return inv.pressure, inv.waiting.Load() > 0
}

// signalPressureLocked counts one more attempt waiting for a slot (the caller takes it off
// when the wait ends) and tells the running attempts (depMu held). Counting under depMu,
// before the signal, means a watchdog that takes the next channel sees the count.
func (inv *Invoker) signalPressureLocked() {
	inv.waiting.Add(1)
	if inv.pressure != nil {
		close(inv.pressure)
		inv.pressure = nil
	}
}

// nodeSlot takes an attempt slot of the node, waiting until one is free or ctx ends.
func (inv *Invoker) nodeSlot(ctx context.Context) error {
	select {
	case inv.sem <- struct{}{}:
		return nil
	default:
	}
	inv.depMu.Lock()
	inv.stats.NodeSlotWaits++
	inv.signalPressureLocked()
	inv.depMu.Unlock()
	defer inv.waiting.Add(-1)
	select {
	case inv.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deploymentSem returns the slots of a deployment.
func (inv *Invoker) deploymentSem(id string) chan struct{} {
	inv.depMu.Lock()
	defer inv.depMu.Unlock()
	ch := inv.depSem[id]
	if ch == nil {
		ch = make(chan struct{}, inv.opts.DeploymentConcurrencyLimit)
		inv.depSem[id] = ch
	}
	return ch
}

func taskKey(partition uint32, id []byte) string {
	return string([]byte{byte(partition >> 24), byte(partition >> 16), byte(partition >> 8), byte(partition)}) + string(id)
}

// Invoke starts an attempt, or asks the running task to start a new attempt when its current
// one ends (a resumption that raced with the attempt's end).
func (inv *Invoker) Invoke(l processor.Leadership, id []byte) {
	inv.start(l, id, false)
}

// Resume starts a task for an invocation that was running under the previous leader, once
// an attempt slot is free; the task's first attempt uses that slot. An invocation that has
// a task already is left to it.
func (inv *Invoker) Resume(l processor.Leadership, id []byte) {
	select {
	case inv.sem <- struct{}{}:
	default:
		inv.depMu.Lock()
		inv.signalPressureLocked()
		inv.depMu.Unlock()
		defer inv.waiting.Add(-1)
		select {
		case inv.sem <- struct{}{}:
		case <-l.Context().Done():
			return
		}
	}
	if !inv.start(l, id, true) {
		<-inv.sem
	}
}

// start creates and runs a task for id unless one exists. holding says the caller took an
// attempt slot for the task's first attempt. It reports whether a task was created.
func (inv *Invoker) start(l processor.Leadership, id []byte, holding bool) bool {
	k := taskKey(l.Partition(), id)
	inv.mu.Lock()
	if t := inv.tasks[k]; t != nil {
		if !holding {
			t.again = true
		}
		inv.mu.Unlock()
		return false
	}
	t := newTask(inv, l, append([]byte(nil), id...), k)
	t.holding = holding
	t.prev = inv.aborted[k]
	delete(inv.aborted, k)
	if p, ok := inv.paused[k]; ok {
		// Resumed: Restate's retry_count goes on counting (its retry policy starts over).
		p.Paused, p.NextRetryAt = false, time.Time{}
		t.progress = p
		delete(inv.paused, k)
	}
	inv.tasks[k] = t
	inv.mu.Unlock()
	go t.run()
	return true
}

// Notify forwards a new notification to the running attempt of an invocation, if any.
func (inv *Invoker) Notify(l processor.Leadership, id []byte, index uint32, e store.JournalEntry) {
	inv.mu.Lock()
	t := inv.tasks[taskKey(l.Partition(), id)]
	inv.mu.Unlock()
	if t != nil {
		t.notify(index, e)
	}
}

// Abort stops the running attempt of a killed invocation and its retries.
func (inv *Invoker) Abort(l processor.Leadership, id []byte) { inv.abort(l, id, false) }

// Pause stops the running attempt of a paused invocation and its retries. If it was waiting
// to retry, its progress stays visible (Progress, with Paused set) until it resumes, as
// restate-server 1.7.12 keeps retry_count, last_failure and the rest of its invoker's view
// of such an invocation; one paused while an attempt ran shows none there, nor here.
func (inv *Invoker) Pause(l processor.Leadership, id []byte) { inv.abort(l, id, true) }

func (inv *Invoker) abort(l processor.Leadership, id []byte, pause bool) {
	k := taskKey(l.Partition(), id)
	inv.mu.Lock()
	delete(inv.paused, k)
	t := inv.tasks[k]
	if t != nil && pause {
		t.mu.Lock()
		if p := t.progress; !p.NextRetryAt.IsZero() {
			p.Paused = true
			inv.paused[k] = p
		}
		t.mu.Unlock()
	}
	if t != nil {
		// Gone from the map at once: a resume right after a pause starts a new task (which
		// waits for this one) instead of asking this dying one to run again.
		t.again = false
		delete(inv.tasks, k)
		inv.aborted[k] = t
	}
	inv.mu.Unlock()
	if t != nil {
		t.cancel()
	}
}

// RetryNow has the task of id start its next attempt at once if it waits to retry; a running
// attempt goes on.
func (inv *Invoker) RetryNow(l processor.Leadership, id []byte) {
	inv.mu.Lock()
	t := inv.tasks[taskKey(l.Partition(), id)]
	inv.mu.Unlock()
	if t != nil {
		select {
		case t.retryNow <- struct{}{}:
		default:
		}
	}
}

// StopPartition ends every task of a partition; their leader context is already cancelled.
func (inv *Invoker) StopPartition(partition uint32) {
	inv.mu.Lock()
	var ts []*task
	for _, t := range inv.tasks {
		if t.l.Partition() == partition {
			ts = append(ts, t)
		}
	}
	prefix := taskKey(partition, nil)
	for k := range inv.paused {
		if strings.HasPrefix(k, prefix) {
			delete(inv.paused, k)
		}
	}
	inv.mu.Unlock()
	for _, t := range ts {
		<-t.done
	}
}

// finish removes a task unless a new attempt was requested meanwhile; it reports whether the
// task must run again.
func (inv *Invoker) finish(t *task) bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if t.again {
		t.again = false
		return true
	}
	inv.dropLocked(t)
	return false
}

// Progress returns the attempt progress of every invocation with a task on this node, and
// of those paused while they waited to retry (Paused set), by invocation id string.
func (inv *Invoker) Progress() map[string]Progress {
	inv.mu.Lock()
	ts := make([]*task, 0, len(inv.tasks))
	for _, t := range inv.tasks {
		ts = append(ts, t)
	}
	out := make(map[string]Progress, len(ts)+len(inv.paused))
	for k, p := range inv.paused {
		out[invString([]byte(k[4:]))] = p
	}
	inv.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		out[invString(t.id)] = t.progress
		t.mu.Unlock()
	}
	return out
}
