package faultnet

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost/wire"
)

// stub is a wire.LogServer that records the loglet ids of the GetLogletInfo calls it
// handles, in order, and blocks WaitForTail until the context ends.
type stub struct {
	wire.LogServer // unimplemented methods panic
	mu             sync.Mutex
	seen           []uint64
	waiting        chan struct{} // if set, gets a value when WaitForTail starts
}

func (s *stub) GetLogletInfo(_ context.Context, req *wire.GetLogletInfo) (*wire.LogletInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, req.LogletID)
	return &wire.LogletInfo{}, nil
}

func (s *stub) WaitForTail(ctx context.Context, _ *wire.WaitForTail) (*wire.TailUpdated, error) {
	if s.waiting != nil {
		s.waiting <- struct{}{}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *stub) calls() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func info(t *testing.T, ctx context.Context, n wire.Network, node string, id uint64) error {
	t.Helper()
	ls, err := n.LogServer(node)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ls.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: id}})
	return err
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// The same seed and message sequence give the same faults; another seed others.
func TestFaultsAreDeterministic(t *testing.T) {
	run := func(seed uint64) []bool {
		n := New(seed)
		defer n.Close()
		n.AddNode("s", &stub{}, nil)
		n.SetFaults("s", Faults{DropRequest: 0.3, DropResponse: 0.2})
		var out []bool
		for i := range 200 {
			out = append(out, info(t, context.Background(), n, "s", uint64(i)) == nil)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different faults")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same faults")
	}
}

// A dropped request never reaches the server; a dropped response did take effect.
func TestDropRequestAndResponse(t *testing.T) {
	n := New(1)
	defer n.Close()
	s := &stub{}
	n.AddNode("s", s, nil)
	n.SetFaults("s", Faults{DropRequest: 1})
	if err := info(t, context.Background(), n, "s", 1); !errors.Is(err, ErrDropped) {
		t.Fatalf("dropped request: %v", err)
	}
	n.SetFaults("s", Faults{DropResponse: 1})
	if err := info(t, context.Background(), n, "s", 2); !errors.Is(err, ErrDropped) {
		t.Fatalf("dropped response: %v", err)
	}
	if got := s.calls(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("server saw %v, want [2]", got)
	}
	st := n.Stats()
	if st.DroppedRequests != 1 || st.DroppedResponses != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A black hole holds the caller until its context ends.
func TestBlackHole(t *testing.T) {
	n := New(1)
	defer n.Close()
	n.AddNode("s", &stub{}, nil)
	n.SetFaults("s", Faults{DropRequest: 1, BlackHole: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := info(t, ctx, n, "s", 1)
	if !errors.Is(err, ErrDropped) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("black hole: %v", err)
	}
}

// Method filters limit faults to the named methods.
func TestMethodFilter(t *testing.T) {
	n := New(1)
	defer n.Close()
	n.AddNode("s", &stub{}, nil)
	n.SetFaults("s", Faults{DropRequest: 1, Methods: []string{"Store"}})
	if err := info(t, context.Background(), n, "s", 1); err != nil {
		t.Fatalf("unfiltered method faulted: %v", err)
	}
}

// A duplicate reaches the server a second time; Close waits for it.
func TestDuplicate(t *testing.T) {
	n := New(1)
	s := &stub{}
	n.AddNode("s", s, nil)
	n.SetFaults("s", Faults{Duplicate: 1})
	if err := info(t, context.Background(), n, "s", 5); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the duplicate", func() bool { return len(s.calls()) == 2 })
	n.Close()
	if got := s.calls(); !slices.Equal(got, []uint64{5, 5}) {
		t.Fatalf("server saw %v", got)
	}
}

// A reordered message is delivered after the next one.
func TestReorder(t *testing.T) {
	n := New(1)
	defer n.Close()
	s := &stub{}
	n.AddNode("s", s, nil)
	n.SetFaults("s", Faults{Reorder: 1, MaxHold: 5 * time.Second})
	done := make(chan error, 1)
	go func() { done <- info(t, context.Background(), n, "s", 1) }()
	eventually(t, "the held message", func() bool { return n.Stats().Reordered == 1 })
	n.ClearFaults("s")
	if err := info(t, context.Background(), n, "s", 2); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.calls(); !slices.Equal(got, []uint64{2, 1}) {
		t.Fatalf("server saw %v, want [2 1]", got)
	}
}

// A held message with no successor goes after MaxHold.
func TestReorderMaxHold(t *testing.T) {
	n := New(1)
	defer n.Close()
	s := &stub{}
	n.AddNode("s", s, nil)
	n.SetFaults("s", Faults{Reorder: 1, MaxHold: time.Millisecond})
	if err := info(t, context.Background(), n, "s", 1); err != nil {
		t.Fatal(err)
	}
}

// Partitions: a whole node, and one link seen from one caller.
func TestPartitions(t *testing.T) {
	n := New(1)
	defer n.Close()
	n.AddNode("s", &stub{}, nil)
	n.Partition("s")
	if err := info(t, context.Background(), n, "s", 1); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("partitioned: %v", err)
	}
	n.Heal("s")
	if err := info(t, context.Background(), n, "s", 1); err != nil {
		t.Fatalf("healed: %v", err)
	}
	n.PartitionLink("a", "s")
	if err := info(t, context.Background(), n.From("a"), "s", 1); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("cut link: %v", err)
	}
	if err := info(t, context.Background(), n.From("b"), "s", 1); err != nil {
		t.Fatalf("other caller: %v", err)
	}
	n.HealLink("a", "s")
	if err := info(t, context.Background(), n.From("a"), "s", 1); err != nil {
		t.Fatalf("healed link: %v", err)
	}
	if err := info(t, context.Background(), n, "nobody", 1); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("unknown node: %v", err)
	}
}

// Kill ends the calls a node is handling and runs the hooks; Restart brings the node's
// new life.
func TestKillRestart(t *testing.T) {
	n := New(1)
	defer n.Close()
	old, fresh := &stub{waiting: make(chan struct{}, 1)}, &stub{}
	n.AddNode("s", old, nil)
	killed := make(chan struct{})
	n.SetHooks("s", Hooks{
		OnKill:    func() { close(killed) },
		OnRestart: func() (wire.LogServer, wire.Sequencer) { return fresh, nil },
	})
	ls, _ := n.LogServer("s")
	errc := make(chan error, 1)
	go func() {
		_, err := ls.WaitForTail(context.Background(), &wire.WaitForTail{})
		errc <- err
	}()
	<-old.waiting // the long poll is inside the server
	n.Kill("s")
	if err := <-errc; !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call during kill: %v", err)
	}
	<-killed
	if err := info(t, context.Background(), n, "s", 1); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("killed node: %v", err)
	}
	n.Heal("s") // healing does not revive a killed node
	if err := info(t, context.Background(), n, "s", 1); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("healed killed node: %v", err)
	}
	n.Restart("s")
	if err := info(t, context.Background(), n, "s", 2); err != nil {
		t.Fatal(err)
	}
	if len(old.calls()) != 0 || !slices.Equal(fresh.calls(), []uint64{2}) {
		t.Fatalf("old %v fresh %v", old.calls(), fresh.calls())
	}
}
