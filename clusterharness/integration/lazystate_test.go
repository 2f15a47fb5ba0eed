package integration

import (
	"testing"

	"gorestate.dev/clusterharness/harness"
)

// TestLazyState runs virtual-object handlers with disable-eager-state: the StartMessage
// carries no state and the SDK reads each key with GetLazyState.
func TestLazyState(t *testing.T) {
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.DisableEagerState = true
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)
	harness.Expect(t, call(t, n.IngressURL+"/Counter/lazy/get", "", nil), 200, "0")
	harness.Expect(t, call(t, n.IngressURL+"/Counter/lazy/add", "4", nil), 200, "4")
	harness.Expect(t, call(t, n.IngressURL+"/Counter/lazy/add", "5", nil), 200, "9")
	harness.Expect(t, call(t, n.IngressURL+"/Counter/lazy/get", "", nil), 200, "9")
}
