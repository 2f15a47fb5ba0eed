package processor

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
)

// timerService keeps the leader's durable timers in memory and fires each one by appending
// a TimerFired record when it is due. The store stays the source of truth: a timer that is
// fired twice is applied once, because apply deletes it.
type timerService struct {
	l    *Leader
	mu   sync.Mutex
	h    timerHeap
	wake chan struct{}
}

func newTimerService(l *Leader) *timerService {
	return &timerService{l: l, wake: make(chan struct{}, 1)}
}

func (s *timerService) add(t *logrecord.TimerFired) {
	s.mu.Lock()
	heap.Push(&s.h, t)
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
		s.mu.Lock()
		now := time.Now().UnixMilli()
		var due []*logrecord.TimerFired
		for len(s.h) > 0 && s.h[0].WakeAt <= now {
			due = append(due, heap.Pop(&s.h).(*logrecord.TimerFired))
		}
		next := time.Hour
		if len(s.h) > 0 {
			next = time.Duration(s.h[0].WakeAt-now) * time.Millisecond
		}
		s.mu.Unlock()
		for _, t := range due {
			s.l.AppendAsync(&logrecord.Record{Kind: logrecord.KindTimerFired, TimerFired: t}, func(_ bifrost.LSN, err error) {
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
