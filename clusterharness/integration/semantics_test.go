package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/shared/config"
)

func get(t *testing.T, url string) *harness.Response {
	t.Helper()
	resp, err := harness.Send(http.MethodGet, url, "", nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

func patch(t *testing.T, url string) *harness.Response {
	t.Helper()
	resp, err := harness.Send(http.MethodPatch, url, "", nil)
	if err != nil {
		t.Fatalf("PATCH %s: %v", url, err)
	}
	return resp
}

// sendAndID sends a one-way invocation and returns its id.
func sendAndID(t *testing.T, url, body string) string {
	t.Helper()
	resp := call(t, url, body, nil)
	if resp.Status != 202 {
		t.Fatalf("send %s: %d %s", url, resp.Status, resp.Body)
	}
	return resp.Header.Get("x-restate-id")
}

func workflowScenario(t *testing.T, n *harness.Single) {
	key := fmt.Sprintf("ann-%d", time.Now().UnixNano())
	wf := n.IngressURL + "/Signup/" + key
	resp := call(t, wf+"/run/send", `"ann@example.com"`, nil)
	if resp.Status != 202 {
		t.Fatalf("run send: %d %s", resp.Status, resp.Body)
	}
	// A second run of the same workflow key is refused; a second send is deduplicated.
	if again := call(t, wf+"/run/send", `"ann@example.com"`, nil); again.Status != 202 || !strings.Contains(again.Body, "PreviouslyAccepted") {
		t.Fatalf("second send: %d %s", again.Status, again.Body)
	}
	if again := call(t, wf+"/run", `"ann@example.com"`, nil); again.Status != 409 || !strings.Contains(again.Body, "the workflow method was already invoked") {
		t.Fatalf("second call: %d %s", again.Status, again.Body)
	}
	out := n.IngressURL + "/restate/workflow/Signup/" + key + "/output"
	if r := get(t, out); r.Status != 470 {
		t.Fatalf("output before completion: %d %s", r.Status, r.Body)
	}
	harness.Expect(t, call(t, wf+"/status", "", nil), 200, `"pending"`)
	harness.Expect(t, call(t, wf+"/confirm", `"c0de"`, nil), 200, `"confirmed"`)
	attach := get(t, n.IngressURL+"/restate/workflow/Signup/"+key+"/attach")
	harness.Expect(t, attach, 200, `"welcome ann@example.com (confirmed with c0de)"`)
	harness.Expect(t, get(t, out), 200, `"welcome ann@example.com (confirmed with c0de)"`)
	harness.Expect(t, call(t, wf+"/status", "", nil), 200, `"confirmed with c0de"`)
	// Resolving a completed promise is a terminal failure of the handler.
	if r := call(t, wf+"/confirm", `"again"`, nil); r.Status != 409 || !strings.Contains(r.Body, "promise was already completed") {
		t.Fatalf("second confirm: %d %s", r.Status, r.Body)
	}
}

func TestWorkflowWithPromise(t *testing.T) {
	n, _ := startNode(t)
	workflowScenario(t, n)
}

func TestWorkflowWithPromiseRequestResponse(t *testing.T) {
	uri := harness.StartExamples(t)
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.InactivityTimeout = config.Duration(0)
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)
	workflowScenario(t, n)
}

func TestAwakeableResolvedOverIngress(t *testing.T) {
	n, _ := startNode(t)
	for _, tc := range []struct{ path, op, body, want string }{
		{"/restate/awakeables/", "resolve", `"yes"`, `"approved: yes"`},
		{"/restate/a/", "resolve", `"short form"`, `"approved: short form"`},
	} {
		name := fmt.Sprintf("req-%s-%d", tc.op, time.Now().UnixNano())
		id := sendAndID(t, n.IngressURL+"/Approvals/request/send", `"`+name+`"`)
		var awk string
		harness.Eventually(t, 10*time.Second, "the awakeable id", func() bool { awk = examples.AwakeableFor(name); return awk != "" })
		if !strings.HasPrefix(awk, "sign_1") {
			t.Fatalf("awakeable id %q", awk)
		}
		resp := call(t, n.IngressURL+tc.path+awk+"/"+tc.op, tc.body, nil)
		if resp.Status != 202 {
			t.Fatalf("%s: %d %s", tc.op, resp.Status, resp.Body)
		}
		harness.Expect(t, get(t, n.IngressURL+"/restate/invocation/"+id+"/attach"), 200, tc.want)
	}
	// Rejecting fails the waiting handler with the text.
	name := fmt.Sprintf("rej-%d", time.Now().UnixNano())
	id := sendAndID(t, n.IngressURL+"/Approvals/request/send", `"`+name+`"`)
	harness.Eventually(t, 10*time.Second, "the awakeable id", func() bool { return examples.AwakeableFor(name) != "" })
	harness.Expect(t, call(t, n.IngressURL+"/restate/a/"+examples.AwakeableFor(name)+"/reject", "no way", map[string]string{"content-type": "text/plain"}), 202, "")
	resp := get(t, n.IngressURL+"/restate/attach/"+id)
	if resp.Status != 500 || !strings.Contains(resp.Body, "no way") {
		t.Fatalf("rejected: %d %s", resp.Status, resp.Body)
	}
	if r := call(t, n.IngressURL+"/restate/a/not-an-id/resolve", `1`, nil); r.Status != 400 {
		t.Fatalf("bad awakeable id: %d %s", r.Status, r.Body)
	}
}

func TestAttachAndOutputForms(t *testing.T) {
	n, _ := startNode(t)
	h := map[string]string{"idempotency-key": "attach-me"}
	resp := call(t, n.IngressURL+"/Sleeper/nap/send", `300`, h)
	id := resp.Header.Get("x-restate-id")
	if resp.Status != 202 || id == "" {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	// As restate-server 1.7.12 answers it (observed 2026-12-06): JSON from the ingress,
	// without the invocation's id in x-restate-id.
	if r := get(t, n.IngressURL+"/restate/invocation/"+id+"/output"); r.Status != 470 || r.Header.Get("x-restate-id") != "" ||
		r.Header.Get("x-restate-error-source") != "ingress" || r.Header.Get("content-type") != "application/json" {
		t.Fatalf("output while running: %d %v %s", r.Status, r.Header, r.Body)
	}
	want := ""
	for _, path := range []string{
		"/restate/invocation/" + id + "/attach",
		"/restate/attach/" + id,
		"/restate/invocation/Sleeper/nap/attach-me/attach",
		"/restate/invocation/" + id + "/output",
		"/restate/output/" + id,
		"/restate/invocation/Sleeper/nap/attach-me/output",
	} {
		r := get(t, n.IngressURL+path)
		if r.Status != 200 || !strings.HasPrefix(r.Body, `"napped 300ms`) {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		if want == "" {
			want = r.Body
		} else if r.Body != want {
			t.Fatalf("%s: %s, want %s", path, r.Body, want)
		}
	}
	for _, body := range []string{
		`{"target":"invocation","invocationId":"` + id + `"}`,
		`{"target":"idempotentInvocation","service":"Sleeper","handler":"nap","idempotencyKey":"attach-me"}`,
	} {
		harness.Expect(t, call(t, n.IngressURL+"/restate/attach", body, nil), 200, want)
		harness.Expect(t, call(t, n.IngressURL+"/restate/output", body, nil), 200, want)
	}
	lookup := call(t, n.IngressURL+"/restate/lookup", `{"target":"idempotentInvocation","service":"Sleeper","handler":"nap","idempotencyKey":"attach-me"}`, nil)
	harness.Expect(t, lookup, 200, `{"invocationId":"`+id+`"}`)
	if r := get(t, n.IngressURL+"/restate/invocation/inv_1nope/attach"); r.Status != 400 {
		t.Fatalf("bad id: %d %s", r.Status, r.Body)
	}

	// An object's key may be empty; the idempotent forms still find its call.
	resp = call(t, n.IngressURL+"/Counter//add", `2`, map[string]string{"idempotency-key": "ek"})
	if resp.Status != 200 || resp.Body != "2" {
		t.Fatalf("add to the empty key: %d %s", resp.Status, resp.Body)
	}
	id = resp.Header.Get("x-restate-id")
	harness.Expect(t, get(t, n.IngressURL+"/restate/invocation/Counter//add/ek/output"), 200, "2")
	harness.Expect(t, get(t, n.IngressURL+"/restate/invocation/Counter//add/ek/attach"), 200, "2")
	target := `{"target":"idempotentInvocation","service":"Counter","key":"","handler":"add","idempotencyKey":"ek"}`
	harness.Expect(t, call(t, n.IngressURL+"/restate/output", target, nil), 200, "2")
	harness.Expect(t, call(t, n.IngressURL+"/restate/lookup", target, nil), 200, `{"invocationId":"`+id+`"}`)
}

func TestCancelSleepingCallChain(t *testing.T) {
	n, _ := startNode(t)
	id := sendAndID(t, n.IngressURL+"/Chain/start/send", `60000`)
	harness.Eventually(t, 10*time.Second, "the chain to wait on its nap", func() bool {
		return len(query(t, n, "select id from sys_invocation where target = 'Sleeper/nap'").Rows) == 1
	})
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/cancel"); r.Status != 202 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	start := time.Now()
	resp := get(t, n.IngressURL+"/restate/invocation/"+id+"/attach")
	if resp.Status != 409 || !strings.Contains(resp.Body, "Cancelled") {
		t.Fatalf("cancelled chain: %d %s", resp.Status, resp.Body)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("cancellation took %v", time.Since(start))
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/cancel"); r.Status != 404 && r.Status != 409 {
		t.Fatalf("cancel of a finished invocation: %d %s", r.Status, r.Body)
	}
}

func TestKillAndPurge(t *testing.T) {
	n, _ := startNode(t)
	h := map[string]string{"idempotency-key": "kill-me"}
	resp := call(t, n.IngressURL+"/Sleeper/nap/send", `60000`, h)
	id := resp.Header.Get("x-restate-id")
	harness.Eventually(t, 10*time.Second, "the nap to run", func() bool {
		rows := query(t, n, "select status from sys_invocation where id = '"+id+"'").Rows
		return len(rows) == 1 && (rows[0]["status"] == "running" || rows[0]["status"] == "suspended")
	})
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/purge"); r.Status != 409 || !strings.Contains(r.Body, "is not yet completed") {
		t.Fatalf("purge of a running invocation: %d %s", r.Status, r.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/pause"); r.Status != 202 {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	harness.Eventually(t, 10*time.Second, "the invocation to show as paused", func() bool {
		rows := query(t, n, "select status from sys_invocation where id = '"+id+"'").Rows
		return len(rows) == 1 && rows[0]["status"] == "paused"
	})
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/pause"); r.Status != 200 {
		t.Fatalf("pause of a paused invocation: %d %s", r.Status, r.Body) // as restate-server 1.7.12
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/resume"); r.Status != 200 {
		t.Fatalf("resume: %d %s", r.Status, r.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/kill"); r.Status != 200 {
		t.Fatalf("kill: %d %s", r.Status, r.Body)
	}
	out := get(t, n.IngressURL+"/restate/invocation/"+id+"/output")
	if out.Status != 409 || !strings.Contains(out.Body, "killed") {
		t.Fatalf("killed output: %d %s", out.Status, out.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/kill"); r.Status != 409 || !strings.Contains(r.Body, "was already completed.") {
		t.Fatalf("second kill: %d %s", r.Status, r.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/purge"); r.Status != 200 {
		t.Fatalf("purge: %d %s", r.Status, r.Body)
	}
	if r := get(t, n.IngressURL+"/restate/invocation/"+id+"/output"); r.Status != 404 || r.Body != `{"code":404,"message":"invocation not found","source":"ingress"}` {
		t.Fatalf("output after purge: %d %s", r.Status, r.Body)
	}
	if r := get(t, n.IngressURL+"/restate/invocation/"+id+"/attach"); r.Status != 404 || r.Body != `{"code":404,"message":"not found","source":"invocation"}` {
		t.Fatalf("attach after purge: %d %s", r.Status, r.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/purge"); r.Status != 404 || !strings.Contains(r.Body, "does not exist") {
		t.Fatalf("purge of a purged invocation: %d %s", r.Status, r.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/not-an-id/kill"); r.Status != 400 {
		t.Fatalf("bad id: %d %s", r.Status, r.Body)
	}
	// The deprecated DELETE answers 202 whatever it finds, as restate-server 1.7.12.
	if r, err := harness.Send(http.MethodDelete, n.AdminURL+"/invocations/"+id+"?mode=kill", "", nil); err != nil || r.Status != 202 {
		t.Fatalf("DELETE of a purged invocation: %v %+v", err, r)
	}
}

// TestCommandsBetweenInvocations drives awakeable completion, attach and cancel from
// handlers (CompleteAwakeable, AttachInvocation and SendSignal commands).
func TestCommandsBetweenInvocations(t *testing.T) {
	n, _ := startNode(t)
	name := fmt.Sprintf("cmd-%d", time.Now().UnixNano())
	// With an idempotency key the result is kept after completion, so it can be attached to
	// afterwards (plain invocations are dropped once they completed).
	resp := call(t, n.IngressURL+"/Approvals/request/send", `"`+name+`"`, map[string]string{"idempotency-key": name})
	waiting := resp.Header.Get("x-restate-id")
	harness.Eventually(t, 10*time.Second, "the awakeable id", func() bool { return examples.AwakeableFor(name) != "" })
	// Control.attach waits (AttachInvocation) until Control.resolve completes the awakeable.
	attacher := sendAndID(t, n.IngressURL+"/Control/attach/send", `"`+waiting+`"`)
	harness.Expect(t, call(t, n.IngressURL+"/Control/resolve", `"`+examples.AwakeableFor(name)+`"`, nil), 200, `"resolved"`)
	harness.Expect(t, get(t, n.IngressURL+"/restate/attach/"+attacher), 200, `"approved: by service"`)
	harness.Expect(t, get(t, n.IngressURL+"/restate/attach/"+waiting), 200, `"approved: by service"`)

	sleeper := sendAndID(t, n.IngressURL+"/Sleeper/nap/send", `60000`)
	harness.Expect(t, call(t, n.IngressURL+"/Control/cancel", `"`+sleeper+`"`, nil), 200, `"cancelled"`)
	resp = get(t, n.IngressURL+"/restate/attach/"+sleeper)
	if resp.Status != 409 || !strings.Contains(resp.Body, "Cancelled") {
		t.Fatalf("cancelled by a handler: %d %s", resp.Status, resp.Body)
	}
}

// TestKillReachesChildCalls kills a chain while it waits on a call: the callee is killed
// too, since nobody would ever read its result.
func TestKillReachesChildCalls(t *testing.T) {
	n, _ := startNode(t)
	resp := call(t, n.IngressURL+"/Chain/start/send", `60000`, map[string]string{"idempotency-key": "chain-kill"})
	id := resp.Header.Get("x-restate-id")
	naps := func() int {
		return len(query(t, n, "select id from sys_invocation where target = 'Sleeper/nap'").Rows)
	}
	harness.Eventually(t, 10*time.Second, "the chain to call Sleeper/nap", func() bool { return naps() == 1 })
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/kill"); r.Status != 200 {
		t.Fatalf("kill: %d %s", r.Status, r.Body)
	}
	if r := get(t, n.IngressURL+"/restate/invocation/"+id+"/output"); r.Status != 409 || !strings.Contains(r.Body, "killed") {
		t.Fatalf("chain output: %d %s", r.Status, r.Body)
	}
	// The killed child stays inspectable for its retention, completed with "killed".
	harness.Eventually(t, 10*time.Second, "the child call to be killed", func() bool {
		rows := query(t, n, "select status, completion_failure from sys_invocation where target = 'Sleeper/nap'").Rows
		return len(rows) == 1 && rows[0]["status"] == "completed" && strings.Contains(fmt.Sprint(rows[0]["completion_failure"]), "killed")
	})
}

// TestPurgedWorkflowStartsAfresh purges a finished workflow run: its promises and state go
// with it, so the same key runs again from scratch.
func TestPurgedWorkflowStartsAfresh(t *testing.T) {
	n, _ := startNode(t)
	wf := n.IngressURL + "/Signup/purged"
	resp := call(t, wf+"/run/send", `"p@example.com"`, nil)
	id := resp.Header.Get("x-restate-id")
	harness.Expect(t, call(t, wf+"/confirm", `"one"`, nil), 200, `"confirmed"`)
	harness.Expect(t, get(t, n.IngressURL+"/restate/workflow/Signup/purged/attach"), 200, `"welcome p@example.com (confirmed with one)"`)
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/purge"); r.Status != 200 {
		t.Fatalf("purge: %d %s", r.Status, r.Body)
	}
	if r := call(t, wf+"/run/send", `"p@example.com"`, nil); r.Status != 202 || !strings.Contains(r.Body, `"Accepted"`) {
		t.Fatalf("run after purge: %d %s", r.Status, r.Body)
	}
	harness.Expect(t, call(t, wf+"/status", "", nil), 200, `"pending"`)
	harness.Expect(t, call(t, wf+"/confirm", `"two"`, nil), 200, `"confirmed"`)
	harness.Expect(t, get(t, n.IngressURL+"/restate/workflow/Signup/purged/attach"), 200, `"welcome p@example.com (confirmed with two)"`)
}

// TestRetainedPlainInvocation: a plain call (no idempotency key) stays attachable and
// inspectable, journal included, for its journal retention, and is dropped after it.
func TestRetainedPlainInvocation(t *testing.T) {
	n, _ := startNode(t)
	resp := call(t, n.IngressURL+"/Greeter/greet", `"Ret"`, nil)
	harness.Expect(t, resp, 200, `"Hello Ret!"`)
	id := resp.Header.Get("x-restate-id")
	// As on restate-server 1.7.12: no idempotency-expires on the answer at completion, but
	// on answers from the retained result.
	if h := resp.Header.Get("idempotency-expires"); h != "" {
		t.Errorf("idempotency-expires %q on the first answer", h)
	}
	out := get(t, n.IngressURL+"/restate/invocation/"+id+"/output")
	harness.Expect(t, out, 200, `"Hello Ret!"`)
	if out.Header.Get("idempotency-expires") == "" {
		t.Error("no idempotency-expires on the output of a retained invocation")
	}
	harness.Expect(t, get(t, n.IngressURL+"/restate/invocation/"+id+"/attach"), 200, `"Hello Ret!"`)
	rows := query(t, n, "select status, completion_retention, journal_retention from sys_invocation where id = '"+id+"'").Rows
	if len(rows) != 1 || rows[0]["status"] != "completed" || rows[0]["completion_retention"] != "PT86400S" || rows[0]["journal_retention"] != "PT86400S" {
		t.Fatalf("sys_invocation of the completed call: %v", rows)
	}
	entries := query(t, n, "select entry_type from sys_journal where id = '"+id+"' order by index").Rows
	if len(entries) != 2 || entries[0]["entry_type"] != "Command: Input" || entries[1]["entry_type"] != "Command: Output" {
		t.Fatalf("retained journal: %v", entries)
	}

	// A short journal retention: the next call is dropped about a second after it completes.
	r, err := harness.Send(http.MethodPatch, n.AdminURL+"/services/Greeter", `{"journal_retention":"1s"}`, map[string]string{"content-type": "application/json"})
	if err != nil || r.Status != 200 {
		t.Fatalf("PATCH journal_retention: %v %+v", err, r)
	}
	var short string
	harness.Eventually(t, 10*time.Second, "the ingress to use the new retention", func() bool {
		resp := call(t, n.IngressURL+"/Greeter/greet", `"Short"`, nil)
		short = resp.Header.Get("x-restate-id")
		rows := query(t, n, "select journal_retention from sys_invocation where id = '"+short+"'").Rows
		return len(rows) == 1 && rows[0]["journal_retention"] == "PT1S"
	})
	harness.Eventually(t, 10*time.Second, "the short-retention call to expire", func() bool {
		return get(t, n.IngressURL+"/restate/invocation/"+short+"/output").Status == 404
	})
	if rows := query(t, n, "select entry_type from sys_journal where id = '"+short+"'").Rows; len(rows) != 0 {
		t.Fatalf("journal left after expiry: %v", rows)
	}
	// The first call, with the default retention, is still there.
	harness.Expect(t, get(t, n.IngressURL+"/restate/invocation/"+id+"/output"), 200, `"Hello Ret!"`)
}

// TestCancelBeforeStart: cancelling a delayed send that has not started answers 200 and drops
// the invocation altogether, idempotency key included, as Restate 1.7.12 does.
func TestCancelBeforeStart(t *testing.T) {
	n, _ := startNode(t)
	for _, h := range []map[string]string{nil, {"idempotency-key": "cancel-early"}} {
		id := sendAndID(t, n.IngressURL+"/Greeter/greet/send?delay=60s", `"Early"`)
		if h != nil {
			resp := call(t, n.IngressURL+"/Greeter/greet/send?delay=60s", `"Early"`, h)
			id = resp.Header.Get("x-restate-id")
		}
		if r := patch(t, n.AdminURL+"/invocations/"+id+"/cancel"); r.Status != 200 {
			t.Fatalf("cancel of a scheduled invocation (headers %v): %d %s", h, r.Status, r.Body)
		}
		if r := get(t, n.IngressURL+"/restate/invocation/"+id+"/output"); r.Status != 404 {
			t.Fatalf("output after cancelling before start (headers %v): %d %s", h, r.Status, r.Body)
		}
	}
}

// TestRerunCallsItsCalleesAfresh: an idempotent request sent again after it was purged runs
// again, and so do its calls: its call to Sleeper.nap is a new invocation (a new ticket),
// not the first run's retained callee answering with the first run's result.
func TestRerunCallsItsCalleesAfresh(t *testing.T) {
	n, _ := startNode(t)
	h := map[string]string{"idempotency-key": "rerun"}
	first := call(t, n.IngressURL+"/Chain/start", "1", h)
	if first.Status != 200 || !strings.Contains(first.Body, "ticket") {
		t.Fatalf("first run: %d %s", first.Status, first.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+first.Header.Get("x-restate-id")+"/purge"); r.Status != 200 {
		t.Fatalf("purge: %d %s", r.Status, r.Body)
	}
	second := call(t, n.IngressURL+"/Chain/start", "1", h)
	if second.Status != 200 || second.Body == first.Body {
		t.Fatalf("second run answered %d %s; the first run answered %s", second.Status, second.Body, first.Body)
	}
}
