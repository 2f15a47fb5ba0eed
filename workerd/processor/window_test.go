package processor

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAppendWindowWaitsWhileFull(t *testing.T) {
	w := newAppendWindow(100)
	ctx := context.Background()
	a, _ := w.acquire(ctx, nil, 60)
	b, _ := w.acquire(ctx, nil, 40)
	if a != 60 || b != 40 {
		t.Fatalf("took %d and %d, want 60 and 40", a, b)
	}

	got := make(chan int)
	go func() {
		n, err := w.acquire(ctx, nil, 30)
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	select {
	case <-got:
		t.Fatal("acquired 30 bytes while 100 of 100 were in use")
	case <-time.After(50 * time.Millisecond):
	}
	w.release(b)
	select {
	case n := <-got:
		if n != 30 {
			t.Fatalf("took %d, want 30", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after 40 bytes were released")
	}

	// A record larger than the window waits until the window is empty, then goes alone.
	big := make(chan int)
	go func() { n, _ := w.acquire(ctx, nil, 1000); big <- n }()
	w.release(a)
	select {
	case <-big:
		t.Fatal("a record larger than the window went while 30 bytes were in use")
	case <-time.After(50 * time.Millisecond):
	}
	w.release(30)
	if n := <-big; n != 100 {
		t.Fatalf("a 1000-byte record took %d of the window, want all 100", n)
	}

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { _, err := w.acquire(cctx, nil, 1); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiting acquire whose context ended returned %v", err)
	}
}

// TestAppendWindowServesInOrder: a large record waiting for room is not overtaken by small
// ones that would fit, and a waiter that gives up lets those behind it through.
func TestAppendWindowServesInOrder(t *testing.T) {
	w := newAppendWindow(100)
	ctx := context.Background()
	held, _ := w.acquire(ctx, nil, 90)

	big := make(chan int, 1)
	go func() { n, _ := w.acquire(ctx, nil, 50); big <- n }()
	waitWaiters(t, w, 1)
	small := make(chan int, 1)
	go func() { n, _ := w.acquire(ctx, nil, 5); small <- n }()
	waitWaiters(t, w, 2)
	select {
	case <-small:
		t.Fatal("a small record overtook the large one waiting before it")
	case <-time.After(50 * time.Millisecond):
	}
	w.release(held)
	if n := <-big; n != 50 {
		t.Fatalf("large record took %d", n)
	}
	if n := <-small; n != 5 {
		t.Fatalf("small record took %d", n)
	}

	// 55 in use: a waiter for 60 blocks one for 10; when it gives up, the 10 goes.
	stop := make(chan struct{})
	gaveUp := make(chan error, 1)
	go func() { _, err := w.acquire(ctx, stop, 60); gaveUp <- err }()
	waitWaiters(t, w, 1)
	after := make(chan int, 1)
	go func() { n, _ := w.acquire(ctx, nil, 10); after <- n }()
	waitWaiters(t, w, 2)
	close(stop)
	if err := <-gaveUp; err == nil {
		t.Fatal("a waiter whose leadership ended got room")
	}
	select {
	case n := <-after:
		if n != 10 {
			t.Fatalf("took %d", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter behind one that gave up still waits")
	}
}

func waitWaiters(t *testing.T, w *appendWindow, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		w.mu.Lock()
		got := len(w.waiters)
		w.mu.Unlock()
		if got == n {
			return
		}
	}
	t.Fatalf("waiters never reached %d", n)
}
