package examples

import (
	restate "github.com/restatedev/sdk-go"
)

// Control drives other invocations from a handler: it resolves awakeables
// (CompleteAwakeable), attaches to invocations (AttachInvocation) and cancels them
// (SendSignal with the cancel signal).
func Control() restate.ServiceDefinition {
	return restate.NewService("Control").
		Handler("resolve", restate.NewServiceHandler(controlResolve)).
		Handler("attach", restate.NewServiceHandler(controlAttach)).
		Handler("cancel", restate.NewServiceHandler(controlCancel))
}

func controlResolve(ctx restate.Context, awakeableID string) (string, error) {
	restate.ResolveAwakeable(ctx, awakeableID, "by service")
	return "resolved", nil
}

func controlAttach(ctx restate.Context, invocationID string) (string, error) {
	return restate.AttachInvocation[string](ctx, invocationID).Response()
}

func controlCancel(ctx restate.Context, invocationID string) (string, error) {
	restate.CancelInvocation(ctx, invocationID)
	return "cancelled", nil
}
