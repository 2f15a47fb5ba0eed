package invoker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/store"
)

// removedDeploymentFailure is the failure restate-server 1.7.12 gives the attempts of an
// invocation whose pinned deployment was removed with force (RT0011).
const removedDeploymentFailure = "[500 Internal] the invocation has a deployment id associated, but it was not found in the registry. " +
	"This might indicate that a deployment was forcefully removed from the registry, but there are still in-flight invocations pinned to it"

// pinnedThenRemoved suspends an invocation pinned to dp_test, replaces the registry with
// what removed(old) returns (a force removal of dp_test), resumes the invocation and waits
// for two failed attempts. It returns their progress and the harness.
func pinnedThenRemoved(t *testing.T, removed func(old *schema.Registry) *schema.Registry) (*harness, Progress) {
	t.Helper()
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			// A sleep pins the deployment (the attempt's first entry); then suspend on it.
			sleep := &protocol.SleepCommand{WakeUpTime: uint64(time.Now().Add(time.Hour).UnixMilli()), ResultCompletionID: 1}
			writeMsg(w, protocol.Message{Type: protocol.SleepCommandType, Payload: sleep.Marshal()})
			writeMsg(w, protocol.Message{Type: protocol.SuspensionMessageType, Payload: (&protocol.SuspensionMessage{WaitingCompletions: []uint32{1}}).Marshal()})
		})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes()
	if _, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Input: []byte("in"), Send: true,
		Target: rpc.Target{Service: "Svc", Handler: "h", ServiceType: "SERVICE"}}); err != nil {
		t.Fatal(err)
	}
	for st := h.status(id); st == nil || st.Phase != store.PhaseSuspended || st.DeploymentID != "dp_test"; st = h.status(id) {
		if ctx.Err() != nil {
			t.Fatalf("not suspended on dp_test: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.reg.Store(removed(h.reg.Load()))
	if _, err := h.p.Leader().Manage(ctx, &rpc.ManageRequest{InvocationID: id, Op: rpc.OpResume}); err != nil {
		t.Fatal(err)
	}
	var p Progress
	for p = h.inv.Progress()[invString(id)]; p.RetryCount < 2; p = h.inv.Progress()[invString(id)] {
		if ctx.Err() != nil {
			t.Fatalf("no failed attempts: %+v", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h, p
}

// An invocation pinned to a deployment that was then removed with force: restate-server
// 1.7.12 fails its attempts with RT0011 and its own message, and shows no last attempt
// deployment for a run that never got to one (here: woken from suspension after the
// removal). We reported "deployment dp_… of service "Svc" is not registered", no code, and
// the pinned deployment as the last attempt's.
func TestE2EPinnedDeploymentRemovedWithForce(t *testing.T) {
	// dp_test is removed with force: the service's latest deployment is another one.
	h, p := pinnedThenRemoved(t, func(old *schema.Registry) *schema.Registry {
		return &schema.Registry{
			Deployments: []schema.Deployment{{ID: "dp_new", URI: old.Deployments[0].URI, ProtocolMode: "REQUEST_RESPONSE", MinProtocolVersion: 5, MaxProtocolVersion: 6}},
			Services:    map[string]*schema.Service{"Svc": {Name: "Svc", Type: schema.ServiceTypeService, DeploymentID: "dp_new", Handlers: old.Services["Svc"].Handlers, RetryPolicy: old.Services["Svc"].RetryPolicy}},
		}
	})
	if p.LastFailure != removedDeploymentFailure || p.LastFailureCode != "RT0011" {
		t.Fatalf("last failure %q code %q, want %q RT0011", p.LastFailure, p.LastFailureCode, removedDeploymentFailure)
	}
	if p.LastAttemptDeployment != "" || p.LastAttemptServer != "" {
		t.Fatalf("last attempt deployment %q server %q, want none", p.LastAttemptDeployment, p.LastAttemptServer)
	}
	if n := h.requests(); n != 1 {
		t.Fatalf("%d requests to the deployment, want 1 (the attempts after the removal reach none)", n)
	}
}

// The same when the removed deployment was the service's only one, so that the service is
// gone from the registry too (`restate deployments remove <id> --force` of the deployment
// of a backing-off invocation): restate-server 1.7.12 still answers RT0011 for the pinned
// invocation. We reported `service "Svc" is not registered`, no code.
func TestE2EPinnedDeploymentRemovedWithItsService(t *testing.T) {
	// dp_test, the only deployment of Svc, is removed with force: Svc is gone with it.
	h, p := pinnedThenRemoved(t, func(*schema.Registry) *schema.Registry {
		return &schema.Registry{Services: map[string]*schema.Service{}}
	})
	if p.LastFailure != removedDeploymentFailure || p.LastFailureCode != "RT0011" {
		t.Fatalf("last failure %q code %q, want %q RT0011", p.LastFailure, p.LastFailureCode, removedDeploymentFailure)
	}
	if n := h.requests(); n != 1 {
		t.Fatalf("%d requests to the deployment, want 1 (the attempts after the removal reach none)", n)
	}
}
