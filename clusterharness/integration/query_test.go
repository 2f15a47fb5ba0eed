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
	"gorestate.dev/shared/rowscan"
)

type queryRows struct {
	Rows []map[string]any `json:"rows"`
}

func query(t *testing.T, n *harness.Single, sql string) queryRows {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": sql})
	resp := call(t, n.AdminURL+"/query", string(body), map[string]string{"accept": "application/json"})
	if resp.Status != 200 {
		t.Fatalf("query %q: %d %s", sql, resp.Status, resp.Body)
	}
	var out queryRows
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		t.Fatalf("query answer %s: %v", resp.Body, err)
	}
	return out
}

// TestQueryWhileWorkIsInFlight asks the SQL introspection about a suspended invocation and
// about virtual-object state while the invocation still waits.
func TestQueryWhileWorkIsInFlight(t *testing.T) {
	// Request/response mode: an invocation waiting on an awakeable suspends at once (in bidi
	// mode it would stay "running" until the inactivity timeout).
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.InactivityTimeout = config.Duration(0)
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)
	harness.Expect(t, call(t, n.IngressURL+"/Counter/q1/add", "3", nil), 200, "3")
	harness.Expect(t, call(t, n.IngressURL+"/Counter/q2/add", "4", nil), 200, "4")
	name := fmt.Sprintf("q-%d", time.Now().UnixNano())
	id := sendAndID(t, n.IngressURL+"/Approvals/request/send", `"`+name+`"`)
	harness.Eventually(t, 10*time.Second, "the approval to suspend", func() bool {
		rows := query(t, n, "select id, target, status from sys_invocation where status = 'suspended'").Rows
		return len(rows) == 1 && rows[0]["id"] == id
	})
	rows := query(t, n, "select id, target, status from sys_invocation where status = 'suspended'").Rows
	if rows[0]["target"] != "Approvals/request" || rows[0]["status"] != "suspended" {
		t.Fatalf("suspended row %v", rows[0])
	}
	state := query(t, n, "select service_key, value_utf8 from state where service_name = 'Counter' order by service_key").Rows
	if len(state) != 2 || state[0]["service_key"] != "q1" || state[0]["value_utf8"] != "3" || state[1]["value_utf8"] != "4" {
		t.Fatalf("state rows %v", state)
	}
	count := query(t, n, "select count(*) from sys_invocation").Rows
	if len(count) != 1 {
		t.Fatalf("count rows %v", count)
	}
	bad := call(t, n.AdminURL+"/query", `{"query":"select nope from"}`, map[string]string{"accept": "application/json"})
	if bad.Status != 400 || !strings.Contains(bad.Body, "message") {
		t.Fatalf("bad SQL: %d %s", bad.Status, bad.Body)
	}
	harness.Expect(t, call(t, n.IngressURL+"/restate/a/"+examples.AwakeableFor(name)+"/resolve", `"ok"`, nil), 202, "")
	harness.Expect(t, get(t, n.IngressURL+"/restate/attach/"+id), 200, `"approved: ok"`)
}

// TestQueryShowsRetries sees a failing invocation's retries in sys_invocation while the
// invoker backs off between attempts.
func TestQueryShowsRetries(t *testing.T) {
	n, _ := startNode(t)
	key := fmt.Sprintf("retry-q-%d", time.Now().UnixNano())
	id := sendAndID(t, n.IngressURL+"/Flaky/attempt/send", `"`+key+`"`)
	var seen map[string]any
	harness.Eventually(t, 10*time.Second, "a retry in sys_invocation", func() bool {
		rows := query(t, n, "select status, retry_count, last_failure, next_retry_at from sys_invocation where id = '"+id+"'").Rows
		// retry_count counts the attempts started, the first one included, as in Restate;
		// the failure shows once an attempt failed.
		if len(rows) == 1 && rows[0]["last_failure"] != nil && rows[0]["retry_count"] != nil {
			seen = rows[0]
			return true
		}
		return false
	})
	if !strings.Contains(fmt.Sprint(seen["last_failure"]), "fails on purpose") {
		t.Fatalf("row %v", seen)
	}
	harness.Eventually(t, 10*time.Second, "the retried invocation to finish", func() bool {
		return examples.FlakyAttempts(key) == examples.FlakyFailures+1
	})
}

