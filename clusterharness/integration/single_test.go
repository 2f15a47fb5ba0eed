// Package integration runs the real sdk-go example services against a single node in
// this process.
package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
)

func startNode(t *testing.T) (*harness.Single, string) {
	t.Helper()
	uri := harness.StartExamples(t)
	n := harness.StartSingle(t, harness.TestConfig(t.TempDir()))
	harness.Register(t, n.AdminURL, uri)
	return n, uri
}

func call(t *testing.T, url, body string, headers map[string]string) *harness.Response {
	t.Helper()
	resp, err := harness.Send(http.MethodPost, url, body, headers)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp
}

func TestGreeterAndCounter(t *testing.T) {
	n, _ := startNode(t)
	resp := call(t, n.IngressURL+"/Greeter/greet", `"Sarah"`, nil)
	harness.Expect(t, resp, 200, `"Hello Sarah!"`)
	if !strings.HasPrefix(resp.Header.Get("x-restate-id"), "inv_1") {
		t.Errorf("x-restate-id = %q", resp.Header.Get("x-restate-id"))
	}
	if ct := resp.Header.Get("content-type"); ct != "application/json" {
		t.Errorf("content-type = %q", ct)
	}
	for i, want := range []string{"2", "5", "6"} {
		delta := []string{"2", "3", "1"}[i]
		harness.Expect(t, call(t, n.IngressURL+"/Counter/apples/add", delta, nil), 200, want)
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/apples/get", "", nil), 200, "6")
	harness.Expect(t, call(t, n.IngressURL+"/Counter/pears/get", "", nil), 200, "0")
}

func TestTerminalFailure(t *testing.T) {
	n, _ := startNode(t)
	resp := call(t, n.IngressURL+"/Greeter/fail", `"because"`, nil)
	if resp.Status != examples.GreeterFailCode {
		t.Fatalf("status %d, body %s", resp.Status, resp.Body)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatal(err)
	}
	if body["message"] != "refusing: because" || body["source"] != "invocation" || int(body["code"].(float64)) != examples.GreeterFailCode {
		t.Errorf("body = %s", resp.Body)
	}
	if resp.Header.Get("x-restate-error-source") != "invocation" {
		t.Errorf("x-restate-error-source = %q", resp.Header.Get("x-restate-error-source"))
	}
}

func TestRetriesUntilSuccess(t *testing.T) {
	n, _ := startNode(t)
	key := fmt.Sprintf("retry-%d", time.Now().UnixNano())
	resp := call(t, n.IngressURL+"/Flaky/attempt", `"`+key+`"`, nil)
	harness.Expect(t, resp, 200, fmt.Sprintf(`"%s succeeded on attempt %d"`, key, examples.FlakyFailures+1))
	if got := examples.FlakyAttempts(key); got != examples.FlakyFailures+1 {
		t.Errorf("attempts = %d", got)
	}
}

func TestRunAndSleepExecuteSideEffectOnce(t *testing.T) {
	n, _ := startNode(t)
	before := examples.NapSideEffects.Load()
	start := time.Now()
	resp := call(t, n.IngressURL+"/Sleeper/nap", `300`, nil)
	if resp.Status != 200 || !strings.HasPrefix(resp.Body, `"napped 300ms`) {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("returned after %v, before the sleep ended", elapsed)
	}
	if got := examples.NapSideEffects.Load() - before; got != 1 {
		t.Errorf("side effect ran %d times", got)
	}
}

func TestCallAndDelayedSend(t *testing.T) {
	n, _ := startNode(t)
	sku := fmt.Sprintf("sku-%d", time.Now().UnixNano())
	customer := "c-" + sku
	resp := call(t, n.IngressURL+"/Orders/place", fmt.Sprintf(`{"customer":%q,"sku":%q,"quantity":3,"reminderDelayMs":400}`, customer, sku), nil)
	if resp.Status != 200 {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	placed := time.Now()
	var receipt examples.Receipt
	if err := json.Unmarshal([]byte(resp.Body), &receipt); err != nil {
		t.Fatal(err)
	}
	if receipt.SoldTotal != 3 {
		t.Errorf("sold total %d", receipt.SoldTotal)
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/"+sku+"/get", "", nil), 200, "3")
	delivered := func() bool {
		for _, r := range examples.DeliveredReminders() {
			if r.Customer == customer {
				return true
			}
		}
		return false
	}
	// The reminder is due 400 ms after the handler scheduled it (receipt.ReminderAt, which
	// it journaled before the send), not after the order's answer arrived here: on a loaded
	// host the answer and the get above may take that long, and the reminder then comes
	// before the checks below, on time. Only a reminder seen before its time is early.
	reminderAt, err := time.Parse(time.RFC3339Nano, receipt.ReminderAt)
	if err != nil {
		t.Fatalf("receipt's reminderAt %q: %v", receipt.ReminderAt, err)
	}
	if delivered() && time.Now().Before(reminderAt) {
		t.Fatalf("reminder delivered %v before its time", time.Until(reminderAt))
	}
	harness.Eventually(t, 10*time.Second, "the delayed reminder", delivered)
	if now := time.Now(); now.Before(reminderAt) {
		t.Errorf("reminder came %v after the order, %v before its time (delay 400ms)", now.Sub(placed), reminderAt.Sub(now))
	}
}

func TestExclusiveHandlersAreSerializedPerKey(t *testing.T) {
	n, _ := startNode(t)
	const workers, adds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan string, workers*adds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < adds; i++ {
				resp, err := harness.Send(http.MethodPost, n.IngressURL+"/Counter/shared-key/add", "1", nil)
				if err != nil || resp.Status != 200 {
					errs <- fmt.Sprintf("%v %+v", err, resp)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/shared-key/get", "", nil), 200, fmt.Sprint(workers*adds))
}

func TestIdempotentCallRunsOnce(t *testing.T) {
	n, _ := startNode(t)
	h := map[string]string{"idempotency-key": "once"}
	first := call(t, n.IngressURL+"/Counter/idem/add", "5", h)
	harness.Expect(t, first, 200, "5")
	again := call(t, n.IngressURL+"/Counter/idem/add", "5", h)
	harness.Expect(t, again, 200, "5")
	if again.Header.Get("x-restate-id") != first.Header.Get("x-restate-id") {
		t.Errorf("ids differ: %s vs %s", first.Header.Get("x-restate-id"), again.Header.Get("x-restate-id"))
	}
	if again.Header.Get("idempotency-expires") == "" {
		t.Error("no idempotency-expires header on the repeated call")
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/idem/get", "", nil), 200, "5")
}

func TestSendAndPreviouslyAccepted(t *testing.T) {
	n, _ := startNode(t)
	h := map[string]string{"idempotency-key": "send-once"}
	resp := call(t, n.IngressURL+"/Counter/sent/add/send", "7", h)
	if resp.Status != 202 || !strings.Contains(resp.Body, `"status":"Accepted"`) {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	harness.Eventually(t, 10*time.Second, "the sent add", func() bool {
		return call(t, n.IngressURL+"/Counter/sent/get", "", nil).Body == "7"
	})
	resp = call(t, n.IngressURL+"/Counter/sent/add/send", "7", h)
	if resp.Status != 202 || !strings.Contains(resp.Body, `"status":"PreviouslyAccepted"`) {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/sent/get", "", nil), 200, "7")
}

// A delayed send repeated with its idempotency key and another delay answers with the
// execution time of the first, as Restate does (send_with_delay_and_idempotency_key).
func TestRepeatedDelayedSendAnswersTheFirstExecutionTime(t *testing.T) {
	n, _ := startNode(t)
	h := map[string]string{"idempotency-key": "d2"}
	var first, again struct {
		ExecutionTime string `json:"executionTime"`
		Status        string `json:"status"`
	}
	resp := call(t, n.IngressURL+"/Counter/d/add/send?delay=60s", "1", h)
	if err := json.Unmarshal([]byte(resp.Body), &first); resp.Status != 202 || err != nil || first.Status != "Accepted" || first.ExecutionTime == "" {
		t.Fatalf("first send: %d %s", resp.Status, resp.Body)
	}
	resp = call(t, n.IngressURL+"/Counter/d/add/send?delay=120s", "1", h)
	if err := json.Unmarshal([]byte(resp.Body), &again); resp.Status != 202 || err != nil || again.Status != "PreviouslyAccepted" {
		t.Fatalf("repeated send: %d %s", resp.Status, resp.Body)
	}
	if again.ExecutionTime != first.ExecutionTime {
		t.Fatalf("repeated send answered execution time %s, the first send's is %s", again.ExecutionTime, first.ExecutionTime)
	}
}

func TestDelayedSendViaIngress(t *testing.T) {
	n, _ := startNode(t)
	start := time.Now()
	resp := call(t, n.IngressURL+"/Counter/later/add/send?delay=500ms", "1", nil)
	var sent struct {
		ExecutionTime string `json:"executionTime"`
	}
	if resp.Status != 202 || json.Unmarshal([]byte(resp.Body), &sent) != nil || sent.ExecutionTime == "" {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	due, err := time.Parse(time.RFC3339Nano, sent.ExecutionTime)
	if err != nil {
		t.Fatalf("executionTime %q: %v", sent.ExecutionTime, err)
	}
	// Not yet applied, unless the get came after the add was due (a loaded host).
	if got := call(t, n.IngressURL+"/Counter/later/get", "", nil); got.Status != 200 || (got.Body != "0" && !(got.Body == "1" && !time.Now().Before(due))) {
		t.Fatalf("get before the delayed add was due: %d %s", got.Status, got.Body)
	}
	harness.Eventually(t, 10*time.Second, "the delayed add", func() bool {
		return call(t, n.IngressURL+"/Counter/later/get", "", nil).Body == "1"
	})
	if time.Since(start) < 450*time.Millisecond {
		t.Errorf("delayed add ran after %v", time.Since(start))
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)
	harness.Expect(t, call(t, n.IngressURL+"/Counter/durable/add", "41", nil), 200, "41")
	n.Node.Stop()

	n2 := harness.StartSingle(t, cfg)
	harness.Expect(t, call(t, n2.IngressURL+"/Counter/durable/add", "1", nil), 200, "42")
	harness.Expect(t, call(t, n2.IngressURL+"/Greeter/greet", `"again"`, nil), 200, `"Hello again!"`)
}

// TestHTTP2PriorKnowledge: the ingress and the admin API answer HTTP/2 cleartext with prior
// knowledge next to HTTP/1.1, as restate-server does; and //restate/health, which clients
// joining a base URL ending in / send, is the health check.
func TestHTTP2PriorKnowledge(t *testing.T) {
	n, _ := startNode(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protocols}, Timeout: 10 * time.Second}
	for _, url := range []string{n.IngressURL + "/restate/health", n.AdminURL + "/health", n.IngressURL + "//restate/health"} {
		resp, err := h2.Get(url)
		if err != nil {
			t.Fatalf("GET %s over h2c: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Errorf("GET %s over h2c: %d %s", url, resp.StatusCode, resp.Proto)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, n.IngressURL+"/Greeter/greet", strings.NewReader(`"h2"`))
	req.Header.Set("content-type", "application/json")
	resp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != `"Hello h2!"` {
		t.Errorf("greet over h2c: %d %s", resp.StatusCode, b)
	}
}
