// Package faultnet owns an in-memory wire.Network that injects faults at the message
// level: lost requests, lost responses (the request took effect, the caller sees an
// error), delays, duplicated and reordered deliveries, partitions of whole nodes or of
// single links, and killed and restarted nodes. It carries wire.LogServer and
// wire.Sequencer calls between in-process implementations (real log servers, sequencer
// services, test doubles).
//
// Faults are drawn deterministically: the fate of the k-th message to a node is a pure
// function of (seed, node, k), so a run that sends the same messages in the same order
// sees the same faults. Concurrent senders may interleave differently between runs; the
// seed still reproduces the same fault pattern per node.
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/bifrost/wire"
)

// Errors callers see for injected faults.
var (
	// ErrUnreachable: the node is partitioned away, killed, or unknown.
	ErrUnreachable = errors.New("faultnet: node unreachable")
	// ErrDropped: the request or its response was lost.
	ErrDropped = errors.New("faultnet: message dropped")
)

// Faults are the message faults of one destination node. Probabilities are in [0, 1].
type Faults struct {
	DropRequest  float64 // the server never sees the request
	DropResponse float64 // the server handles the request, the caller gets ErrDropped
	// Duplicate: the request is delivered a second time shortly after (answer discarded).
	// Log-server requests are idempotent; a duplicated Append appends twice, as a
	// client-side retry would.
	Duplicate float64
	Reorder   float64 // the request is held back and delivered after the next one (or MaxHold)
	// Delay (plus a uniform [0, Jitter)) passes before each request is delivered.
	Delay, Jitter time.Duration
	// MaxHold bounds how long a reordered request waits for a successor (default 20ms).
	MaxHold time.Duration
	// DuplicateDelay is the pause before a duplicate is delivered (default 1ms).
	DuplicateDelay time.Duration
	// BlackHole makes lost messages and unreachable nodes hang until the caller's context
	// ends (like a silent network) instead of failing at once (like a reset connection).
	BlackHole bool
	// Methods limits the faults to these methods ("Store", "Seal", "GetLogletInfo",
	// "GetRecords", "Trim", "WaitForTail", "GetDigest", "Append", "GetSequencerState");
	// empty means all.
	Methods []string
}

// Hooks are called when a node is killed or restarted.
type Hooks struct {
	OnKill func()
	// OnRestart returns the services of the node's new life; nil ones keep the old.
	OnRestart func() (wire.LogServer, wire.Sequencer)
}

// Stats count what the network did.
type Stats struct {
	Delivered, DroppedRequests, DroppedResponses, Duplicated, Reordered, Delayed, Unreachable int64
}

// Network is an in-memory wire.Network with fault injection. The zero value is not
// usable; call New.
type Network struct {
	seed uint64

	mu    sync.Mutex
	nodes map[string]*node
	cut   map[[2]string]bool // from → to links that are down

	delivered, droppedReq, droppedResp, duplicated, reordered, delayed, unreachable atomic.Int64

	bg     sync.WaitGroup // duplicate deliveries
	ctx    context.Context
	cancel context.CancelFunc
}

type node struct {
	name      string
	hash      uint64
	logServer wire.LogServer
	sequencer wire.Sequencer
	faults    Faults
	hooks     Hooks
	down      bool // killed or partitioned
	killed    bool
	life      context.Context // ends when the node is killed
	kill      context.CancelFunc
	msgs      uint64        // messages decided so far (drives the fault draws)
	held      chan struct{} // a reordered message waiting for its successor
}

