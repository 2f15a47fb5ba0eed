package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/rpc"
)

// Leadership moves when a node fails or the controller rebalances; the routing view catches
// up within a few heartbeats, so a short, growing wait covers most moves without making a
// client wait long for a partition that really is down.
const (
	defaultLeaderAttempts = 5
	defaultLeaderBackoff  = 20 * time.Millisecond
)

// errClientGone reports that the caller went away; nothing can be answered any more.
var errClientGone = errors.New("ingress: client went away")

var (
	errNilInvoker = errors.New("route returned no invoker")
	errNoResponse = errors.New("invoker returned neither a response nor an error")
)

// invokeLeader sends req to the leader of its partition. rpc.ErrNotLeader, from the routing
// view or from the node itself, means nothing was appended, and an unreachable node means
// its leadership is moving (the failure detector moves it within milliseconds of a killed
// process): both are retried with backoff, with the same invocation id. Any other failure
// is final.
func (h *handler) invokeLeader(ctx context.Context, req *rpc.InvokeRequest) (*rpc.InvokeResponse, error) {
	backoff := h.leaderBackoff
	for attempt := 1; ; attempt++ {
		// What the route is chosen from, read first: a change after this point ends the wait.
		w := h.watchLeader(req.Partition)
		inv, err := h.opts.Route(req.Partition)
		if err == nil && inv == nil {
			err = errNilInvoker
		}
		if err == nil {
			var resp *rpc.InvokeResponse
			resp, err = h.invokeUntilMoved(ctx, inv, req, w)
			if err == nil && resp == nil {
				err = errNoResponse
			}
			if err == nil {
				return resp, nil
			}
			if ctx.Err() != nil {
				return nil, errors.Join(errClientGone, err)
			}
			var netErr net.Error
			unreachable := errors.As(err, &netErr) || errors.Is(err, errLeaderMoved)
			if !errors.Is(err, rpc.ErrNotLeader) && !unreachable {
				return nil, newError(errInvokeFailed, req.Partition, err)
			}
			if unreachable && attempt >= h.leaderAttempts {
				return nil, newError(errInvokeUnavailable, req.Partition, err)
			}
			// An unreachable leader may have appended the invocation before it died: the
			// retry carries the same invocation id, which the new leader's log either
			// creates or finds (a call then waits for that invocation's result).
		} else if !errors.Is(err, rpc.ErrNotLeader) {
			return nil, newError(errRouting, req.Partition, err)
		}
		if attempt >= h.leaderAttempts {
			return nil, newError(errNoLeader, req.Partition, attempt, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(errClientGone, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// errLeaderMoved ends a wait on a leader whose partition was placed elsewhere meanwhile.
var errLeaderMoved = errors.New("the partition's leader was moved to another node")

// leaderWatch is the placed leader of a partition when a route was chosen, and the signal
// of the next placement change.
type leaderWatch struct {
	changed <-chan struct{}
	leader  string
}

func (h *handler) watchLeader(p uint32) leaderWatch {
	if h.opts.LeaderOf == nil || h.opts.TableChanged == nil {
		return leaderWatch{}
	}
	changed := h.opts.TableChanged() // before reading the leader, so no change is missed
	return leaderWatch{changed: changed, leader: h.opts.LeaderOf(p)}
}

// invokeUntilMoved invokes inv, giving up with errLeaderMoved when the partition's placed
// leader changes before the answer: a leader cut off by the network never answers, and the
// request would otherwise wait for the client's timeout.
func (h *handler) invokeUntilMoved(ctx context.Context, inv rpc.Worker, req *rpc.InvokeRequest, w leaderWatch) (*rpc.InvokeResponse, error) {
	if w.changed == nil {
		return inv.Invoke(ctx, req)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var moved atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		changed := w.changed
		for {
			select {
			case <-done:
				return
			case <-changed:
			}
			changed = h.opts.TableChanged()
			if h.opts.LeaderOf(req.Partition) != w.leader {
				moved.Store(true)
				cancel()
				return
			}
		}
	}()
	resp, err := inv.Invoke(actx, req)
	if err != nil && moved.Load() && ctx.Err() == nil {
		return nil, fmt.Errorf("%w: %w", errLeaderMoved, err)
	}
	return resp, err
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
