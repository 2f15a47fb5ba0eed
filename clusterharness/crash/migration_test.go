package crash

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
)

const (
	// waitsForVM is what the placement says of a partition whose log's local segment is on
	// vm while vm is down.
	waitsForVM = "the log's local segment is on node vm, which is not an alive worker"
	// holdWaiting is how long the partitions must keep waiting for vm once the placement
	// says they do. Before the local segments named vm, n2 and n3 were placed as leaders
	// within a second or two of the controller finding vm dead.
	holdWaiting = 5 * time.Second
)

// migration is the README's "Migrating a single node to a cluster" on loopback: vm, the
// single node with data, and n2 and n3, which join it. Every node has fixed ports (vm's
// fabric and gossip addresses become a metadata member's and a gossip seed's).
type migration struct {
	nodes  []*Server // vm, n2, n3
	names  []string
	gossip []string
}

func newMigration(t *testing.T) *migration {
	t.Helper()
	m := &migration{names: []string{"vm", "n2", "n3"}, gossip: freePorts(t, 3)}
	for i, name := range m.names {
		s := NewServer(t, serverBin)
		s.SetName(name)
		s.Setenv("RESTATE_NODE_NAME="+name, "RESTATE_ADVERTISED_ADDRESS="+s.Fabric, "RESTATE_GOSSIP__BIND_ADDRESS="+m.gossip[i])
		m.nodes = append(m.nodes, s)
	}
	return m
}

// joinCluster configures every node as in the README's steps 1 and 2: replicated metadata
// over the three fabric addresses, the gossip seeds, a snapshot destination the nodes share
// and no trim delay; n2 and n3 also do not provision (they join vm's cluster).
func (m *migration) joinCluster(t *testing.T) {
	t.Helper()
	var fabrics []string
	for _, s := range m.nodes {
		fabrics = append(fabrics, s.Fabric)
	}
	snapshots := t.TempDir()
	for i, s := range m.nodes {
		s.Setenv("RESTATE_METADATA_SERVER__TYPE=replicated",
			"RESTATE_METADATA_CLIENT__ADDRESSES=["+strings.Join(fabrics, ",")+"]",
			"RESTATE_GOSSIP__SEEDS=["+strings.Join(m.gossip, ",")+"]",
			"RESTATE_WORKER__SNAPSHOTS__DESTINATION=file://"+snapshots,
			"RESTATE_WORKER__TRIM_DELAY_INTERVAL=0s")
		if i > 0 {
			s.Setenv("RESTATE_AUTO_PROVISION=false")
		}
	}
}

