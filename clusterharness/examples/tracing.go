package examples

import (
	restate "github.com/restatedev/sdk-go"
	"go.opentelemetry.io/otel/trace"
)

// Traced is a stateless service whose handlers answer the trace context they run in, as
// "<trace id>-<span id>" ("" when the request carried none): tests check with it that
// the caller's trace reaches the handler, and, through chain (which calls whoami and answers
// "<its own>|<whoami's>"), the handler of a call.
func Traced() restate.ServiceDefinition {
	return restate.NewService("Traced").
		Handler("whoami", restate.NewServiceHandler(whoami)).
		Handler("chain", restate.NewServiceHandler(chain))
}

func chain(ctx restate.Context, _ restate.Void) (string, error) {
	mine, _ := whoami(ctx, restate.Void{})
	callee, err := restate.Service[string](ctx, "Traced", "whoami").Request(restate.Void{})
	if err != nil {
		return "", err
	}
	return mine + "|" + callee, nil
}

func whoami(ctx restate.Context, _ restate.Void) (string, error) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", nil
	}
	return sc.TraceID().String() + "-" + sc.SpanID().String(), nil
}
