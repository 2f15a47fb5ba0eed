package crash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/clusterharness/promtext"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
)

// cluster3 is three gorestate nodes with every role: a replicated metadata store, replicated
// logs (replication 2 over the three log servers) and partition replication 2.
type cluster3 struct {
	nodes  []*Server
	names  []string
	gossip []string // gossip addresses of the three nodes

	// metadataLeader names the node holding the metadata leader, and settle waits until
	// every partition is served without node skip (-1: none) and node (if not "") serves
	// again. Ours read the cluster status; the reference cluster (reference_test.go) has
	// its own.
	metadataLeader func() (string, error)
	settle         func(t *testing.T, skip int, node string)
}

func newCluster3(t *testing.T) *cluster3 {
	t.Helper()
	c := &cluster3{names: []string{"n1", "n2", "n3"}}
	c.metadataLeader = func() (string, error) {
		st, err := c.status(-1)
		if err != nil {
			return "", err
		}
		return st.Metadata.Leader, nil
	}
	c.settle = func(t *testing.T, skip int, node string) {
		t.Helper()
		c.waitPlaced(t, skip, node)
		if node != "" {
			if st, err := c.status(-1); err == nil {
				logPartitions(t, st)
			}
		}
	}
	for range c.names {
		c.nodes = append(c.nodes, NewServer(t, serverBin))
	}
	gossip := freePorts(t, 3)
	c.gossip = gossip
	var fabrics []string
	for _, s := range c.nodes {
		fabrics = append(fabrics, s.Fabric)
	}
	for i, s := range c.nodes {
		s.SetName(c.names[i])
		var seeds []string
		for j, g := range gossip {
			if j != i {
				seeds = append(seeds, g)
			}
		}
		s.Setenv(failoverPartitions()...)
		s.Setenv("RESTATE_NODE_NAME="+c.names[i], "RESTATE_ADVERTISED_ADDRESS="+s.Fabric,
			"RESTATE_METADATA_SERVER__TYPE=replicated",
			"RESTATE_METADATA_CLIENT__ADDRESSES=["+strings.Join(fabrics, ",")+"]",
			"RESTATE_BIFROST__DEFAULT_PROVIDER=replicated", "RESTATE_DEFAULT_REPLICATION=2",
			"RESTATE_GOSSIP__BIND_ADDRESS="+gossip[i], "RESTATE_GOSSIP__SEEDS=["+strings.Join(seeds, ",")+"]")
	}
	return c
}

// failoverPartitions sets the partition count of the three-node clusters from
// GORESTATE_FAILOVER_PARTITIONS (make failover-reference: 24, the default of both servers);
// NewServer's 4 otherwise, which keeps make test fast.
func failoverPartitions() []string {
	if n := os.Getenv("GORESTATE_FAILOVER_PARTITIONS"); n != "" {
		return []string{"RESTATE_DEFAULT_NUM_PARTITIONS=" + n}
	}
	return nil
}

// runningCluster3 starts three nodes with the example services registered and every
// partition led and followed.
func runningCluster3(t *testing.T) *cluster3 {
	t.Helper()
	uri := harness.StartExamples(t)
	c := newCluster3(t)
	c.start()
	harness.Register(t, c.nodes[0].Admin, uri)
	c.waitPlaced(t, -1, "")
	c.waitBalanced(t)
	return c
}

// waitBalanced waits until no node leads more than its share of the partitions: the
// controller hands leaderships to followers once they have caught up, so a kill then takes
// partitions from every node.
func (c *cluster3) waitBalanced(t *testing.T) {
	t.Helper()
	var last string
	harness.Eventually(t, chainTimeout, "the leaderships spread over the nodes", func() bool {
		st, err := c.status(-1)
		if err != nil {
			last = err.Error()
			return false
		}
		share := (len(st.Partitions) + len(c.nodes) - 1) / len(c.nodes)
		leads := map[string]int{}
		for _, p := range st.Partitions {
			if p.Leader == "" || p.Leader != p.PlacedLeader {
				last = fmt.Sprintf("partition %d: leader %q, placed %q", p.ID, p.Leader, p.PlacedLeader)
				return false
			}
			leads[p.Leader]++
		}
		for node, n := range leads {
			if n > share {
				last = fmt.Sprintf("%s leads %d partitions", node, n)
				return false
			}
		}
		return true
	})
	if t.Failed() {
		t.Log(last)
	}
}

