package examples

import (
	restate "github.com/restatedev/sdk-go"
	"go.opentelemetry.io/otel/trace"
)

// Traced is a stateless service whose handler answers the trace context it runs in, as
// "<trace id>-<span id>" ("" when the request carried none): tests check with it that
// the caller's trace reaches the handler.
func Traced() restate.ServiceDefinition {
	return restate.NewService("Traced").
		Handler("whoami", restate.NewServiceHandler(whoami))
}

func whoami(ctx restate.Context, _ restate.Void) (string, error) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", nil
	}
	return sc.TraceID().String() + "-" + sc.SpanID().String(), nil
}
