package examples

import (
	"fmt"
	"sync"

	restate "github.com/restatedev/sdk-go"
)

// Signup is a workflow: run waits on the durable promise "confirmed", which the shared
// handler confirm resolves; status peeks at it without waiting.
func Signup() restate.ServiceDefinition {
	return restate.NewWorkflow("Signup").
		Handler("run", restate.NewWorkflowHandler(signupRun)).
		Handler("confirm", restate.NewWorkflowSharedHandler(signupConfirm)).
		Handler("status", restate.NewWorkflowSharedHandler(signupStatus))
}

func signupRun(ctx restate.WorkflowContext, email string) (string, error) {
	code, err := restate.Promise[string](ctx, "confirmed").Result()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("welcome %s (confirmed with %s)", email, code), nil
}

func signupConfirm(ctx restate.WorkflowSharedContext, code string) (string, error) {
	if err := restate.Promise[string](ctx, "confirmed").Resolve(code); err != nil {
		return "", err
	}
	return "confirmed", nil
}

func signupStatus(ctx restate.WorkflowSharedContext, _ restate.Void) (string, error) {
	code, err := restate.Promise[string](ctx, "confirmed").Peek()
	if err != nil {
		return "", err
	}
	if code == "" {
		return "pending", nil
	}
	return "confirmed with " + code, nil
}

// Approvals waits on an awakeable that someone outside resolves through the ingress.
func Approvals() restate.ServiceDefinition {
	return restate.NewService("Approvals").
		Handler("request", restate.NewServiceHandler(approvalRequest))
}

var (
	awakeablesMu sync.Mutex
	awakeables   = map[string]string{}
)

// AwakeableFor returns the awakeable id that Approvals.request created for name, or "".
func AwakeableFor(name string) string {
	awakeablesMu.Lock()
	defer awakeablesMu.Unlock()
	return awakeables[name]
}

func approvalRequest(ctx restate.Context, name string) (string, error) {
	a := restate.Awakeable[string](ctx)
	awakeablesMu.Lock()
	awakeables[name] = a.Id()
	awakeablesMu.Unlock()
	// So that someone reading the log can resolve it (POST /restate/awakeables/{id}/resolve).
	ctx.Log().Info("waiting for approval", "name", name, "awakeable", a.Id())
	verdict, err := a.Result()
	if err != nil {
		return "", err
	}
	return "approved: " + verdict, nil
}

// Chain calls Sleeper.nap and waits for it: cancelling the chain must cancel the nap too.
func Chain() restate.ServiceDefinition {
	return restate.NewService("Chain").
		Handler("start", restate.NewServiceHandler(chainStart))
}

func chainStart(ctx restate.Context, ms int) (string, error) {
	return restate.Service[string](ctx, "Sleeper", "nap").Request(ms)
}
