package ingress

import (
	"context"
	"errors"

	"gorestate.dev/shared/rpc"
)

// errNoController is what the invoke-only fakes answer to the control RPCs.
var errNoController = errors.New("fake: not a controller")

type noController struct{}

func (noController) Attach(context.Context, *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	return nil, errNoController
}
func (noController) Signal(context.Context, *rpc.SignalRequest) error { return errNoController }
func (noController) Manage(context.Context, *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	return "", errNoController
}

func (invokerFunc) Attach(ctx context.Context, r *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	return noController{}.Attach(ctx, r)
}
func (invokerFunc) Signal(ctx context.Context, r *rpc.SignalRequest) error {
	return noController{}.Signal(ctx, r)
}
func (invokerFunc) Manage(ctx context.Context, r *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	return noController{}.Manage(ctx, r)
}
func (*fakeInvoker) Attach(ctx context.Context, r *rpc.AttachRequest) (*rpc.InvokeResponse, error) {
	return noController{}.Attach(ctx, r)
}
func (*fakeInvoker) Signal(ctx context.Context, r *rpc.SignalRequest) error {
	return noController{}.Signal(ctx, r)
}
func (*fakeInvoker) Manage(ctx context.Context, r *rpc.ManageRequest) (rpc.ManageOutcome, error) {
	return noController{}.Manage(ctx, r)
}
func (noController) PatchState(context.Context, *rpc.PatchStateRequest) error { return errNoController }
func (invokerFunc) PatchState(ctx context.Context, r *rpc.PatchStateRequest) error {
	return noController{}.PatchState(ctx, r)
}
func (*fakeInvoker) PatchState(ctx context.Context, r *rpc.PatchStateRequest) error {
	return noController{}.PatchState(ctx, r)
}
func (noController) RestartAsNew(context.Context, *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	return nil, errNoController
}
func (invokerFunc) RestartAsNew(ctx context.Context, r *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	return noController{}.RestartAsNew(ctx, r)
}
func (*fakeInvoker) RestartAsNew(ctx context.Context, r *rpc.RestartAsNewRequest) (*rpc.RestartAsNewResponse, error) {
	return noController{}.RestartAsNew(ctx, r)
}
