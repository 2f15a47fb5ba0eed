package examples

import (
	"fmt"
	"time"

	restate "github.com/restatedev/sdk-go"
)

// The services of the mixed benchmark workload (clusterharness/bench/mixed.go): a program
// on a virtual object that uses most of what an engine offers, so that many invocations
// with different needs are in flight at once.

// Program is the input of MixedProgram.run.
type Program struct {
	// Account is the MixedAccount object the program calls (the layer below it).
	Account string `json:"account"`
	SleepMs int64  `json:"sleepMs"`
	// DelayMs delays the one-way send the program ends with.
	DelayMs int64 `json:"delayMs"`
}

// MixedProgram runs a program: object state, a side effect, a call through two layers
// (MixedAccount, then the MixedWorker service), a durable sleep, an awakeable that another
// invocation (MixedResolver) resolves, and a delayed one-way send. get answers how many
// programs ran on the object (the chaos test checks it against the runs it was answered).
func MixedProgram() restate.ServiceDefinition {
	return restate.NewObject("MixedProgram").
		Handler("run", restate.NewObjectHandler(mixedRun)).
		Handler("get", restate.NewObjectSharedHandler(mixedRuns))
}

// MixedAccount is the middle layer: object state and a call to a service.
func MixedAccount() restate.ServiceDefinition {
	return restate.NewObject("MixedAccount").
		Handler("touch", restate.NewObjectHandler(mixedTouch))
}

// MixedWorker is the bottom layer: a stateless service with a side effect.
func MixedWorker() restate.ServiceDefinition {
	return restate.NewService("MixedWorker").
		Handler("work", restate.NewServiceHandler(mixedWork))
}

// MixedResolver resolves the awakeable a program waits on.
func MixedResolver() restate.ServiceDefinition {
	return restate.NewService("MixedResolver").
		Handler("resolve", restate.NewServiceHandler(mixedResolve))
}

func mixedRun(ctx restate.ObjectContext, p Program) (string, error) {
	runs, err := restate.Get[int64](ctx, "runs")
	if err != nil {
		return "", err
	}
	restate.Set(ctx, "runs", runs+1)
	stamp, err := restate.Run(ctx, func(restate.RunContext) (int64, error) { return time.Now().UnixNano(), nil })
	if err != nil {
		return "", err
	}
	total, err := restate.Object[int64](ctx, "MixedAccount", p.Account, "touch").Request(stamp % 7)
	if err != nil {
		return "", err
	}
	if p.SleepMs > 0 {
		if err := restate.Sleep(ctx, time.Duration(p.SleepMs)*time.Millisecond); err != nil {
			return "", err
		}
	}
	a := restate.Awakeable[string](ctx)
	restate.ServiceSend(ctx, "MixedResolver", "resolve").Send(a.Id())
	verdict, err := a.Result()
	if err != nil {
		return "", err
	}
	restate.ObjectSend(ctx, "MixedAccount", p.Account, "touch").Send(int64(1), restate.WithDelay(time.Duration(p.DelayMs)*time.Millisecond))
	return fmt.Sprintf("run %d: total %d, %s", runs+1, total, verdict), nil
}

func mixedRuns(ctx restate.ObjectSharedContext, _ restate.Void) (int64, error) {
	return restate.Get[int64](ctx, "runs")
}

func mixedTouch(ctx restate.ObjectContext, n int64) (int64, error) {
	total, err := restate.Get[int64](ctx, "total")
	if err != nil {
		return 0, err
	}
	worked, err := restate.Service[int64](ctx, "MixedWorker", "work").Request(n)
	if err != nil {
		return 0, err
	}
	total += worked
	restate.Set(ctx, "total", total)
	return total, nil
}

func mixedWork(ctx restate.Context, n int64) (int64, error) {
	return restate.Run(ctx, func(restate.RunContext) (int64, error) { return n + 1, nil })
}

func mixedResolve(ctx restate.Context, awakeableID string) (string, error) {
	restate.ResolveAwakeable(ctx, awakeableID, "ok")
	return "resolved", nil
}
