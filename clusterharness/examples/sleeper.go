package examples

import (
	"fmt"
	"time"

	restate "github.com/restatedev/sdk-go"
)

// Sleeper exercises durable side effects and timers: nap journals a side effect, then
// sleeps on a durable timer, which lets the engine suspend the invocation and resume it.
func Sleeper() restate.ServiceDefinition {
	return restate.NewService("Sleeper").
		Handler("nap", restate.NewServiceHandler(nap))
}

func nap(ctx restate.Context, ms int) (string, error) {
	if ms < 0 {
		return "", restate.ToTerminalError(fmt.Errorf("cannot nap for %d ms", ms), restate.WithErrorCode(400))
	}
	// NapSideEffects must rise by one per invocation even though nap is replayed after
	// the sleep: the journaled result is reused instead of running the closure again.
	ticket, err := restate.Run(ctx, func(restate.RunContext) (int64, error) {
		return NapSideEffects.Add(1), nil
	})
	if err != nil {
		return "", err
	}
	if err := restate.Sleep(ctx, time.Duration(ms)*time.Millisecond); err != nil {
		return "", err
	}
	return fmt.Sprintf("napped %dms (ticket %d)", ms, ticket), nil
}