// status reads the cluster status through the first of nodes that answers.
func (m *migration) status(nodes ...int) (*cluster.Status, error) {
	var errs []string
	for _, i := range nodes {
		st, err := harness.ClusterStatus(m.nodes[i].Fabric)
		if err == nil {
			return st, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", m.names[i], err))
	}
	return nil, fmt.Errorf("no node answered the status: %s", strings.Join(errs, "; "))
}

// waitStatus polls the cluster status through the first of nodes that answers until cond
// accepts it and returns that status; on timeout it fails the test with cond's last
// complaint.
func (m *migration) waitStatus(t *testing.T, what string, nodes []int, cond func(*cluster.Status) error) *cluster.Status {
	t.Helper()
	deadline := time.Now().Add(chainTimeout)
	for {
		st, err := m.status(nodes...)
		if err == nil {
			if err = cond(st); err == nil {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, not yet %s: %v", chainTimeout, what, err)
		}
		// Polls the status; the deadline bounds the wait.
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *migration) ingresses() []string {
	var out []string
	for _, s := range m.nodes {
		out = append(out, s.Ingress)
	}
	return out
}

// joined checks that the status shows the three nodes alive, three read-write log servers
// and three voting metadata members.
func joined(st *cluster.Status) error {
	alive, logServers := 0, 0
	for _, n := range st.Nodes {
		if n.State == "alive" {
			alive++
		}
		if n.LogStorage == metadata.StorageReadWrite {
			logServers++
		}
	}
	voters := 0
	for _, mm := range st.Metadata.Members {
		if mm.Voter {
			voters++
		}
	}
	if alive != 3 || logServers != 3 || voters != 3 {
		return fmt.Errorf("%d nodes alive, %d read-write log servers, %d voting metadata members (leader %q); want 3 of each",
			alive, logServers, voters, st.Metadata.Leader)
	}
	return nil
}

// localSegmentsOn checks that a log's chain is its sealed local segments, each naming node
// as the one that holds its records, then replicated segments.
func localSegmentsOn(node string) func(cluster.LogStatus) error {
	return func(l cluster.LogStatus) error {
		if err := localThenReplicated(l); err != nil {
			return err
		}
		for _, s := range l.Segments {
			if s.Provider == cluster.ProviderLocal && s.Node != node {
				return fmt.Errorf("local segment %d names node %q, want %s", s.Index, s.Node, node)
			}
		}
		return nil
	}
}

// withoutVM checks what must hold of every partition while vm is down and the logs still
// have its local segments: neither placed nor running on n2 or n3, whose disks lack the
// records. It also says which partition, if any, does not (yet) say that it waits for vm.
func withoutVM(st *cluster.Status) (notWaiting string, err error) {
	if len(st.Partitions) != numLogs {
		return fmt.Sprintf("%d partitions in the status, want %d", len(st.Partitions), numLogs), nil
	}
	for _, p := range st.Partitions {
		others := slices.DeleteFunc(append([]string{p.Leader, p.PlacedLeader}, p.PlacedFollowers...), func(n string) bool { return n == "" || n == "vm" })
		for _, pr := range p.Processors {
			if pr.Node != "vm" {
				others = append(others, pr.Node+" ("+pr.Mode+")")
			}
		}
		if len(others) > 0 {
			return "", fmt.Errorf("partition %d is on %v (leader %q, placed leader %q, followers %v; %s) while vm, which holds its log's local segment, is down",
				p.ID, others, p.Leader, p.PlacedLeader, p.PlacedFollowers, p.UnderReplicated)
		}
		if notWaiting == "" && (p.PlacedLeader != "" || !strings.Contains(p.UnderReplicated, waitsForVM)) {
			notWaiting = fmt.Sprintf("partition %d: placed leader %q (%s)", p.ID, p.PlacedLeader, p.UnderReplicated)
		}
	}
	return notWaiting, nil
}

// ledBy checks that every partition is led by its placed leader, and by node if not "".
func ledBy(st *cluster.Status, node string) error {
	for _, p := range st.Partitions {
		if p.Leader == "" || p.Leader != p.PlacedLeader || (node != "" && p.Leader != node) {
			return fmt.Errorf("partition %d: leader %q, placed leader %q (%s)", p.ID, p.Leader, p.PlacedLeader, p.UnderReplicated)
		}
	}
	if len(st.Partitions) != numLogs {
		return fmt.Errorf("%d partitions in the status, want %d", len(st.Partitions), numLogs)
	}
	return nil
}

// checkCountersThrough reads every key of w through each ingress and requires want.
func checkCountersThrough(t *testing.T, w *Workload, ingresses []string, want map[string]int) {
	t.Helper()
	defer func(ingress string) { w.Ingress = ingress }(w.Ingress)
	for _, ingress := range ingresses {
		w.Ingress = ingress
		got, err := counterValues(w)
		if err != nil {
			t.Fatalf("through %s: %v", ingress, err)
		}
		for _, key := range SortedKeys(want) {
			if got[key] != want[key] {
				t.Errorf("key %s reads %d through %s, want %d", key, got[key], ingress, want[key])
			}
		}
	}
}

// TestMigratedPartitionsWaitForTheirLocalSegmentsNode follows the README's migration of a
// single node to a cluster: vm writes Counter values on local metadata and local logs, is
// restarted with replicated metadata, n2 and n3 join, and the logs switch to replicated
// segments with partition replication 2. The records of the local segments are on vm's
// disk only, so each sealed local segment names vm. vm is then SIGKILLed before any
// snapshot: the partitions must wait for it, with no leader and the placement saying so,
// rather than be led by n2 or n3, which would loop on "the log is trimmed past this store"
// and keep vm out after its restart. vm restarted leads every partition again, every
// counter reads exactly its value through all three ingresses, and new adds work. Once
// snapshots cover the local segments and the logs are trimmed past them, followers are
// placed on n2 and n3, and the counters are still exact.
func TestMigratedPartitionsWaitForTheirLocalSegmentsNode(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	begin := time.Now()
	uri := harness.StartExamples(t)
	m := newMigration(t)
	vm, n2, n3 := m.nodes[0], m.nodes[1], m.nodes[2]

	// 1. vm alone, on local metadata and local logs, with counters on every partition.
	vm.Start()
	harness.Register(t, vm.Admin, uri)
	w := NewWorkload(vm.Ingress, "add", CounterKeys("mig-", 16), 8, AcceptAdd)
	parts := map[uint32]bool{}
	for _, key := range w.Keys {
		parts[ids.PartitionOf(ids.PartitionKeyOf(key), numLogs)] = true
	}
	if len(parts) != numLogs {
		t.Fatalf("the keys fall in %d of %d partitions", len(parts), numLogs)
	}
	load := w.StartSteady(1, "a")
	if !load.WaitAcked(time.Time{}, 200, progressTimeout) {
		load.Stop()
		t.Fatalf("only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	load.Stop()
	DrainAll(t, w, 1)
	CheckExactlyOnce(t, w)

	// 2. vm restarted with replicated metadata; n2 and n3 join.
	vm.Kill()
	m.joinCluster(t)
	restarted := time.Now()
	vm.Start()
	n2.Launch()
	n3.Launch()
	n2.WaitReady()
	n3.WaitReady()
	st := m.waitStatus(t, "three nodes alive, three log servers, three metadata members", []int{0, 1, 2}, joined)
	if st.Metadata.Type != "replicated" {
		t.Fatalf("metadata type %q after the restart, want replicated", st.Metadata.Type)
	}
	t.Logf("vm restarted on replicated metadata, n2 and n3 joined: %v", time.Since(restarted).Round(time.Millisecond))

	// 3. Replicated logs with replication 2, and a follower per partition asked for.
	resp, err := harness.Send(http.MethodPatch, vm.Fabric+cluster.PathPrefix+"config",
		`{"log_provider":"replicated","log_replication":2,"partition_replication":2}`, map[string]string{"content-type": "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("config set: %d %s", resp.Status, resp.Body)
	}
	setAt := time.Now()
	life := generation(t, vm.Fabric, "vm")
	migrated := waitLogs(t, vm.Fabric, "every log on an open replicated segment after its local ones", func(st *cluster.LogsStatus) error {
		return eachLog(st, both(openTailOf(life), localThenReplicated))
	})
	t.Logf("every log moved to a replicated segment %v after config set", time.Since(setAt).Round(time.Millisecond))
	// The local segments were provisioned naming no node; vm, which holds their records,
	// names itself. Without that the test goes on, to show what the partitions then do.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := logsView(vm.Fabric)
		if err == nil {
			migrated = st
			err = eachLog(st, localSegmentsOn("vm"))
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the local segments do not name vm: %v", err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	logChains(t, migrated)

	// Adds through every ingress after the switch: records in the replicated segments too.
	w.Ingresses = m.ingresses()
	load = w.StartSteady(1, "b")
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		load.Stop()
		t.Fatalf("after the switch, only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	load.Stop()
	DrainAll(t, w, 1)
	values := CheckExactlyOnce(t, w)

	// 4. vm dies before any snapshot: the partitions wait for it.
	kill := time.Now()
	vm.Kill()
	w.client.CloseIdleConnections()
	// Until the controller finds vm dead, the placement still names it; from then on every
	// partition must wait for it, for holdWaiting.
	var waitingSince time.Time
	polls := 0
	for {
		st, err := m.status(1, 2)
		var notWaiting string
		if err == nil {
			polls++
			if notWaiting, err = withoutVM(st); err != nil {
				logPartitions(t, st)
				t.Fatalf("%v after vm's kill: %v", time.Since(kill).Round(time.Millisecond), err)
			}
			switch {
			case notWaiting == "" && waitingSince.IsZero():
				waitingSince = time.Now()
				logPartitions(t, st)
				t.Logf("every partition waits for vm %v after its kill: %s", waitingSince.Sub(kill).Round(time.Millisecond), st.Partitions[0].UnderReplicated)
			case notWaiting != "" && !waitingSince.IsZero():
				logPartitions(t, st)
				t.Fatalf("%v after the partitions began to wait for vm, %s", time.Since(waitingSince).Round(time.Millisecond), notWaiting)
			}
		}
		if !waitingSince.IsZero() && time.Since(waitingSince) >= holdWaiting {
			break
		}
		if waitingSince.IsZero() && time.Since(kill) > chainTimeout {
			if err == nil {
				err = errors.New(notWaiting)
			}
			t.Fatalf("%v after vm's kill, not every partition waits for it: %v", chainTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the partitions waited for vm, without leader, for %v (%d status polls through n2 and n3 since the kill)", holdWaiting, polls)
	if logs, err := logsView(n2.Fabric); err != nil {
		t.Errorf("logs view through n2: %v", err)
	} else if err := eachLog(logs, localThenReplicated); err != nil {
		t.Errorf("the logs lost their local segments while vm was down: %v", err)
	}

	// 5. vm restarted leads every partition again.
	restart := time.Now()
	vm.Start()
	ready := time.Since(restart)
	// Through n2 and n3, whose copies of the metadata stayed current: vm's own may still be
	// catching up on the placement from before its kill.
	m.waitStatus(t, "vm to lead every partition again", []int{1, 2}, func(st *cluster.Status) error { return ledBy(st, "vm") })
	t.Logf("vm restarted (ready in %v) and led every partition again %v after its restart",
		ready.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
	// Nothing of a partition started where its records were not.
	for _, s := range []*Server{n2, n3} {
		if lines := s.grepLogs("past this store"); len(lines) > 0 {
			t.Errorf("a partition started on %s without its log's records (%d times): %s", s.name, len(lines), lines[0])
		}
	}
	checkCountersThrough(t, w, m.ingresses(), values)
	load = w.StartSteady(2, "c")
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		load.Stop()
		t.Fatalf("after vm's restart, only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	load.Stop()
	DrainAll(t, w, 2)
	values = CheckExactlyOnce(t, w)

	// 6. Snapshots cover the local segments; once the logs are trimmed past them, followers
	// start on n2 and n3 from the snapshots.
	snap := time.Now()
	createSnapshots(t, vm.Fabric)
	waitLogs(t, vm.Fabric, "the logs trimmed past their local segments", func(st *cluster.LogsStatus) error {
		return eachLog(st, func(l cluster.LogStatus) error {
			if s := l.Segments[0]; s.Provider == cluster.ProviderLocal {
				return fmt.Errorf("local segment %d still in the chain (trim point %d)", s.Index, l.TrimPointLSN)
			}
			return nil
		})
	})
	st = m.waitStatus(t, "a leader and a follower of every partition", []int{1, 2, 0}, func(st *cluster.Status) error {
		if err := placedEverywhere(st, ""); err != nil {
			return err
		}
		return ledBy(st, "")
	})
	logPartitions(t, st)
	t.Logf("followers on n2 and n3 %v after snapshots create", time.Since(snap).Round(time.Millisecond))
	checkCountersThrough(t, w, m.ingresses(), values)
	t.Logf("whole test: %v", time.Since(begin).Round(time.Millisecond))
}
