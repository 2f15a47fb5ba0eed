package containers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
)

// TestReplicatedMetadataInContainers runs three metadatad nodes with the Raft-replicated
// metadata store ([metadata-server] type = "replicated"; meta1 bootstraps the cluster, meta2
// and meta3 join it through [metadata-client] addresses), one worker, one ingress and the
// example deployment. It kills the Raft leader with SIGKILL and checks that the cluster
// keeps serving: the admin API answers on a survivor, a restarted worker re-registers
// (a metadata write, through the new leader) and the counter state is intact; then the old
// leader comes back.
func TestReplicatedMetadataInContainers(t *testing.T) {
	Timed(t)
	c := StartCluster(t, Topology{
		MetadataNodes: 3,
		MetadataType:  "replicated",
		Env: func(n *Node) map[string]string {
			// One node founds the cluster; the others join it instead of founding their own.
			if n.Kind == KindMetadata && n.Name != "meta1" {
				return map[string]string{"RESTATE_AUTO_PROVISION": "false"}
			}
			return nil
		},
	})
	c.RegisterExamples(t)
	ingress := c.IngressURL(t)
	harness.Eventually(t, 30*time.Second, "a greeting through the cluster", func() bool {
		resp, err := harness.Send(http.MethodPost, ingress+"/Greeter/greet", `"Sarah"`, nil)
		return err == nil && resp.Status == http.StatusOK && resp.Body == `"Hello Sarah!"`
	})
	expect(t, ingress+"/Counter/apples/add", "5", "5")

	leader := c.MetadataLeader(t)
	t.Logf("killing the metadata leader %s", leader.Name)
	c.Kill(t, leader)
	newLeader := c.MetadataLeader(t)
	t.Logf("new metadata leader: %s", newLeader.Name)
	// The ingress keeps serving, and a surviving admin API still commits metadata writes
	// (through the new leader).
	eventuallyExpect(t, ingress+"/Counter/apples/add", "1", "6", "the counter right after the leader kill")
	admin := c.AdminURL(t)
	status, body := harness.Do(t, http.MethodPatch, admin+"/services/Greeter", `{"idempotency_retention":"2h"}`,
		map[string]string{"content-type": "application/json"})
	if status != http.StatusOK || !strings.Contains(body, `"idempotency_retention":"2h"`) {
		t.Fatalf("PATCH through a surviving admin after the leader kill: %d %s", status, body)
	}

	c.Restart(t, c.Node("worker1"))
	eventuallyExpect(t, ingress+"/Counter/apples/add", "1", "7", "the counter after the leader kill and a worker restart")

	c.Start(t, leader)
	eventuallyExpect(t, ingress+"/Counter/apples/get", "", "7", "the counter after the old leader rejoined")
}
