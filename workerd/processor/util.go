package processor

import (
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func invString(id []byte) string {
	inv, err := ids.InvocationIDFromBytes(id)
	if err != nil {
		return "invalid"
	}
	return inv.String()
}

func responseOf(id []byte, res store.Result, expiresAt int64) rpc.InvokeResponse {
	r := rpc.InvokeResponse{InvocationID: id}
	if res.Failed {
		r.Failure = &rpc.Failure{Code: res.Code, Message: res.Message}
	} else {
		r.Output = res.Value
		if r.Output == nil {
			r.Output = []byte{}
		}
	}
	if expiresAt > 0 {
		r.IdempotencyExpires = msTime(expiresAt)
	}
	return r
}

// ResponseOf converts a completed invocation's result into an ingress answer.
func ResponseOf(id []byte, res store.Result, expiresAt int64) rpc.InvokeResponse {
	return responseOf(id, res, expiresAt)
}

func valueOf(v *protocol.Value) []byte {
	if v == nil {
		return nil
	}
	return v.Content
}

// outputResult is the result an Output command completes its invocation with.
func outputResult(c *protocol.OutputCommand) *store.Result {
	if c.Failure != nil {
		return &store.Result{Failed: true, Code: c.Failure.Code, Message: c.Failure.Message}
	}
	return &store.Result{Value: valueOf(c.Value)}
}
