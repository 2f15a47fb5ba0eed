package crash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/shared/ids"
)

// TestAdminReachesEveryPartitionLeader: on a three-node cluster, the admin API of every node
// cancels invocations of partitions led on any node; an admin that only asked its own
// worker answered 503 for the partitions led elsewhere.
func TestAdminReachesEveryPartitionLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts server processes")
	}
	c := runningCluster3(t)
	st, err := c.status(-1)
	if err != nil {
		t.Fatal(err)
	}
	logPartitions(t, st)
	leaders := map[uint32]string{}
	leading := map[string]bool{}
	for _, p := range st.Partitions {
		if leaders[p.ID] = p.Leader; p.Leader != "" {
			leading[p.Leader] = true
		}
	}
	// A balanced placement may leave a node leading nothing: the controller only moves
	// leaderships off a node above ceil(4/3) = 2, so 2+2+0 is as settled as 2+1+1 (the
	// third node joined once the first two had taken the leaderships over). Every admin must
	// then still reach both leaders, one of them on another node.
	if len(leading) < 2 {
		t.Fatalf("partitions led by %v only", leading)
	}
	// Long naps on keyless services spread over the partitions at random; keep sending until
	// every node's admin has an invocation led by each leading node to cancel.
	type target struct{ admin, leader string }
	done := map[target]bool{}
	want := len(c.nodes) * len(leading)
	for i := 0; len(done) < want && i < 400; i++ {
		r, err := harness.Send(http.MethodPost, c.nodes[0].Ingress+"/Sleeper/nap/send", "600000", map[string]string{"content-type": "application/json"})
		if err != nil || r.Status != 202 {
			t.Fatalf("send %d: %v %+v", i, err, r)
		}
		var sent struct {
			InvocationID string `json:"invocationId"`
		}
		if err := json.Unmarshal([]byte(r.Body), &sent); err != nil {
			t.Fatalf("send answer %q: %v", r.Body, err)
		}
		id, err := ids.ParseInvocationID(sent.InvocationID)
		if err != nil {
			t.Fatal(err)
		}
		leader := leaders[ids.PartitionOf(id.PartitionKey, uint32(len(st.Partitions)))]
		if leader == "" {
			continue // no leader answered the status for this one
		}
		for a, n := range c.nodes {
			tg := target{c.names[a], leader}
			if done[tg] {
				continue
			}
			done[tg] = true
			r, err := harness.Send(http.MethodPatch, n.Admin+"/invocations/"+sent.InvocationID+"/cancel", "", nil)
			if err != nil || (r.Status != 200 && r.Status != 202) {
				t.Errorf("cancel through %s's admin of an invocation led on %s: %v %+v", c.names[a], leader, err, r)
			}
			break
		}
	}
	if len(done) < want {
		t.Fatalf("only %d of %d (admin, leader) pairs tried: %v", len(done), want, fmt.Sprint(done))
	}
}
