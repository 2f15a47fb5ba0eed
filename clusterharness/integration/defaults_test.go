package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/shared/config"
)

// TestConfiguredServiceDefaults runs what the README's configuration promises for services
// that set nothing themselves, as restate-server 1.7.12 does it: with [default-retry-policy]
// max-attempts = 2 and on-max-attempts = "kill", Flaky (which fails twice) is killed after its
// second attempt, and default-journal-retention = "2h" is its invocations' journal retention.
// After a restart with another configuration the services registered before follow it.
func TestConfiguredServiceDefaults(t *testing.T) {
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	cfg.DefaultRetryPolicy = config.RetryPolicy{InitialInterval: config.Duration(10 * time.Millisecond), ExponentiationFactor: 1,
		MaxAttempts: 2, OnMaxAttempts: "kill", MaxInterval: config.Duration(10 * time.Millisecond)}
	cfg.DefaultJournalRetention = config.Duration(2 * time.Hour)
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)

	key := fmt.Sprintf("killed-%d", time.Now().UnixNano())
	resp := call(t, n.IngressURL+"/Flaky/attempt", `"`+key+`"`, nil)
	if resp.Status != 500 || !strings.Contains(resp.Body, "attempt 2 of 3 fails on purpose") {
		t.Fatalf("got %d %s, want the second attempt's failure", resp.Status, resp.Body)
	}
	if got := examples.FlakyAttempts(key); got != 2 {
		t.Errorf("%d attempts, want 2", got)
	}
	journalRetention(t, n, resp.Header.Get("x-restate-id"), "PT7200S")
	n.Node.Stop()

	cfg.DefaultRetryPolicy.MaxAttempts = 3
	cfg.DefaultJournalRetention = config.Duration(3 * time.Hour)
	n = harness.StartSingle(t, cfg)
	key = fmt.Sprintf("retried-%d", time.Now().UnixNano())
	resp = call(t, n.IngressURL+"/Flaky/attempt", `"`+key+`"`, nil)
	harness.Expect(t, resp, 200, fmt.Sprintf(`"%s succeeded on attempt 3"`, key))
	journalRetention(t, n, resp.Header.Get("x-restate-id"), "PT10800S")
}

func journalRetention(t *testing.T, n *harness.Single, id, want string) {
	t.Helper()
	rows := query(t, n, fmt.Sprintf("select journal_retention from sys_invocation where id = '%s'", id)).Rows
	if len(rows) != 1 || rows[0]["journal_retention"] != want {
		t.Errorf("sys_invocation of %s: %v, want journal_retention %s", id, rows, want)
	}
}
