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
	// As restate-server 1.7.12 answers: the last attempt's failure, with the SDK's
	// stacktrace, and nothing of ours around it.
	var body struct {
		Code                        int
		Message, Stacktrace, Source string
	}
	failure := fmt.Sprintf("flaky %q: attempt 2 of 3 fails on purpose", key)
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.Status != 500 || body.Code != 500 ||
		body.Message != failure || !strings.HasPrefix(body.Stacktrace, "goroutine ") || body.Source != "invocation" {
		t.Fatalf("got %d %s, want the second attempt's failure", resp.Status, resp.Body)
	}
	if got := examples.FlakyAttempts(key); got != 2 {
		t.Errorf("%d attempts, want 2", got)
	}
	id := resp.Header.Get("x-restate-id")
	journalRetention(t, n, id, "PT7200S")
	rows := query(t, n, fmt.Sprintf("select completion_result, completion_failure, last_failure from sys_invocation where id = '%s'", id)).Rows
	if len(rows) != 1 || rows[0]["completion_result"] != "failure" || rows[0]["completion_failure"] != "[500] "+failure || rows[0]["last_failure"] != nil {
		t.Errorf("sys_invocation of %s: %v, want completed with [500] %s", id, rows, failure)
	}
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
