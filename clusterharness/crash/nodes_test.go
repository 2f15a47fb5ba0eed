package crash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/clusterharness/testbin"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Helpers of the tests that run a cluster of processes: one gorestate node with every role
// (node A: metadata server, admin, worker, log server, ingress) and two logserverd log
// servers (B and C) that use A's metadata server, all gossiping with one another.

const (
	nodeA = "node-a"
	nodeB = "node-b"
	nodeC = "node-c"

	// numLogs is the number of partitions, hence logs (RESTATE_DEFAULT_NUM_PARTITIONS of
	// NewServer).
	numLogs = 4
	// logReplication is the replication of the replicated logs; with three log servers the
	// nodeset has three members (max(2r−1, r+1)), the write quorum is 2 and so is the
	// f-majority that a seal needs (n − r + 1).
	logReplication = 2
	nodesetSize    = 3
	fMajority      = nodesetSize - logReplication + 1

	// chainTimeout bounds waiting for a change of the log chains to show in the logs view.
	chainTimeout = 30 * time.Second
	// progressTimeout bounds waiting for acknowledged calls after a change or a fault.
	progressTimeout = 20 * time.Second
)

// daemonBins are logserverd and gorestatectl, built once per test run next to the gorestate
// binary (TestMain removes that directory). logserverd is race-instrumented when the test
// binary is, like the server; gorestatectl is a short-lived client and is not.
var daemonBins = sync.OnceValues(func() (bins [2]string, err error) {
	dir := filepath.Dir(serverBin)
	bins = [2]string{filepath.Join(dir, "logserverd"), filepath.Join(dir, "gorestatectl")}
	if err := testbin.Build(bins[0], "gorestate.dev/logserverd/cmd/logserverd", testbin.Race); err != nil {
		return bins, err
	}
	return bins, testbin.Build(bins[1], "gorestate.dev/metadatad/cmd/gorestatectl", false)
})

// trio is node A and log servers B and C, prepared but not started.
type trio struct {
	A, B, C *Server
	ctl     string // gorestatectl
}

// newTrio prepares the three nodes on free loopback ports and fresh data directories. Each
// has a fixed gossip port and seeds the other two, so that gossip reassembles whichever
// node restarts. providerEnv configures node A's provisioning (e.g. the replicated
// provider from the start).
func newTrio(t *testing.T, providerEnv ...string) *trio {
	t.Helper()
	bins, err := daemonBins()
	if err != nil {
		t.Fatalf("build the daemons: %v", err)
	}
	gossip := freePorts(t, 3)
	seeds := func(i int) string {
		var others []string
		for j, g := range gossip {
			if j != i {
				others = append(others, g)
			}
		}
		return "RESTATE_GOSSIP__SEEDS=[" + strings.Join(others, ",") + "]"
	}
	c := &trio{A: NewServer(t, serverBin), ctl: bins[1]}
	c.A.SetName(nodeA)
	c.A.Setenv("RESTATE_NODE_NAME="+nodeA, "RESTATE_ADVERTISED_ADDRESS="+c.A.Fabric,
		"RESTATE_GOSSIP__BIND_ADDRESS="+gossip[0], seeds(0))
	c.A.Setenv(providerEnv...)
	for i, name := range []string{nodeB, nodeC} {
		s := NewServer(t, bins[0])
		s.SetName(name)
		s.SetReadyLine("log server ready")
		// NewServer's ingress and admin addresses mean nothing to logserverd.
		s.Setenv("RESTATE_NODE_NAME="+name, "RESTATE_ROLES=[log-server]", "RESTATE_ADVERTISED_ADDRESS="+s.Fabric,
			"RESTATE_METADATA_CLIENT__ADDRESSES=["+c.A.Fabric+"]",
			"RESTATE_GOSSIP__BIND_ADDRESS="+gossip[i+1], seeds(i+1))
		if i == 0 {
			c.B = s
		} else {
			c.C = s
		}
	}
	return c
}

// waitClusterAPI waits until node A's cluster API answers, so that log servers started
// next find its metadata server (they would wait for it anyway, with backoff).
func waitClusterAPI(t *testing.T, fabric string) {
	t.Helper()
	harness.Eventually(t, startTimeout, "the cluster API of "+fabric, func() bool {
		_, err := harness.ClusterStatus(fabric)
		return err == nil
	})
}

