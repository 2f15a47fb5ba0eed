// Package examples holds the example services that exercise the engine end to end: they are
// written with the official Restate Go SDK (github.com/restatedev/sdk-go), so anything that
// works against them works against unmodified Restate deployments.
//
// The services cover the features the engine must support: plain services (Greeter),
// virtual objects with state (Counter), service-to-service calls and delayed one-way sends
// (Orders, Reminders), durable side effects and timers (Sleeper), terminal failures
// (Greeter.fail) and retries after transient failures (Flaky).
//
// Handler names are registered explicitly in lowercase, so ingress paths look like
// /Greeter/greet and /Counter/{key}/add. Package-level counters (see stats.go) let in-process
// tests check how often side effects and retried attempts actually executed.
package examples