// New returns an empty network whose faults derive from seed.
func New(seed uint64) *Network {
	n := &Network{seed: seed, nodes: map[string]*node{}, cut: map[[2]string]bool{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// Close ends pending duplicate deliveries and waits for them.
func (n *Network) Close() {
	n.cancel()
	n.bg.Wait()
}

func (n *Network) nodeLocked(name string) *node {
	nd, ok := n.nodes[name]
	if !ok {
		h := fnv.New64a()
		h.Write([]byte(name))
		nd = &node{name: name, hash: h.Sum64()}
		nd.life, nd.kill = context.WithCancel(n.ctx)
		n.nodes[name] = nd
	}
	return nd
}

// AddNode registers a node's services (either may be nil).
func (n *Network) AddNode(name string, ls wire.LogServer, seq wire.Sequencer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	nd := n.nodeLocked(name)
	nd.logServer, nd.sequencer = ls, seq
}

// SetLogServer sets a node's log server.
func (n *Network) SetLogServer(name string, ls wire.LogServer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodeLocked(name).logServer = ls
}

// SetSequencer sets a node's sequencer service.
func (n *Network) SetSequencer(name string, seq wire.Sequencer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodeLocked(name).sequencer = seq
}

// SetFaults replaces the faults of messages to a node.
func (n *Network) SetFaults(name string, f Faults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodeLocked(name).faults = f
}

// ClearFaults removes every fault of a node.
func (n *Network) ClearFaults(name string) { n.SetFaults(name, Faults{}) }

// SetHooks sets a node's kill and restart hooks.
func (n *Network) SetHooks(name string, h Hooks) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodeLocked(name).hooks = h
}

// Partition makes a node unreachable from everyone (its state is kept; calls in flight
// complete).
func (n *Network) Partition(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodeLocked(name).down = true
}

// Heal makes a partitioned node reachable again (not a killed one: see Restart).
func (n *Network) Heal(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nd := n.nodeLocked(name); !nd.killed {
		nd.down = false
	}
}

// PartitionLink cuts the link from one node to another (one way). Only calls made
// through From(from) are affected.
func (n *Network) PartitionLink(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{from, to}] = true
}

// HealLink restores a link cut by PartitionLink.
func (n *Network) HealLink(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, [2]string{from, to})
}

