package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/crash"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/metadatad/cluster"
)

// The failure scenarios of the cluster guides (seeds 002 and 003) on clusters of identical
// all-role nodes in containers, as docker-compose.yml runs them.

const (
	progressTimeout = 30 * time.Second // for load to make progress after a fault
	settleTimeout   = 60 * time.Second // for the placement to settle
)

// ingresses are the ingress URLs of the live nodes, in node order.
func ingresses(t testing.TB, c *Cluster) []string {
	t.Helper()
	var out []string
	for _, n := range c.All {
		if n.Alive() {
			out = append(out, n.URL(t, PortIngress))
		}
	}
	return out
}

// startLoad starts idempotent Counter.add load through every node's ingress (the examples
// are registered); a request that fails is re-sent with its idempotency key to the next one.
func startLoad(t *testing.T, c *Cluster, prefix string) (*crash.Workload, *crash.SteadyLoad) {
	t.Helper()
	all := ingresses(t, c)
	harness.Eventually(t, settleTimeout, "a Counter.add through every ingress", func() bool {
		for _, in := range all {
			resp, err := harness.Send(http.MethodPost, in+"/Counter/"+prefix+"warmup/add", "1", nil)
			if err != nil || resp.Status != http.StatusOK {
				return false
			}
		}
		return true
	})
	w := crash.NewWorkload(all[0], "add", crash.CounterKeys(prefix, 12), 6, crash.AcceptAdd)
	w.Ingresses = all
	load := w.StartSteady(1, prefix)
	t.Cleanup(load.Stop)
	if !load.WaitAcked(time.Time{}, 200, progressTimeout) {
		t.Fatalf("only %d adds acknowledged", load.AckedSince(time.Time{}))
	}
	return w, load
}

// refreshIngresses points the workload at the live nodes' current ingress ports (a
// restarted container comes back on other host ports).
func refreshIngresses(t testing.TB, c *Cluster, w *crash.Workload) {
	t.Helper()
	all := ingresses(t, c)
	w.SetIngresses(all[0], all)
}

// finish stops the load, re-sends what was not acknowledged and checks that every key holds
// exactly its acknowledged adds.
func finish(t *testing.T, c *Cluster, w *crash.Workload, load *crash.SteadyLoad) {
	t.Helper()
	load.Stop()
	refreshIngresses(t, c, w)
	crash.DrainAll(t, w, 1)
	crash.CheckExactlyOnce(t, w)
}

// status reads the cluster status from the first live node that answers.
func status(c *Cluster) (*cluster.Status, error) {
	var errs []string
	for _, n := range c.All {
		if !n.Alive() {
			continue
		}
		u, err := n.url(context.Background(), PortFabric)
		if err == nil {
			var resp *harness.Response
			if resp, err = harness.Send(http.MethodGet, u+cluster.PathPrefix+"status", "", nil); err == nil {
				var st cluster.Status
				if err = json.Unmarshal([]byte(resp.Body), &st); err == nil && resp.Status == http.StatusOK {
					return &st, nil
				}
				err = fmt.Errorf("%d %v", resp.Status, err)
			}
		}
		errs = append(errs, n.Name+": "+err.Error())
	}
	return nil, fmt.Errorf("no node answered the status: %s", strings.Join(errs, "; "))
}

// waitPlaced waits until every partition is led where it is placed and has as many
// replicas as the live nodes allow (up to replication), and node (if not "") holds one.
func waitPlaced(t testing.TB, c *Cluster, node string) {
	t.Helper()
	alive := 0
	for _, n := range c.All {
		if n.Alive() {
			alive++
		}
	}
	want := min(alive, c.Topology.Replication)
	var last error
	harness.Eventually(t, settleTimeout, "the partitions placed on the live nodes", func() bool {
		st, err := status(c)
		if err != nil {
			last = err
			return false
		}
		holds := node == ""
		for _, p := range st.Partitions {
			replicas := 1 + len(p.PlacedFollowers)
			if p.PlacedLeader == "" || p.Leader != p.PlacedLeader || replicas < want {
				last = fmt.Errorf("partition %d: placed on %q + %v, led by %q (%s)", p.ID, p.PlacedLeader, p.PlacedFollowers, p.Leader, p.UnderReplicated)
				return false
			}
			holds = holds || p.PlacedLeader == node || slices.Contains(p.PlacedFollowers, node)
		}
		if !holds {
			last = fmt.Errorf("%s holds no partition", node)
		}
		return holds
	})
	if t.Failed() {
		t.Logf("last placement: %v", last)
	}
}

