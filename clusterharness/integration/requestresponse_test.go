package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/shared/config"
)

// TestRequestResponseMode runs the examples with inactivity-timeout = 0: the invoker closes
// its request stream right after the replay, so the SDK suspends at every await and every
// step resumes through a new attempt that replays the journal.
func TestRequestResponseMode(t *testing.T) {
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.InactivityTimeout = config.Duration(0)
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)

	before := examples.NapSideEffects.Load()
	resp := call(t, n.IngressURL+"/Sleeper/nap", `100`, nil)
	if resp.Status != 200 || !strings.HasPrefix(resp.Body, `"napped 100ms`) {
		t.Fatalf("nap: %d %s", resp.Status, resp.Body)
	}
	if got := examples.NapSideEffects.Load() - before; got != 1 {
		t.Errorf("side effect ran %d times across suspensions", got)
	}

	sku := fmt.Sprintf("rr-%d", time.Now().UnixNano())
	resp = call(t, n.IngressURL+"/Orders/place", fmt.Sprintf(`{"customer":"rr","sku":%q,"quantity":2,"reminderDelayMs":50}`, sku), nil)
	if resp.Status != 200 {
		t.Fatalf("place: %d %s", resp.Status, resp.Body)
	}
	var receipt examples.Receipt
	if err := json.Unmarshal([]byte(resp.Body), &receipt); err != nil || receipt.SoldTotal != 2 {
		t.Fatalf("receipt %s (%v)", resp.Body, err)
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/"+sku+"/add", "1", nil), 200, "3")
}
