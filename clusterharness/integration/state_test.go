package integration

import (
	"testing"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
)

// TestModifyStateThroughTheAdminAPI: POST /services/{name}/state replaces an object's state
// (what `restate kv edit` and `restate kv clear` send); a patch that names a version the state
// no longer has is dropped, one with the current version applies.
func TestModifyStateThroughTheAdminAPI(t *testing.T) {
	n, _ := startNode(t)
	obj := n.IngressURL + "/Counter/edit"
	harness.Expect(t, call(t, obj+"/add", "5", nil), 200, "5")

	state := n.AdminURL + "/services/Counter/state"
	if r := call(t, state, `{"object_key":"edit","new_state":{"count":[55]}}`, nil); r.Status != 202 {
		t.Fatalf("set count to 7: %d %s", r.Status, r.Body)
	}
	harness.Expect(t, call(t, obj+"/get", "", nil), 200, "7")
	if rows := query(t, n, "select value_utf8 from state where service_name = 'Counter' and service_key = 'edit'").Rows; len(rows) != 1 || rows[0]["value_utf8"] != "7" {
		t.Fatalf("state table: %v", rows)
	}

	stale := processor.StateVersion([]store.StateEntry{{Key: []byte("count"), Value: []byte("5")}})
	if r := call(t, state, `{"object_key":"edit","version":"`+stale+`","new_state":{"count":[49,48,48]}}`, nil); r.Status != 202 {
		t.Fatalf("patch with a stale version: %d %s", r.Status, r.Body)
	}
	harness.Expect(t, call(t, obj+"/add", "1", nil), 200, "8") // not 101: the stale patch was dropped

	current := processor.StateVersion([]store.StateEntry{{Key: []byte("count"), Value: []byte("8")}})
	if r := call(t, state, `{"object_key":"edit","version":"`+current+`","new_state":{"count":"2"}}`, nil); r.Status != 202 {
		t.Fatalf("patch with the current version: %d %s", r.Status, r.Body)
	}
	harness.Expect(t, call(t, obj+"/get", "", nil), 200, "2")

	// An empty new state clears the object.
	if r := call(t, state, `{"object_key":"edit","new_state":{}}`, nil); r.Status != 202 {
		t.Fatalf("clear: %d %s", r.Status, r.Body)
	}
	harness.Expect(t, call(t, obj+"/get", "", nil), 200, "0")
	if rows := query(t, n, "select key from state where service_name = 'Counter' and service_key = 'edit'").Rows; len(rows) != 0 {
		t.Fatalf("state after clearing: %v", rows)
	}
	if r := call(t, n.AdminURL+"/services/Greeter/state", `{"object_key":"x","new_state":{}}`, nil); r.Status != 400 {
		t.Fatalf("state of a service: %d %s", r.Status, r.Body)
	}
}