// TestComposeClusterScenarios runs the quickstart's cluster, three nodes plus MinIO, under
// idempotent load through all three ingresses: a node is SIGKILLed and restarted; snapshots
// then trim the logs; a node's data is wiped and it comes back with the same name, from the
// snapshots. Every acknowledged add is there exactly once after each.
func TestComposeClusterScenarios(t *testing.T) {
	Timed(t)
	c := StartCluster(t, Topology{Nodes: 3, MinIO: true, Env: func(*Node) map[string]string {
		return map[string]string{
			"RESTATE_WORKER__TRIM_DELAY_INTERVAL":                      "0s",
			"RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS": "500",
		}
	}})
	waitPlaced(t, c, "")
	c.RegisterExamples(t)

	t.Run("kill and restart a node", func(t *testing.T) {
		Timed(t)
		w, load := startLoad(t, c, "kill-")
		victim := c.Node("node2")
		kill := time.Now()
		c.Kill(t, victim)
		if !load.WaitAcked(time.Now(), 100, progressTimeout) {
			t.Fatalf("no progress with %s down", victim.Name)
		}
		gap, _ := load.LongestGap(kill, time.Now())
		t.Logf("%s killed: longest gap between acknowledged adds %v", victim.Name, gap.Round(time.Millisecond))
		restart := time.Now()
		c.Start(t, victim)
		refreshIngresses(t, c, w)
		waitPlaced(t, c, victim.Name)
		t.Logf("%s restarted: holds partitions again %v after its start", victim.Name, time.Since(restart).Round(time.Millisecond))
		if !load.WaitAcked(time.Now(), 100, progressTimeout) {
			t.Fatalf("no progress after %s came back", victim.Name)
		}
		finish(t, c, w, load)
	})

	t.Run("snapshots trim the logs", func(t *testing.T) {
		Timed(t)
		node1 := c.Node("node1")
		// A leadership may be moving (the restarted node takes some back): run it again
		// until every partition has a new snapshot, as an operator would.
		var out string
		harness.Eventually(t, settleTimeout, "gorestatectl snapshots create to snapshot every partition", func() bool {
			var code int
			code, out = c.Exec(t, node1, "gorestatectl", "snapshots", "create")
			return code == 0 && strings.Count(out, "snap_") >= c.Topology.Partitions
		})
		t.Logf("gorestatectl snapshots create:\n%s", out)
		var trimmed map[uint32]uint64
		defer func() {
			if t.Failed() {
				t.Logf("last trim points seen: %v", trimmed)
			}
		}()
		harness.Eventually(t, settleTimeout, "every log trimmed below its snapshot", func() bool {
			trimmed = trimPoints(t, c)
			for _, tp := range trimmed {
				if tp == 0 {
					return false
				}
			}
			return len(trimmed) > 0
		})
		_, describe := c.Exec(t, node1, "gorestatectl", "logs", "describe", "0")
		if !strings.Contains(strings.ToLower(describe), "trim") {
			t.Fatalf("logs describe 0 shows no trim point:\n%s", describe)
		}
		t.Logf("trim points: %v\ngorestatectl logs describe 0:\n%s", trimmed, describe)
	})

	t.Run("wipe a node and restart it", func(t *testing.T) {
		Timed(t)
		w, load := startLoad(t, c, "wipe-")
		victim := c.Node("node3")
		c.Kill(t, victim)
		c.Wipe(t, victim)
		if !load.WaitAcked(time.Now(), 100, progressTimeout) {
			t.Fatalf("no progress with %s down", victim.Name)
		}
		restart := time.Now()
		c.Start(t, victim)
		refreshIngresses(t, c, w)
		waitPlaced(t, c, victim.Name)
		t.Logf("%s wiped and restarted: holds partitions again %v after its start", victim.Name, time.Since(restart).Round(time.Millisecond))
		if code, logs := c.Exec(t, c.Node("node1"), "gorestatectl", "partitions", "list"); code == 0 {
			t.Logf("gorestatectl partitions list:\n%s", logs)
		}
		if !load.WaitAcked(time.Now(), 100, progressTimeout) {
			t.Fatalf("no progress after %s came back", victim.Name)
		}
		finish(t, c, w, load)
		if !strings.Contains(c.Logs(t, victim), "restored from a snapshot") {
			t.Fatalf("%s came back without restoring a snapshot", victim.Name)
		}
	})
}

// TestFiveNodesSurviveTwoLost: five nodes, every one a metadata server, replication 3: two
// nodes killed at once, and the cluster keeps serving with every add there exactly once.
func TestFiveNodesSurviveTwoLost(t *testing.T) {
	Timed(t)
	c := StartCluster(t, Topology{Nodes: 5, Replication: 3})
	waitPlaced(t, c, "")
	c.RegisterExamples(t)
	w, load := startLoad(t, c, "five-")
	kill := time.Now()
	c.Kill(t, c.Node("node2"), c.Node("node4"))
	refreshIngresses(t, c, w)
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatal("no progress with two of five nodes down")
	}
	gap, _ := load.LongestGap(kill, time.Now())
	t.Logf("node2 and node4 killed: longest gap between acknowledged adds %v", gap.Round(time.Millisecond))
	finish(t, c, w, load)
}

