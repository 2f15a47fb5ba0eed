package examples

import (
	"fmt"

	restate "github.com/restatedev/sdk-go"
)

// FlakyFailures is how many attempts of Flaky.attempt fail, per key, before one succeeds.
const FlakyFailures = 2

// Flaky fails with a plain (retryable) error on the first FlakyFailures attempts for each
// key and succeeds afterwards, so the engine's retry loop has something to do.
func Flaky() restate.ServiceDefinition {
	return restate.NewService("Flaky").
		Handler("attempt", restate.NewServiceHandler(flakyAttempt))
}

func flakyAttempt(_ restate.Context, key string) (string, error) {
	n := recordFlakyAttempt(key)
	if n <= FlakyFailures {
		return "", fmt.Errorf("flaky %q: attempt %d of %d fails on purpose", key, n, FlakyFailures+1)
	}
	return fmt.Sprintf("%s succeeded on attempt %d", key, n), nil
}
