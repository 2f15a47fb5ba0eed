package examples

import (
	"errors"
	"fmt"

	restate "github.com/restatedev/sdk-go"
)

// GreeterFailCode is the status of the terminal error that Greeter.fail returns; 418 is
// unusual enough that a test seeing it knows the code travelled through the engine intact.
const GreeterFailCode = 418

// Greeter is a stateless service: greet answers at once, fail always fails terminally.
func Greeter() restate.ServiceDefinition {
	return restate.NewService("Greeter").
		Handler("greet", restate.NewServiceHandler(greet)).
		Handler("fail", restate.NewServiceHandler(fail))
}

func greet(_ restate.Context, name string) (string, error) {
	return fmt.Sprintf("Hello %s!", name), nil
}

// fail returns a terminal error, which the engine must hand back to the caller as the
// invocation's result instead of retrying.
func fail(_ restate.Context, reason string) (string, error) {
	if reason == "" {
		reason = "no reason given"
	}
	return "", restate.ToTerminalError(errors.New("refusing: "+reason), restate.WithErrorCode(GreeterFailCode))
}