// TestIsolatedNodeCannotSplitBrain cuts one node off from the other two with iptables in its
// network namespace. The majority keeps serving; the isolated node acknowledges no write
// (its logs cannot reach a write quorum, its metadata member no majority); after healing it
// catches up, every replica of every partition converges to the same applied LSN, and the
// writes sent to the isolated side, re-sent with their idempotency keys, apply once each.
func TestIsolatedNodeCannotSplitBrain(t *testing.T) {
	Timed(t)
	c := StartCluster(t, Topology{Nodes: 3})
	waitPlaced(t, c, "")
	c.RegisterExamples(t)
	w, load := startLoad(t, c, "split-")
	victim := c.Node("node1")
	victimIngress := victim.URL(t, PortIngress)
	// The clients move to the majority's ingresses first: a request sent to the isolated
	// node can only wait for its timeout, which says nothing about the majority.
	var majority []string
	for _, n := range c.All {
		if n != victim {
			majority = append(majority, n.URL(t, PortIngress))
		}
	}
	w.SetIngresses(majority[0], majority)
	reads := w.StartReads(2)
	defer reads.Stop()
	if !load.WaitAcked(time.Now(), 50, progressTimeout) {
		t.Fatal("no progress through the majority's ingresses")
	}
	c.Isolate(t, victim)
	isolated := time.Now()
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatal("the majority made no progress with node1 cut off")
	}
	gap, _ := load.LongestGap(isolated, time.Now())
	t.Logf("node1 isolated: longest gap between acknowledged adds on the majority %v", gap.Round(time.Millisecond))

	// The minority side: adds through its ingress are never acknowledged. They carry
	// idempotency keys: a request the isolated node forwarded may still reach a leader once
	// the network heals (the kernel delivers what was in flight), and its outcome is then
	// settled below by re-sending it.
	const minorityAdds = 5
	hc := &http.Client{Timeout: 3 * time.Second}
	for i := range minorityAdds {
		req, _ := http.NewRequest(http.MethodPost, victimIngress+"/Counter/minority/add", strings.NewReader("1"))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("idempotency-key", fmt.Sprintf("minority-%d", i))
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("the isolated node acknowledged add %d", i)
			}
		}
	}
	// Nor does it answer reads: a shared handler's invocation goes through the log too, so
	// the isolated side cannot serve a value the majority has moved past.
	if resp, err := hc.Get(victimIngress + "/Counter/" + w.Keys[0] + "/get"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("the isolated node answered a read of %s: %s", w.Keys[0], body)
		}
	}

	c.Heal(t, victim)
	healed := time.Now()
	refreshIngresses(t, c, w)
	waitPlaced(t, c, victim.Name)
	t.Logf("healed: node1 holds partitions again %v later", time.Since(healed).Round(time.Millisecond))
	finish(t, c, w, load)
	crash.CheckReads(t, reads)
	// Every replica converges: the same applied LSN on every processor of a partition.
	var last string
	harness.Eventually(t, settleTimeout, "every replica at the same applied LSN", func() bool {
		st, err := status(c)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, p := range st.Partitions {
			if len(p.Processors) < 2 {
				last = fmt.Sprintf("partition %d: %d processors", p.ID, len(p.Processors))
				return false
			}
			for _, pr := range p.Processors[1:] {
				if pr.AppliedLSN != p.Processors[0].AppliedLSN {
					last = fmt.Sprintf("partition %d: applied %d on %s, %d on %s", p.ID, p.Processors[0].AppliedLSN, p.Processors[0].Node, pr.AppliedLSN, pr.Node)
					return false
				}
			}
		}
		return true
	})
	if t.Failed() {
		t.Log(last)
	}
	// The adds sent to the isolated side, re-sent with their keys, are applied once each,
	// whether or not a copy arrived after the healing.
	for i := range minorityAdds {
		harness.Eventually(t, progressTimeout, fmt.Sprintf("minority add %d acknowledged once re-sent", i), func() bool {
			resp, err := harness.Send(http.MethodPost, w.Ingress+"/Counter/minority/add", "1",
				map[string]string{"content-type": "application/json", "idempotency-key": fmt.Sprintf("minority-%d", i)})
			return err == nil && resp.Status == http.StatusOK
		})
	}
	resp, err := harness.Send(http.MethodPost, w.Ingress+"/Counter/minority/get", "", nil)
	if err != nil || resp.Status != http.StatusOK || resp.Body != fmt.Sprint(minorityAdds) {
		t.Fatalf("Counter/minority after re-sending its %d adds: %v %+v, want %d", minorityAdds, err, resp, minorityAdds)
	}
}

// trimPoints is each log's trim point, from the logs view of the first live node that
// answers.
func trimPoints(t testing.TB, c *Cluster) map[uint32]uint64 {
	t.Helper()
	for _, n := range c.All {
		if n.Alive() {
			if out, err := crash.TrimPoints(n.URL(t, PortFabric)); err == nil {
				return out
			}
		}
	}
	return map[uint32]uint64{}
}
