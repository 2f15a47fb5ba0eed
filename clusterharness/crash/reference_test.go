package crash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
)

// TestReferenceFailover runs the kills of TestPartitionsFailOverBetweenNodes against three
// reference restate-server nodes (RESTATE_SERVER_BIN; make failover-reference installs it
// from npm and runs this beside our test in a private network namespace): the same load,
// the same client failover between ingresses, the same exactly-once check, so the gaps can
// be compared side by side. Skipped without RESTATE_SERVER_BIN.
func TestReferenceFailover(t *testing.T) {
	bin := os.Getenv("RESTATE_SERVER_BIN")
	if bin == "" || testing.Short() {
		t.Skip("set RESTATE_SERVER_BIN to a restate-server binary (make failover-reference)")
	}
	uri := harness.StartExamples(t)
	c := newReferenceCluster3(t, bin)
	c.start()
	harness.Eventually(t, progressTimeout, "the reference admin API", func() bool {
		r, err := http.Get(c.nodes[0].Admin + "/health")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == http.StatusOK
	})
	harness.Register(t, c.nodes[0].Admin, uri)
	c.settle(t, -1, "")

	w := NewWorkload(c.nodes[0].Ingress, "add", CounterKeys("ref-", 16), 8, AcceptAdd)
	w.Ingresses = c.ingresses()
	plain := c.killAndRestart(t, w, 1, false)
	leader := c.killAndRestart(t, w, 2, true)
	t.Logf("reference: longest gap %v after killing a plain node, %v after killing the metadata leader's node",
		plain.Round(time.Millisecond), leader.Round(time.Millisecond))
}

// newReferenceCluster3 prepares three reference nodes with every role, replicated metadata
// and logs, replication 2, node n1 provisioning the cluster.
func newReferenceCluster3(t *testing.T, bin string) *cluster3 {
	t.Helper()
	c := &cluster3{names: []string{"n1", "n2", "n3"}}
	for range c.names {
		c.nodes = append(c.nodes, NewServer(t, bin))
	}
	var fabrics []string
	for _, s := range c.nodes {
		fabrics = append(fabrics, s.Fabric)
	}
	for i, s := range c.nodes {
		s.SetName("reference-" + c.names[i])
		s.SetReadyLine("were started") // "Restate node roles [...] were started"
		s.Setenv(failoverPartitions()...)
		s.Setenv("RESTATE_NODE_NAME="+c.names[i], "RESTATE_ADVERTISED_ADDRESS="+s.Fabric+"/",
			"RESTATE_LISTEN_MODE=tcp", "RESTATE_LOG_FORMAT=json",
			fmt.Sprintf("RESTATE_AUTO_PROVISION=%v", i == 0), "RESTATE_DEFAULT_REPLICATION=2",
			"RESTATE_METADATA_CLIENT__ADDRESSES=["+strings.Join(fabrics, ",")+"]",
			"RESTATE_BIFROST__DEFAULT_PROVIDER=replicated",
			"RESTATE_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true")
	}
	c.metadataLeader = func() (string, error) { return referenceMetadataLeader(c) }
	c.settle = func(t *testing.T, skip int, node string) {
		t.Helper()
		var ingresses []string
		for i, s := range c.nodes {
			if i != skip && (node == "" || c.names[i] == node) {
				ingresses = append(ingresses, s.Ingress)
			}
		}
		harness.Eventually(t, chainTimeout, "every partition to serve", func() bool { return serveEveryKey(ingresses) })
	}
	return c
}

// referenceMetadataLeader is the node that most recently logged winning the metadata
// leadership: the reference has no status endpoint of ours, but logs every election.
func referenceMetadataLeader(c *cluster3) (string, error) {
	var leader, newest string
	for i, s := range c.nodes {
		for _, line := range s.grepLogs("Won metadata cluster leadership") {
			var ev struct {
				Timestamp string `json:"timestamp"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Timestamp > newest {
				newest, leader = ev.Timestamp, c.names[i]
			}
		}
	}
	if leader == "" {
		return "", fmt.Errorf("no reference node logged a metadata leadership")
	}
	return leader, nil
}

// serveEveryKey reports whether 32 probe keys (which cover every partition) can each be added
// to through each of the ingresses. The probe keys are not the workload's.
func serveEveryKey(ingresses []string) bool {
	client := &http.Client{Timeout: 5 * time.Second}
	for _, in := range ingresses {
		for k := range 32 {
			resp, err := client.Post(fmt.Sprintf("%s/Counter/probe-%d/add", in, k), "application/json", strings.NewReader("0"))
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
	}
	return true
}
