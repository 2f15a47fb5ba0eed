package processor

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
)

// timerHorizon is how far ahead the timer service keeps timers in memory. Timers further out
// (sleeps of days, retention cleanups) stay in the store until they come within reach, so
// memory does not grow with the number of pending timers.
var timerHorizon = time.Minute // a variable for tests only

// timerBatch bounds the timers one load brings into memory, and the fired timers whose
// records are still being appended before the next load: a backlog of overdue timers (a
// leader taking over after downtime) is worked off a batch at a time.
var timerBatch = 4096 // a variable for tests only

// timerService keeps the leader's due-soon durable timers in memory and fires each one by
// appending a TimerFired record when it is due. The store stays the source of truth: a timer
// that is fired twice is applied once, because apply deletes it.
type timerService struct {
	l    *Leader
	mu   sync.Mutex
	h    timerHeap
	wake chan struct{}
	// loadedUntil: every stored timer waking before it is in h (or fired already).
	loadedUntil int64
	firing      int // fired timers whose records are being appended
	maxHeld     int // most timers held in h at once (for tests)
}

func newTimerService(l *Leader) *timerService {
	return &timerService{l: l, wake: make(chan struct{}, 1)}
}

func (s *timerService) add(t *logrecord.TimerFired) {
	s.mu.Lock()
	if t.WakeAt >= s.loadedUntil {
		s.mu.Unlock()
		return // stored; loaded when it comes within the horizon
	}
	heap.Push(&s.h, t)
	s.maxHeld = max(s.maxHeld, len(s.h))
	first := s.h[0] == t
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *timerService) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := s.load(); err != nil {
			s.l.p.log.Error("load timers", "error", err)
		}
		s.mu.Lock()
		now := time.Now().UnixMilli()
		var due []*logrecord.TimerFired
		for len(s.h) > 0 && s.h[0].WakeAt <= now {
			due = append(due, heap.Pop(&s.h).(*logrecord.TimerFired))
		}
		// Wake for the next timer, or to load the next window half a horizon early, unless
		// load would refuse: the next timer fired, or the fired ones appended (their
		// callbacks nudge), lets it load again.
		next := time.Hour
		if s.firing < timerBatch && len(s.h) < timerBatch {
			next = time.Duration(s.loadedUntil-now)*time.Millisecond - timerHorizon/2
		}
		if len(s.h) > 0 {
			next = min(next, time.Duration(s.h[0].WakeAt-now)*time.Millisecond)
		}
		next = max(next, time.Millisecond)
		s.firing += len(due)
		s.mu.Unlock()
		for _, t := range due {
			s.l.AppendAsync(&logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: t}, func(_ bifrost.LSN, err error) {
				s.mu.Lock()
				s.firing--
				drained := s.firing == 0
				s.mu.Unlock()
				if drained {
					s.nudge()
				}
				if err != nil && ctx.Err() == nil {
					// The timer is still in the store; keep it in memory too and try again.
					s.l.p.log.Error("fire timer", "error", err)
					time.AfterFunc(time.Second, func() { s.add(t) })
				}
			})
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

func (s *timerService) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

type timerHeap []*logrecord.TimerFired

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].WakeAt < h[j].WakeAt }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(*logrecord.TimerFired)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// load brings the stored timers of the next window into memory once the loaded window is
// half used: at most timerBatch of them, and none while a batch is held or a batch of fired
// timers is still being appended (the timers not loaded wake after every one held). It holds the lock while it scans, so that a timer added meanwhile is
// either seen by the scan or pushed by add.
func (s *timerService) load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixMilli()
	if s.loadedUntil-now > timerHorizon.Milliseconds()/2 || s.firing >= timerBatch || len(s.h) >= timerBatch {
		return nil
	}
	until := now + timerHorizon.Milliseconds()
	// Earlier timers are in the heap or fired already.
	timers, err := s.l.Store().Timers(s.loadedUntil, until, timerBatch+1)
	if err != nil {
		return err
	}
	if len(timers) > timerBatch {
		// More than a batch: take the whole milliseconds before the first one left out
		// (all of that millisecond if it is the only one), the rest comes with the next load.
		until = timers[timerBatch].WakeAt
		if until == timers[0].WakeAt {
			if timers, err = s.l.Store().Timers(until, until+1, 0); err != nil {
				return err
			}
			until++
		}
	}
	for _, t := range timers {
		if t.WakeAt < until {
			heap.Push(&s.h, t)
		}
	}
	s.maxHeld = max(s.maxHeld, len(s.h))
	s.loadedUntil = until
	return nil
}