// ctl runs gorestatectl against node A and returns its output; it fails the test if the
// command fails.
func (c *trio) ctlRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.ctl, append([]string{"-s", c.A.Fabric}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gorestatectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// generation returns the generation of a node's current life in the nodes configuration.
func generation(t *testing.T, fabric, node string) metadata.NodeID {
	t.Helper()
	st, err := harness.ClusterStatus(fabric)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Name == node {
			return metadata.NodeID{Name: n.Name, Generation: n.Generation}
		}
	}
	t.Fatalf("node %s is not in the nodes configuration", node)
	return metadata.NodeID{}
}

// addresses maps node names to fabric URLs, from the nodes configuration.
func addresses(t *testing.T, fabric string) map[string]string {
	t.Helper()
	st, err := harness.ClusterStatus(fabric)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range st.Nodes {
		out[n.Name] = n.Address
	}
	return out
}

// gossipState is a node's state in the gossip view of the node at fabric (alive, suspect,
// failed, left, unknown), or "" if it cannot be read.
func gossipState(fabric, node string) string {
	st, err := harness.ClusterStatus(fabric)
	if err != nil {
		return ""
	}
	for _, n := range st.Nodes {
		if n.Name == node {
			return n.State
		}
	}
	return ""
}

// readWriteLogServers counts the log servers whose storage is read-write.
func readWriteLogServers(fabric string) (int, error) {
	st, err := harness.ClusterStatus(fabric)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, node := range st.Nodes {
		if node.LogStorage == metadata.StorageReadWrite {
			n++
		}
	}
	return n, nil
}

// logsView reads the logs view (what `gorestatectl logs list --json` prints).
func logsView(fabric string) (*cluster.LogsStatus, error) {
	resp, err := harness.Send(http.MethodGet, fabric+cluster.PathPrefix+"logs", "", nil)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("logs view: %d %s", resp.Status, resp.Body)
	}
	var st cluster.LogsStatus
	if err := json.Unmarshal([]byte(resp.Body), &st); err != nil {
		return nil, fmt.Errorf("decode logs view: %w", err)
	}
	if len(st.Logs) != numLogs {
		return nil, fmt.Errorf("logs view has %d logs, want %d", len(st.Logs), numLogs)
	}
	return &st, nil
}

// waitLogs polls the logs view until cond accepts it and returns that view; on timeout it
// fails the test with cond's last complaint.
func waitLogs(t *testing.T, fabric, what string, cond func(*cluster.LogsStatus) error) *cluster.LogsStatus {
	t.Helper()
	deadline := time.Now().Add(chainTimeout)
	for {
		st, err := logsView(fabric)
		if err == nil {
			if err = cond(st); err == nil {
				return st
			}
		}
		if time.Now().After(deadline) {
			if st != nil {
				logChains(t, st)
			}
			t.Fatalf("after %v, not yet %s: %v", chainTimeout, what, err)
		}
		// Polls the logs view; the deadline bounds the wait.
		time.Sleep(100 * time.Millisecond)
	}
}

// eachLog applies check to every log and joins the complaints.
func eachLog(st *cluster.LogsStatus, check func(l cluster.LogStatus) error) error {
	var errs []error
	for _, l := range st.Logs {
		if err := check(l); err != nil {
			errs = append(errs, fmt.Errorf("log %d: %w", l.ID, err))
		}
	}
	return errors.Join(errs...)
}

// replicatedShape checks a replicated segment's parameters.
func replicatedShape(s cluster.SegmentStatus) error {
	switch {
	case s.Provider != bifrost.ProviderReplicated:
		return fmt.Errorf("segment %d is %s, want replicated", s.Index, s.Provider)
	case s.Replication != logReplication:
		return fmt.Errorf("segment %d has replication %d, want %d", s.Index, s.Replication, logReplication)
	case len(s.Nodeset) != nodesetSize:
		return fmt.Errorf("segment %d has nodeset %v, want %d log servers", s.Index, s.Nodeset, nodesetSize)
	case s.Sequencer == nil:
		return fmt.Errorf("segment %d has no sequencer", s.Index)
	}
	return nil
}

