package examples

import (
	restate "github.com/restatedev/sdk-go"
)

// CounterStateKey is the state entry that holds a Counter's value.
const CounterStateKey = "count"

// Counter is a virtual object keyed by counter name. add and reset are exclusive, so the
// engine must serialise them per key; get is shared and may run alongside them.
func Counter() restate.ServiceDefinition {
	return restate.NewObject("Counter").
		Handler("add", restate.NewObjectHandler(counterAdd)).
		Handler("get", restate.NewObjectSharedHandler(counterGet)).
		Handler("reset", restate.NewObjectHandler(counterReset))
}

func counterAdd(ctx restate.ObjectContext, delta int64) (int64, error) {
	count, err := restate.Get[int64](ctx, CounterStateKey)
	if err != nil {
		return 0, err
	}
	count += delta
	restate.Set(ctx, CounterStateKey, count)
	return count, nil
}

func counterGet(ctx restate.ObjectSharedContext, _ restate.Void) (int64, error) {
	return restate.Get[int64](ctx, CounterStateKey)
}

func counterReset(ctx restate.ObjectContext, _ restate.Void) (restate.Void, error) {
	restate.Clear(ctx, CounterStateKey)
	return restate.Void{}, nil
}
