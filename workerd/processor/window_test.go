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
	a, _ := w.acquire(ctx, 60)
	b, _ := w.acquire(ctx, 40)
	if a != 60 || b != 40 {
		t.Fatalf("took %d and %d, want 60 and 40", a, b)
	}

	got := make(chan int)
	go func() {
		n, err := w.acquire(ctx, 30)
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
	go func() { n, _ := w.acquire(ctx, 1000); big <- n }()
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
	go func() { _, err := w.acquire(cctx, 1); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiting acquire whose context ended returned %v", err)
	}
}