// openTailOf checks that a log's last segment is an open replicated segment whose
// sequencer is seq.
func openTailOf(seq metadata.NodeID) func(cluster.LogStatus) error {
	return func(l cluster.LogStatus) error {
		if len(l.Segments) == 0 {
			return fmt.Errorf("no segment yet (%s)", l.Waiting)
		}
		tail := l.Segments[len(l.Segments)-1]
		if err := replicatedShape(tail); err != nil {
			return err
		}
		if *tail.Sequencer != seq {
			return fmt.Errorf("open segment %d has sequencer %s, want %s", tail.Index, tail.Sequencer, seq)
		}
		if tail.State != "open" {
			return fmt.Errorf("segment %d is %s, want open", tail.Index, tail.State)
		}
		return nil
	}
}

// allReplicated checks that every segment of a log is replicated (with the cluster's
// replication and a full nodeset).
func allReplicated(l cluster.LogStatus) error {
	for _, s := range l.Segments {
		if err := replicatedShape(s); err != nil {
			return err
		}
	}
	return nil
}

// both combines log checks.
func both(checks ...func(cluster.LogStatus) error) func(cluster.LogStatus) error {
	return func(l cluster.LogStatus) error {
		var errs []error
		for _, c := range checks {
			errs = append(errs, c(l))
		}
		return errors.Join(errs...)
	}
}

// tailOffset converts the LSN after a segment's last record into the loglet's tail offset.
func tailOffset(s cluster.SegmentStatus, tailLSN uint64) bifrost.Offset {
	return bifrost.Offset(tailLSN - s.BaseLSN + 1)
}

// logChains logs every chain as `gorestatectl logs list` shows it, compactly.
func logChains(t *testing.T, st *cluster.LogsStatus) {
	t.Helper()
	var b strings.Builder
	for _, l := range st.Logs {
		fmt.Fprintf(&b, "\n  log %d:", l.ID)
		for _, s := range l.Segments {
			fmt.Fprintf(&b, " [%d %s base %d tail %d %s", s.Index, s.Provider, s.BaseLSN, s.TailLSN, s.State)
			if s.Sequencer != nil {
				fmt.Fprintf(&b, " seq %s nodeset %v", s.Sequencer, s.Nodeset)
			}
			b.WriteString("]")
		}
	}
	t.Logf("log chains (v%d):%s", st.Version, b.String())
}

// logletInfos asks every member of a replicated segment's nodeset for its view of the
// segment's loglet (a read-only request: a zero known global tail raises nothing).
func logletInfos(ctx context.Context, addrs map[string]string, s cluster.SegmentStatus) (map[string]*wire.LogletInfo, error) {
	out := map[string]*wire.LogletInfo{}
	for _, node := range s.Nodeset {
		addr, ok := addrs[node]
		if !ok {
			return nil, fmt.Errorf("nodeset member %s has no address", node)
		}
		c, err := wire.NewClient(addr)
		if err != nil {
			return nil, err
		}
		info, err := c.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: s.LogletID}})
		c.Close()
		if err != nil {
			return nil, err
		}
		if info.Status != wire.StatusOK {
			return nil, fmt.Errorf("%s answered %s for loglet %d", node, info.Status, s.LogletID)
		}
		out[node] = info
	}
	return out, nil
}

// storedOffNode checks that the committed records of a log's open replicated segment
// (below tailLSN) are held by a write quorum and by some log server other than skip
// (node A, whose log server shares the worker's process): a committed offset o lies on
// `replication` servers, each of which then has a local tail above o.
func storedOffNode(ctx context.Context, addrs map[string]string, s cluster.SegmentStatus, tailLSN uint64, skip string) error {
	committed := tailOffset(s, tailLSN)
	if committed <= 1 {
		return fmt.Errorf("segment %d holds no committed record (tail LSN %d, base %d)", s.Index, tailLSN, s.BaseLSN)
	}
	infos, err := logletInfos(ctx, addrs, s)
	if err != nil {
		return err
	}
	holders, elsewhere := 0, false
	var tails []string
	for _, node := range SortedKeys(infos) {
		lt := infos[node].LocalTail
		tails = append(tails, fmt.Sprintf("%s:%d", node, lt))
		if lt >= committed {
			holders++
			elsewhere = elsewhere || node != skip
		}
	}
	if holders < logReplication || !elsewhere {
		return fmt.Errorf("segment %d (loglet %d): committed tail offset %d, local tails %v: want %d servers at or above it, one of them not %s",
			s.Index, s.LogletID, committed, tails, logReplication, skip)
	}
	return nil
}
