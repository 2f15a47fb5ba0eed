package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
)

// Restart-as-new from a journal prefix with the real SDK: Orders.place journals
// 0 Input, 1 Run (the order id), 2 its completion, 3 Call Counter/<sku>/add, 4-5 the call's
// completions, 6-7 a Run and its completion, 8-9 a delayed send, 10 Output. From 3 on, the
// new invocation replays the order id and the call's result: the counter is not added to
// again. From the input it runs again from scratch.
func TestRestartAsNewFromAJournalPrefix(t *testing.T) {
	n, _ := startNode(t)
	sku := fmt.Sprintf("restart-%d", time.Now().UnixNano())
	order := `{"customer":"ann","sku":"` + sku + `","quantity":3}`
	first := call(t, n.IngressURL+"/Orders/place", order, nil)
	if first.Status != 200 {
		t.Fatalf("place: %d %s", first.Status, first.Body)
	}
	id := first.Header.Get("x-restate-id")
	var want examples.Receipt
	if err := json.Unmarshal([]byte(first.Body), &want); err != nil {
		t.Fatal(err)
	}

	restart := func(query string) examples.Receipt {
		t.Helper()
		r := patch(t, n.AdminURL+"/invocations/"+id+"/restart-as-new"+query)
		var answer struct {
			NewInvocationID string `json:"new_invocation_id"`
		}
		if r.Status != 200 || json.Unmarshal([]byte(r.Body), &answer) != nil || answer.NewInvocationID == id {
			t.Fatalf("restart-as-new%s: %d %s", query, r.Status, r.Body)
		}
		out := get(t, n.IngressURL+"/restate/invocation/"+answer.NewInvocationID+"/attach")
		var got examples.Receipt
		if out.Status != 200 || json.Unmarshal([]byte(out.Body), &got) != nil {
			t.Fatalf("restarted%s: %d %s", query, out.Status, out.Body)
		}
		return got
	}
	if got := restart("?from=3&deployment=keep"); got.OrderID != want.OrderID || got.SoldTotal != 3 {
		t.Fatalf("restart from the call: %+v, want order %s sold 3 (replayed)", got, want.OrderID)
	}
	harness.Expect(t, get(t, n.IngressURL+"/Counter/"+sku+"/get"), 200, "3")
	if got := restart(""); got.OrderID == want.OrderID || got.SoldTotal != 6 {
		t.Fatalf("restart from the input: %+v, want a new order, sold 6", got)
	}
	// A prefix past the journal, and a deployment that is not registered.
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/restart-as-new?from=11"); r.Status != 400 {
		t.Fatalf("from past the journal: %d %s", r.Status, r.Body)
	}
	if r := patch(t, n.AdminURL+"/invocations/"+id+"/restart-as-new?deployment=dp_15Ijx8dSe4emaNGJRDZZQqX"); r.Status != 400 {
		t.Fatalf("unknown deployment: %d %s", r.Status, r.Body)
	}
}
