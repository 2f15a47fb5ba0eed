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