// TestQueryShowsRetriesOfAPausedInvocation: an invocation paused while it waits to retry
// keeps the invoker's view of its attempts in sys_invocation, as restate-server 1.7.12 shows
// it (status paused, retry_count, last_failure with its RT0007, next_retry_at), and after the
// resume retry_count goes on counting. We showed none of it while paused.
func TestQueryShowsRetriesOfAPausedInvocation(t *testing.T) {
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	cfg.DefaultRetryPolicy.InitialInterval = config.Duration(time.Hour)
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)
	key := fmt.Sprintf("paused-q-%d", time.Now().UnixNano())
	id := sendAndID(t, n.IngressURL+"/Flaky/attempt/send", `"`+key+`"`)
	const cols = "select status, retry_count, last_failure, last_failure_error_code, next_retry_at, last_attempt_deployment_id from sys_invocation where id = '"
	harness.Eventually(t, 10*time.Second, "the invocation to back off", func() bool {
		rows := query(t, n, cols+id+"'").Rows
		return len(rows) == 1 && rows[0]["status"] == "backing-off"
	})
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/pause"); r.Status != 202 {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	var row map[string]any
	harness.Eventually(t, 10*time.Second, "the invocation to show as paused", func() bool {
		rows := query(t, n, cols+id+"'").Rows
		row = rows[0]
		return row["status"] == "paused"
	})
	failure := fmt.Sprintf("[500 Internal] flaky %q: attempt 1 of 3 fails on purpose\ngoroutine ", key)
	if row["retry_count"] != 1.0 || !strings.HasPrefix(fmt.Sprint(row["last_failure"]), failure) ||
		row["last_failure_error_code"] != "RT0007" || row["next_retry_at"] == nil || row["last_attempt_deployment_id"] == nil {
		t.Fatalf("paused row %v", row)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/resume"); r.Status != 200 {
		t.Fatalf("resume: %d %s", r.Status, r.Body)
	}
	harness.Eventually(t, 10*time.Second, "the second attempt to fail", func() bool {
		row = query(t, n, cols+id+"'").Rows[0]
		return row["status"] == "backing-off" && strings.Contains(fmt.Sprint(row["last_failure"]), "attempt 2 of 3")
	})
	if row["retry_count"] != 2.0 {
		t.Fatalf("row after the resume %v, want retry_count 2", row)
	}
}

// TestQueryBeyondTheRowBudget: a query whose rows would pass the worker's budget
// (rowscan.MaxBytes) gets an error that says so, as Restate answers a query its engine has
// no memory for, instead of loading them; a narrower one still answers.
func TestQueryBeyondTheRowBudget(t *testing.T) {
	n, _ := startNode(t)
	for i := range 30 {
		call(t, n.IngressURL+"/Greeter/greet", fmt.Sprintf(`"n%d"`, i), nil)
	}
	old := rowscan.MaxBytes
	rowscan.MaxBytes = 4 << 10
	defer func() { rowscan.MaxBytes = old }()
	body, _ := json.Marshal(map[string]string{"query": "select * from sys_invocation"})
	resp := call(t, n.AdminURL+"/query", string(body), map[string]string{"accept": "application/json"})
	if resp.Status != 500 || !strings.Contains(resp.Body, "resources exhausted") {
		t.Fatalf("every invocation over a 4 KiB budget: %d %s", resp.Status, resp.Body)
	}
	if rows := query(t, n, "select id from sys_invocation limit 2").Rows; len(rows) != 2 {
		t.Fatalf("with a limit: %v", rows)
	}
}