// start launches the three nodes together (each needs the others: the metadata store forms
// once they meet, the logs once three log servers are registered) and waits for them.
func (c *cluster3) start() {
	for _, s := range c.nodes {
		s.Launch()
	}
	for _, s := range c.nodes {
		s.WaitReady()
	}
}

func (c *cluster3) ingresses() []string {
	var out []string
	for _, s := range c.nodes {
		out = append(out, s.Ingress)
	}
	return out
}

// status reads the cluster status from the first node that answers, skipping skip.
func (c *cluster3) status(skip int) (*cluster.Status, error) {
	var errs []string
	for i, s := range c.nodes {
		if i == skip {
			continue
		}
		resp, err := http.Get(s.Fabric + cluster.PathPrefix + "status")
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		var st cluster.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Sprintf("%s: %d %v", s.Fabric, resp.StatusCode, err))
			continue
		}
		return &st, nil
	}
	return nil, fmt.Errorf("no node answered the status: %s", strings.Join(errs, "; "))
}

// placedEverywhere reports whether every partition has a leader that leads and a follower,
// and node (if not "") holds at least one replica.
func placedEverywhere(st *cluster.Status, node string) error {
	holds := node == ""
	for _, p := range st.Partitions {
		if p.PlacedLeader == "" || len(p.PlacedFollowers) == 0 {
			return fmt.Errorf("partition %d placed on %q + %v (%s)", p.ID, p.PlacedLeader, p.PlacedFollowers, p.UnderReplicated)
		}
		if p.Leader != p.PlacedLeader {
			return fmt.Errorf("partition %d: placed leader %s, leading %q", p.ID, p.PlacedLeader, p.Leader)
		}
		if p.PlacedLeader == node || strings.Contains(strings.Join(p.PlacedFollowers, ","), node) {
			holds = true
		}
	}
	if !holds {
		return fmt.Errorf("%s holds no partition", node)
	}
	return nil
}