// Kill makes a node unreachable and cancels the calls it is handling (their callers get
// ErrUnreachable), then runs its OnKill hook.
func (n *Network) Kill(name string) {
	n.mu.Lock()
	nd := n.nodeLocked(name)
	nd.down, nd.killed = true, true
	nd.kill()
	hook := nd.hooks.OnKill
	n.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// Restart brings a killed (or partitioned) node back, with the services its OnRestart
// hook returns.
func (n *Network) Restart(name string) {
	n.mu.Lock()
	hook := n.nodeLocked(name).hooks.OnRestart
	n.mu.Unlock()
	var ls wire.LogServer
	var seq wire.Sequencer
	if hook != nil {
		ls, seq = hook()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	nd := n.nodeLocked(name)
	if ls != nil {
		nd.logServer = ls
	}
	if seq != nil {
		nd.sequencer = seq
	}
	if nd.killed {
		nd.life, nd.kill = context.WithCancel(n.ctx)
	}
	nd.down, nd.killed = false, false
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	return Stats{
		Delivered:        n.delivered.Load(),
		DroppedRequests:  n.droppedReq.Load(),
		DroppedResponses: n.droppedResp.Load(),
		Duplicated:       n.duplicated.Load(),
		Reordered:        n.reordered.Load(),
		Delayed:          n.delayed.Load(),
		Unreachable:      n.unreachable.Load(),
	}
}

// From returns the network as seen by node from: link partitions apply to its calls.
func (n *Network) From(from string) wire.Network { return view{n: n, from: from} }

// LogServer implements wire.Network for a caller with no name.
func (n *Network) LogServer(name string) (wire.LogServer, error) {
	return view{n: n}.LogServer(name)
}

// Sequencer implements wire.Network for a caller with no name.
func (n *Network) Sequencer(name string) (wire.Sequencer, error) {
	return view{n: n}.Sequencer(name)
}

type view struct {
	n    *Network
	from string
}

func (v view) LogServer(name string) (wire.LogServer, error) {
	return logServerLink{link{v.n, v.from, name}}, nil
}

func (v view) Sequencer(name string) (wire.Sequencer, error) {
	return sequencerLink{link{v.n, v.from, name}}, nil
}

// link is a caller's path to one node.
type link struct {
	n        *Network
	from, to string
}

// fate is what happens to one message.
type fate struct {
	unreachable, dropReq, dropResp, dup, reorder bool
	delay                                        time.Duration
	blackHole                                    bool
	maxHold, dupDelay                            time.Duration
	holdOn                                       chan struct{} // a reordered message waits for this
	successorOf                                  chan struct{} // held message to release after this one
	life                                         context.Context
}

// splitmix64 is the deterministic source of every fault draw.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// decide draws the fate of the next message on l.
func (l link) decide(method string) fate {
	n := l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	nd := n.nodeLocked(l.to)
	f := nd.faults
	ft := fate{life: nd.life, blackHole: f.BlackHole}
	if nd.down || n.cut[[2]string{l.from, l.to}] {
		ft.unreachable = true
		return ft
	}
	if len(f.Methods) > 0 && !slices.Contains(f.Methods, method) {
		return ft
	}
	k := nd.msgs
	nd.msgs++
	base := splitmix64(n.seed ^ nd.hash ^ splitmix64(k))
	draw := func(salt uint64) float64 { return unit(splitmix64(base + salt)) }
	ft.dropReq = draw(1) < f.DropRequest
	ft.dropResp = draw(2) < f.DropResponse
	ft.dup = draw(3) < f.Duplicate
	ft.reorder = draw(4) < f.Reorder
	ft.delay = f.Delay
	if f.Jitter > 0 {
		ft.delay += time.Duration(draw(5) * float64(f.Jitter))
	}
	ft.maxHold = f.MaxHold
	if ft.maxHold <= 0 {
		ft.maxHold = 20 * time.Millisecond
	}
	ft.dupDelay = f.DuplicateDelay
	if ft.dupDelay <= 0 {
		ft.dupDelay = time.Millisecond
	}
	if ft.reorder {
		if nd.held == nil {
			nd.held = make(chan struct{})
		}
		ft.holdOn = nd.held
	} else if nd.held != nil {
		ft.successorOf, nd.held = nd.held, nil
	}
	return ft
}

func (l link) logServer() wire.LogServer {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.n.nodeLocked(l.to).logServer
}

func (l link) sequencer() wire.Sequencer {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.n.nodeLocked(l.to).sequencer
}

// fail returns err at once, or once ctx ends for a black hole.
func fail(ctx context.Context, blackHole bool, err error) error {
	if blackHole {
		<-ctx.Done()
		return fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliver carries one call through the network. handle runs the request against the
// destination's current service (nil service: unreachable).
func deliver[T any](ctx context.Context, l link, method string, handle func(ctx context.Context) (T, bool, error)) (T, error) {
	var zero T
	n := l.n
	ft := l.decide(method)
	if ft.unreachable {
		n.unreachable.Add(1)
		return zero, fail(ctx, ft.blackHole, fmt.Errorf("%s to %s: %w", method, l.to, ErrUnreachable))
	}
	if ft.successorOf != nil {
		// This message overtakes a held one: release it once this one was handled.
		defer func(held chan struct{}) { time.AfterFunc(time.Millisecond, func() { close(held) }) }(ft.successorOf)
	}
	if ft.delay > 0 {
		n.delayed.Add(1)
		if err := sleepCtx(ctx, ft.delay); err != nil {
			return zero, err
		}
	}
	if ft.reorder {
		n.reordered.Add(1)
		if held := ft.holdOn; held != nil {
			t := time.NewTimer(ft.maxHold)
			select {
			case <-held:
			case <-t.C:
				l.releaseHeld(held)
			case <-ctx.Done():
				t.Stop()
				l.releaseHeld(held)
				return zero, ctx.Err()
			}
			t.Stop()
		}
	}
	if ft.dropReq {
		n.droppedReq.Add(1)
		return zero, fail(ctx, ft.blackHole, fmt.Errorf("%s to %s: request: %w", method, l.to, ErrDropped))
	}
	// Calls in flight end when the node is killed.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ft.life, cancel)
	defer stop()
	resp, ok, err := handle(cctx)
	if !ok || ft.life.Err() != nil {
		n.unreachable.Add(1)
		return zero, fmt.Errorf("%s to %s: %w", method, l.to, ErrUnreachable)
	}
	n.delivered.Add(1)
	if ft.dup {
		n.duplicated.Add(1)
		n.bg.Add(1)
		go func() { // owned by the network: Close waits for it
			defer n.bg.Done()
			if sleepCtx(n.ctx, ft.dupDelay) != nil {
				return
			}
			dctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			defer cancel()
			stop := context.AfterFunc(ft.life, cancel)
			defer stop()
			_, _, _ = handle(dctx)
		}()
	}
	if ft.dropResp {
		n.droppedResp.Add(1)
		return zero, fail(ctx, ft.blackHole, fmt.Errorf("%s to %s: response: %w", method, l.to, ErrDropped))
	}
	return resp, err
}

// releaseHeld lets a held message go if nobody released it yet.
func (l link) releaseHeld(held chan struct{}) {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	if nd := l.n.nodeLocked(l.to); nd.held == held {
		nd.held = nil
		close(held)
	}
}
