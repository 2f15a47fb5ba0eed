package metadata

import (
	"context"
	"errors"
	"time"
)

// Default retry bounds of a Watcher after a store error.
const (
	DefaultWatchMinBackoff = 100 * time.Millisecond
	DefaultWatchMaxBackoff = 5 * time.Second
)

// Watcher keeps a consumer's cached copy of one metadata object (the schema, the partition
// table) current: it reads the object, then waits for each newer version and hands it over.
// The zero value is ready to use.
type Watcher struct {
	// MinBackoff and MaxBackoff bound the doubling wait after a store error; zero values mean
	// DefaultWatchMinBackoff and DefaultWatchMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnError, if set, is told about each store error (to log it); the watcher keeps going.
	OnError func(error)
}

// Watch is (&Watcher{}).Watch.
func Watch(ctx context.Context, store Store, key string, onChange func(Versioned)) error {
	var w Watcher
	return w.Watch(ctx, store, key, onChange)
}

// Watch calls onChange with the current value of key, if any, and then with every newer
// version, until ctx is done; it then returns ctx.Err(). Calls happen on the caller's
// goroutine, one at a time, with strictly increasing versions. Versions may be skipped when
// several writes land between two waits; only the newest matters to a cache. Store errors
// are retried with backoff, never returned.
func (w *Watcher) Watch(ctx context.Context, store Store, key string, onChange func(Versioned)) error {
	minB, maxB := w.MinBackoff, w.MaxBackoff
	if minB <= 0 {
		minB = DefaultWatchMinBackoff
	}
	if maxB < minB {
		maxB = max(DefaultWatchMaxBackoff, minB)
	}
	var seen uint64
	backoff := minB
	first := true
	for {
		var (
			v   Versioned
			err error
		)
		if first {
			v, err = store.Get(ctx, key)
			if errors.Is(err, ErrNotFound) {
				first, err = false, nil
				continue
			}
		} else {
			v, err = store.WaitNewer(ctx, key, seen)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if w.OnError != nil {
				w.OnError(err)
			}
			// A timer, not a condition wait: the store is failing and there is nothing to
			// be woken by.
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			backoff = min(2*backoff, maxB)
			continue
		}
		first, backoff = false, minB
		if v.Version > seen {
			seen = v.Version
			onChange(v)
		}
	}
}