func (c *cluster3) waitPlaced(t *testing.T, skip int, node string) {
	t.Helper()
	deadline := time.Now().Add(chainTimeout)
	for {
		st, err := c.status(skip)
		if err == nil {
			err = placedEverywhere(st, node)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("placement not settled after %v: %v", chainTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logPartitions(t *testing.T, st *cluster.Status) {
	t.Helper()
	var b strings.Builder
	for _, p := range st.Partitions {
		fmt.Fprintf(&b, " p%d: leader %s followers %v;", p.ID, p.PlacedLeader, p.PlacedFollowers)
	}
	t.Log("placement:" + b.String())
}

// TestPartitionsFailOverBetweenNodes runs three nodes with every role under idempotent
// Counter.add load sent through all three ingresses (a request that fails is re-sent with
// its idempotency key to the next ingress), SIGKILLs (a) a node that does not hold the
// metadata leader and (b) the one that does, and restarts each: the partitions it led are
// taken over by their followers, the restarted node rejoins and gets partitions back, and
// every acknowledged add is there exactly once. The longest gap between acknowledged calls
// is reported. A fourth node then joins under load and gets partitions.
func TestPartitionsFailOverBetweenNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	c := runningCluster3(t)
	st, err := c.status(-1)
	if err != nil {
		t.Fatal(err)
	}
	logPartitions(t, st)

	w := NewWorkload(c.nodes[0].Ingress, "add", CounterKeys("fo-", 16), 8, AcceptAdd)
	w.Ingresses = c.ingresses()
	reads := w.StartReads(2)
	defer reads.Stop()
	for round, pickLeader := range []bool{false, true} {
		c.killAndRestart(t, w, round+1, pickLeader)
	}

	// A fourth node joins under load (workers, log server and ingress; the metadata stays on
	// the three): the controller moves followers and then leaderships to it.
	n4 := NewServer(t, serverBin)
	n4.SetName("n4")
	var fabrics []string
	for _, s := range c.nodes {
		fabrics = append(fabrics, s.Fabric)
	}
	n4.Setenv("RESTATE_NODE_NAME=n4", "RESTATE_ADVERTISED_ADDRESS="+n4.Fabric,
		"RESTATE_ROLES=[worker,log-server,http-ingress,admin]",
		"RESTATE_METADATA_CLIENT__ADDRESSES=["+strings.Join(fabrics, ",")+"]",
		"RESTATE_GOSSIP__SEEDS=["+strings.Join(c.gossip, ",")+"]")
	load := w.StartSteady(3, "r3")
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		load.Stop()
		t.Fatalf("only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	join := time.Now()
	n4.Start()
	c.nodes, c.names = append(c.nodes, n4), append(c.names, "n4")
	for deadline := time.Now().Add(chainTimeout); ; time.Sleep(100 * time.Millisecond) {
		st, err := c.status(3)
		if err == nil && placedEverywhere(st, "") == nil && slices.ContainsFunc(st.Partitions, func(p cluster.PartitionStatus) bool { return p.Leader == "n4" }) {
			break
		}
		if time.Now().After(deadline) {
			if st != nil {
				logPartitions(t, st)
				for _, n := range st.Nodes {
					t.Logf("node %s gen %d state %s roles %v", n.Name, n.Generation, n.State, n.Roles)
				}
			}
			t.Fatalf("n4 leads no partition %v after its start (%v)", chainTimeout, err)
		}
	}
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		load.Stop()
		t.Fatalf("after n4 joined, only %d calls acknowledged", load.AckedSince(join))
	}
	load.Stop()
	gap, _ := load.LongestGap(join, time.Now())
	st, err = c.status(3)
	if err != nil {
		t.Fatal(err)
	}
	logPartitions(t, st)
	t.Logf("n4 joined: leads and follows partitions %v after its start; longest gap between acknowledged calls meanwhile %v",
		time.Since(join).Round(time.Millisecond), gap.Round(time.Millisecond))
	DrainAll(t, w, 3)
	CheckExactlyOnce(t, w)
	CheckReads(t, reads)
	checkClusterMetrics(t, c.nodes, 3)
}

// checkClusterMetrics scrapes every node after the failovers and checks the metrics that a
// single node cannot show: replicated appends and their log servers, followers, and the
// leader changes of partitions and of the metadata cluster.
// The first metadataMembers nodes run the metadata server.
func checkClusterMetrics(t *testing.T, nodes []*Server, metadataMembers int) {
	t.Helper()
	total := promtext.Metrics{}
	for i, n := range nodes {
		m, err := promtext.Scrape(n.Fabric + "/metrics")
		if err != nil {
			t.Errorf("scrape %s: %v", n.Fabric, err)
			continue
		}
		for k, v := range m {
			total[k] += v
		}
		// Every metadata member saw the metadata cluster elect a leader at least once.
		if v, _ := m.Sum("restate_metadata_leader_changes_total"); i < metadataMembers && v < 1 {
			t.Errorf("%s: restate_metadata_leader_changes_total = %v", n.Fabric, v)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"restate_bifrost_records_appended_total", []string{`provider="replicated"`}},
		{"restate_bifrost_append_duration_seconds_count", []string{`provider="replicated"`}},
		{"restate_bifrost_commit_duration_seconds_count", []string{`provider="replicated"`}},
		{"restate_log_server_stores_total", []string{`status="ok"`}},
		{"restate_log_server_commit_duration_seconds_count", nil},
		{"restate_log_server_wal_append_duration_seconds_count", nil},
		{"restate_log_server_writes_total", nil},
		{"restate_log_server_store_size_bytes", nil},
		{"restate_partition_records_applied_total", []string{`mode="follower"`}},
		{"restate_partition_apply_delay_seconds_count", []string{`mode="follower"`}},
		{"restate_metadata_operations_total", []string{`op="put"`, `outcome="ok"`}},
	} {
		if v, _ := total.Sum(c.name, c.labels...); v <= 0 {
			t.Errorf("%s %v = %v summed over the nodes, want > 0", c.name, c.labels, v)
		}
	}
	// Two failovers and a fourth node taking leaderships: more leaderships were taken up
	// than there are partitions.
	leads, _ := total.Sum("restate_partition_leader_changes_total")
	led := 0
	for series := range total {
		if strings.HasPrefix(series, "restate_partition_applied_lsn{") && strings.Contains(series, `mode="leader"`) {
			led++
		}
	}
	if led == 0 || leads <= float64(led) {
		t.Errorf("restate_partition_leader_changes_total summed %v over the nodes for %d led partitions: want more after failovers", leads, led)
	}
	t.Logf("metrics: %v leaderships taken up for %d partitions; %v records appended to replicated loglets; %v stores ok on log servers",
		leads, led, total["restate_bifrost_records_appended_total{provider=\"replicated\"}"], total["restate_log_server_stores_total{status=\"ok\"}"])
}

// killAndRestart runs w's load through every ingress, SIGKILLs (pickLeader) the node holding
// the metadata leader or one that does not, waits until every partition is led and followed
// on the other two, restarts the node, waits until it holds replicas again, and checks that
// every acknowledged add is there exactly once. It logs the longest gap between acknowledged
// calls after the kill and returns it.
func (c *cluster3) killAndRestart(t *testing.T, w *Workload, inc int, pickLeader bool) time.Duration {
	t.Helper()
	leader, err := c.metadataLeader()
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for i, name := range c.names {
		if (name == leader) == pickLeader {
			victim = i
			break
		}
	}
	if victim < 0 {
		t.Fatalf("no node to kill (metadata leader %q)", leader)
	}
	what := map[bool]string{false: "a node without the metadata leader", true: "the metadata leader's node"}[pickLeader]
	load := w.StartSteady(inc, fmt.Sprintf("r%d", inc))
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		load.Stop()
		t.Fatalf("only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	time.Sleep(time.Second)
	kill := time.Now()
	c.nodes[victim].Kill()
	w.client.CloseIdleConnections()
	if !load.WaitAcked(kill, 200, progressTimeout) {
		load.Stop()
		t.Fatalf("after killing %s (%s), only %d calls acknowledged in %v", c.names[victim], what, load.AckedSince(kill), progressTimeout)
	}
	c.settle(t, victim, "")
	gap, began := load.LongestGap(kill, time.Now())
	t.Logf("killed %s (%s): longest gap between acknowledged calls %v, from %v after the kill",
		c.names[victim], what, gap.Round(time.Millisecond), began.Sub(kill).Round(time.Millisecond))
	restart := time.Now()
	c.nodes[victim].Start()
	t.Logf("%s restarted, ready in %v", c.names[victim], time.Since(restart).Round(time.Millisecond))
	c.settle(t, -1, c.names[victim])
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		load.Stop()
		t.Fatalf("after %s's restart, only %d calls acknowledged", c.names[victim], load.AckedSince(restart))
	}
	load.Stop()
	DrainAll(t, w, inc)
	CheckExactlyOnce(t, w)
	return gap
}

// TestInFlightWorkSurvivesItsLeader puts durable timers (Sleeper.nap), calls with delayed
// sends (Orders.place) and invocations waiting on an awakeable (Approvals.request) in flight,
// SIGKILLs the node that leads the most of them, resolves the awakeables through another
// node, and requires every invocation to complete once with its journaled effects applied
// once: one side effect per nap and per order, one reminder per order, each counter added to
// once.
func TestInFlightWorkSurvivesItsLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	examples.ResetStats()
	c := runningCluster3(t)

	type inflight struct {
		what, id  string
		partition uint32
	}
	var work []inflight
	tag := fmt.Sprint(time.Now().UnixNano())
	send := func(path, body, what string) {
		t.Helper()
		resp, err := harness.Send(http.MethodPost, c.nodes[0].Ingress+path, body, map[string]string{"content-type": "application/json"})
		if err != nil || resp.Status != http.StatusAccepted {
			t.Fatalf("send %s: %v %+v", path, err, resp)
		}
		id, err := ids.ParseInvocationID(resp.Header.Get("x-restate-id"))
		if err != nil {
			t.Fatalf("send %s: invocation id %q: %v", path, resp.Header.Get("x-restate-id"), err)
		}
		work = append(work, inflight{what: what, id: id.String(), partition: ids.PartitionOf(id.PartitionKey, numLogs)})
	}
	const each = 4
	for i := range each {
		send("/Sleeper/nap/send", "3000", "nap")
		send("/Orders/place/send", fmt.Sprintf(`{"customer":"c%d","sku":"sku-%s-%d","quantity":2,"reminderDelayMs":2500}`, i, tag, i), "order")
		send("/Approvals/request/send", fmt.Sprintf(`"%s-%d"`, tag, i), "approval")
	}
	harness.Eventually(t, progressTimeout, "every side effect and awakeable to exist", func() bool {
		if examples.NapSideEffects.Load() < each || examples.OrderIDsIssued.Load() < each {
			return false
		}
		for i := range each {
			if examples.AwakeableFor(fmt.Sprintf("%s-%d", tag, i)) == "" {
				return false
			}
		}
		return true
	})
	// A side effect runs again if the kill loses its result (the SDK ran the closure, its
	// RunCompletion was not yet in the log), which the counts below would take for a
	// duplicate: wait until each nap's and order's result is in its journal, which a leader
	// applies from the log. A fixed pause (it was 300 ms) is no bound under load.
	ran := time.Now()
	harness.Eventually(t, progressTimeout, "every side effect's result in its journal", func() bool {
		for _, w := range work {
			if w.what != "approval" && !runJournaled(c.nodes[0].Admin, w.id) {
				return false
			}
		}
		return true
	})
	t.Logf("every side effect's result journaled %v after the last one ran", time.Since(ran).Round(time.Millisecond))

	st, err := c.status(-1)
	if err != nil {
		t.Fatal(err)
	}
	led := map[string]int{}
	for _, w := range work {
		led[st.Partitions[w.partition].Leader]++
	}
	victim, most := -1, -1
	for i, name := range c.names {
		if led[name] > most {
			victim, most = i, led[name]
		}
	}
	t.Logf("in flight: %d invocations; killing %s, leader of %d of them", len(work), c.names[victim], most)
	c.nodes[victim].Kill()
	t.Cleanup(func() {
		if st, err := c.status(victim); t.Failed() && err == nil {
			logPartitions(t, st) // where the partitions ended up, for the logs dumped next
		}
	})
	c.waitPlaced(t, victim, "")
	live := c.nodes[(victim+1)%3]
	for i := range each {
		awk := examples.AwakeableFor(fmt.Sprintf("%s-%d", tag, i))
		resp, err := harness.Send(http.MethodPost, live.Ingress+"/restate/a/"+awk+"/resolve", `"ok"`, map[string]string{"content-type": "application/json"})
		if err != nil || resp.Status != http.StatusAccepted {
			t.Fatalf("resolve awakeable %d: %v %+v", i, err, resp)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The calls the orders made, and where each stands.
			body, _ := json.Marshal(map[string]string{"query": "SELECT id, status, target, journal_size FROM sys_invocation WHERE target_service_name = 'Counter'"})
			if r, err := harness.Send(http.MethodPost, live.Admin+"/query", string(body), map[string]string{"accept": "application/json", "content-type": "application/json"}); err == nil {
				t.Logf("Counter invocations: %d %s", r.Status, r.Body)
			}
		}
	})
	for _, w := range work {
		var resp *harness.Response
		t.Cleanup(func() {
			if t.Failed() {
				// Where an invocation that did not complete is stuck.
				for _, sql := range []string{
					"SELECT id, status, target, journal_size, last_failure, next_retry_at FROM sys_invocation WHERE id = '" + w.id + "'",
					"SELECT index, entry_type, name, completed FROM sys_journal WHERE id = '" + w.id + "'",
				} {
					body, _ := json.Marshal(map[string]string{"query": sql})
					r, err := harness.Send(http.MethodPost, live.Admin+"/query", string(body), map[string]string{"accept": "application/json", "content-type": "application/json"})
					if err == nil {
						t.Logf("%s\n  -> %d %s", sql, r.Status, r.Body)
					}
				}
			}
		})
		harness.Eventually(t, progressTimeout, "the "+w.what+" "+w.id+" to complete", func() bool {
			resp, err = harness.Send(http.MethodGet, live.Ingress+"/restate/invocation/"+w.id+"/attach", "", nil)
			return err == nil && resp.Status == http.StatusOK
		})
		want := map[string]string{"nap": "napped 3000ms", "order": `"orderId":"order-`, "approval": `"approved: ok"`}[w.what]
		if !strings.Contains(resp.Body, want) {
			t.Fatalf("%s %s answered %q, want it to contain %q", w.what, w.id, resp.Body, want)
		}
	}
	harness.Eventually(t, progressTimeout, "every reminder", func() bool { return examples.RemindersDelivered.Load() >= each })
	time.Sleep(500 * time.Millisecond) // a duplicate would show meanwhile
	if n, o, r := examples.NapSideEffects.Load(), examples.OrderIDsIssued.Load(), examples.RemindersDelivered.Load(); n != each || o != each || r != each {
		t.Fatalf("side effects: %d naps, %d order ids, %d reminders; want %d of each", n, o, r, each)
	}
	for i := range each {
		resp, err := harness.Send(http.MethodGet, live.Ingress+fmt.Sprintf("/Counter/sku-%s-%d/get", tag, i), "", nil)
		if err != nil || resp.Body != "2" {
			t.Fatalf("counter of order %d: %v %+v, want 2", i, err, resp)
		}
	}
	t.Logf("all %d in-flight invocations completed once after their leader's node died", len(work))
}

// runJournaled reports whether invocation id's journal holds the result of a ctx.Run, as
// the admin API at admin reads it.
func runJournaled(admin, id string) bool {
	body, _ := json.Marshal(map[string]string{"query": "SELECT entry_type FROM sys_journal WHERE id = '" + id + "'"})
	r, err := harness.Send(http.MethodPost, admin+"/query", string(body), map[string]string{"accept": "application/json", "content-type": "application/json"})
	if err != nil || r.Status != http.StatusOK {
		return false
	}
	var rows struct {
		Rows []struct {
			EntryType string `json:"entry_type"`
		} `json:"rows"`
	}
	if json.Unmarshal([]byte(r.Body), &rows) != nil {
		return false
	}
	for _, e := range rows.Rows {
		if e.EntryType == "Notification: Run" {
			return true
		}
	}
	return false
}

// TestFrozenLeaderIsDeposed freezes (SIGSTOP) a node that leads partitions under load, so that
// its connections stay open but nothing answers: the failure detector finds it dead after
// its heartbeat timeouts, its followers take over, and when it thaws (SIGCONT) it learns it
// was deposed and follows, while the requests it held are answered by the new leaders (the
// ingress retries them with the same invocation id). Every acknowledged add is there exactly
// once.
func TestFrozenLeaderIsDeposed(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	c := runningCluster3(t)
	// Leaderships spread over the nodes once followers have caught up.
	victim := -1
	var st *cluster.Status
	harness.Eventually(t, chainTimeout, "a node without the metadata leader to lead a partition", func() bool {
		var err error
		if st, err = c.status(-1); err != nil {
			return false
		}
		for i, name := range c.names {
			if name != st.Metadata.Leader && slices.ContainsFunc(st.Partitions, func(p cluster.PartitionStatus) bool { return p.Leader == name }) {
				victim = i
				return true
			}
		}
		return false
	})
	name := c.names[victim]
	w := NewWorkload(c.nodes[(victim+1)%3].Ingress, "add", CounterKeys("frz-", 16), 8, AcceptAdd)
	w.Ingresses = c.ingresses()
	// A frozen node accepts connections and answers nothing: a client gives up on it after
	// a while and tries the next ingress.
	w.client.Timeout = 2 * time.Second
	load := w.StartSteady(1, "f")
	defer load.Stop()
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		t.Fatalf("only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	pid := c.nodes[victim].Pid()
	freeze := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer thaw()
	// The partition table straight from a live metadata server: the status API would wait
	// for the frozen node's answer.
	live := c.nodes[(victim+1)%3]
	harness.Eventually(t, chainTimeout, "the frozen node's partitions to move", func() bool {
		resp, err := http.Get(live.Fabric + metadata.PathPrefix + "v1/" + metadata.KeyPartitionTable)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var tbl metadata.PartitionTable
		if json.NewDecoder(resp.Body).Decode(&tbl) != nil || len(tbl.Placement) == 0 {
			return false
		}
		return !slices.ContainsFunc(tbl.Placement, func(p metadata.PartitionPlacement) bool { return p.Leader == name || p.Leader == "" })
	})
	moved := time.Since(freeze)
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatalf("with %s frozen, only %d calls acknowledged", name, load.AckedSince(freeze))
	}
	gap, _ := load.LongestGap(freeze, time.Now())
	t.Logf("froze %s: its partitions moved after %v; longest gap between acknowledged calls %v", name, moved.Round(time.Millisecond), gap.Round(time.Millisecond))
	thaw()
	// Thawed, it finds the partitions led elsewhere and follows; what it held is answered
	// by the new leaders.
	harness.Eventually(t, chainTimeout, name+" to follow, with every partition led", func() bool {
		st, err := c.status(-1)
		if err != nil || placedEverywhere(st, "") != nil {
			return false
		}
		for _, p := range st.Partitions {
			for _, pr := range p.Processors {
				if pr.Node == name && pr.Mode == "leader" && p.PlacedLeader != name {
					return false // still acting on a leadership it lost
				}
			}
		}
		return true
	})
	if !load.WaitAcked(time.Now(), 100, progressTimeout) {
		t.Fatalf("after %s thawed, only %d calls acknowledged", name, load.AckedSince(freeze))
	}
	load.Stop()
	DrainAll(t, w, 1)
	CheckExactlyOnce(t, w)
}
