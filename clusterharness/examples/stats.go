package examples

import (
	"sync"
	"sync/atomic"
)

// Counters that in-process tests read to check what really executed, as opposed to what the
// journal replayed. They live outside Restate on purpose: a durable side effect must bump
// them exactly once however often its handler is replayed.
var (
	// NapSideEffects counts executions of the restate.Run closure in Sleeper.nap.
	NapSideEffects atomic.Int64
	// OrderIDsIssued counts executions of the restate.Run closure in Orders.place.
	OrderIDsIssued atomic.Int64
	// RemindersDelivered counts completed Reminders.remind invocations.
	RemindersDelivered atomic.Int64
	// FlakyAttemptsTotal counts every Flaky.attempt execution, failed or not.
	FlakyAttemptsTotal atomic.Int64
)

var (
	statsMu       sync.Mutex
	flakyAttempts = map[string]int64{}
	reminders     []Reminder
)

// FlakyAttempts reports how many times Flaky.attempt ran for key.
func FlakyAttempts(key string) int64 {
	statsMu.Lock()
	defer statsMu.Unlock()
	return flakyAttempts[key]
}

// DeliveredReminders returns a copy of the reminders delivered so far, in delivery order.
func DeliveredReminders() []Reminder {
	statsMu.Lock()
	defer statsMu.Unlock()
	return append([]Reminder(nil), reminders...)
}

// ResetStats zeroes every counter, so a test can start from a known state.
func ResetStats() {
	NapSideEffects.Store(0)
	OrderIDsIssued.Store(0)
	RemindersDelivered.Store(0)
	FlakyAttemptsTotal.Store(0)
	statsMu.Lock()
	defer statsMu.Unlock()
	flakyAttempts = map[string]int64{}
	reminders = nil
}

// recordFlakyAttempt bumps the attempt count for key and returns the new value.
func recordFlakyAttempt(key string) int64 {
	FlakyAttemptsTotal.Add(1)
	statsMu.Lock()
	defer statsMu.Unlock()
	flakyAttempts[key]++
	return flakyAttempts[key]
}

func recordReminder(r Reminder) {
	statsMu.Lock()
	reminders = append(reminders, r)
	statsMu.Unlock()
	RemindersDelivered.Add(1)
}
