package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/metadatad/raftstore"

	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// fakeCluster serves the cluster API over a real local store, with a gossip view and a
// metadata status that the test controls, and one worker that leads every partition.
func fakeCluster(t *testing.T) (url string, store *metadata.LocalStore) {
	t.Helper()
	store, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != rpc.PartitionsPath {
			http.NotFound(w, r)
			return
		}
		var ps []rpc.PartitionState
		for p := uint32(0); p < 2; p++ {
			ps = append(ps, rpc.PartitionState{ID: p, Node: "w1", Mode: "leader", Epoch: 3, AppliedLSN: 40 + uint64(p), TailLSN: 41 + uint64(p)})
		}
		_ = json.NewEncoder(w).Encode(ps)
	}))
	t.Cleanup(worker.Close)
	ctx := context.Background()
	for _, n := range []metadata.Node{
		{Name: "m1", Roles: []string{"metadata-server", "admin"}, Address: "http://m1:5122/"},
		{Name: "m2", Roles: []string{"metadata-server", "admin"}, Address: "http://m2:5122/"},
		{Name: "w1", Roles: []string{"worker"}, Address: worker.URL},
	} {
		if _, err := metadata.RegisterNode(ctx, store, n); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	h := cluster.NewHandler(cluster.Options{
		Sources: cluster.Sources{
			ClusterName: "test",
			Store:       store,
			Members: func() []membership.Member {
				return []membership.Member{
					{Name: "m1", Generation: 1, State: membership.StateAlive, Since: since},
					{Name: "m2", Generation: 1, State: membership.StateFailed, Since: since},
					{Name: "w1", Generation: 1, State: membership.StateAlive, Since: since},
				}
			},
			Metadata: func(context.Context) (cluster.MetadataStatus, error) {
				return cluster.MetadataStatus{Type: "replicated", Leader: "m1", Term: 2, Members: []cluster.MetadataMember{
					{Name: "m1", Address: "m1:5122", Voter: true, Leader: true},
					{Name: "m2", Address: "m2:5122", Voter: true},
				}}, nil
			},
			HTTP: http.DefaultClient,
		},
		Defaults: metadata.ClusterConfig{NumPartitions: 2, PartitionReplication: 1, LogProvider: "local", LogReplication: 1},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, store
}

func ctl(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

func TestCLIAgainstTheClusterAPI(t *testing.T) {
	url, _ := fakeCluster(t)
	// A dead address first: the CLI moves on to the next one.
	addr := "http://127.0.0.1:1," + url

	code, out, errOut := ctl(t, "", "-s", addr, "status")
	if code != 0 || !strings.Contains(out, "NOT provisioned") {
		t.Fatalf("status before provisioning: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := ctl(t, "n\n", "-s", addr, "provision"); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("unconfirmed provision: %d %s", code, errOut)
	}
	if code, out, errOut := ctl(t, "", "-s", addr, "provision", "--yes"); code != 0 || !strings.Contains(out, "Number of partitions   2") {
		t.Fatalf("provision: %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = ctl(t, "", "-s", addr, "provision", "--yes")
	if code != 1 || !strings.Contains(errOut, "the cluster is already provisioned: nothing to do (409 Conflict") {
		t.Fatalf("second provision: %d %s", code, errOut)
	}

	code, out, errOut = ctl(t, "", "-s", addr, "status")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	for _, want := range []string{
		"Cluster test (provisioned)",
		"Node Configuration (v3)",
		" m1    1    ALIVE   http://m1:5122/",
		" m2    1    FAILED  http://m2:5122/",
		"Metadata store (replicated): leader m1, term 2, 2 member(s)",
		" m2      m2:5122  follower  failed",
		" 1   w1      3      41           42        1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = ctl(t, "", "-s", url, "--json", "status")
	var st cluster.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Partitions) != 2 || st.Partitions[0].Leader != "w1" || st.Metadata.Leader != "m1" {
		t.Fatalf("status --json: %d %s", code, out)
	}

	code, out, _ = ctl(t, "", "-s", url, "config", "set", "--replication", "2", "--yes")
	if code != 0 || !strings.Contains(out, "* Partition replication  1          → 2") || !strings.Contains(out, "* Log replication") {
		t.Fatalf("config set: %d\n%s", code, out)
	}
	code, out, _ = ctl(t, "", "-s", url, "--json", "config", "get")
	var cfg metadata.ClusterConfig
	if code != 0 || json.Unmarshal([]byte(out), &cfg) != nil || cfg.PartitionReplication != 2 || cfg.LogReplication != 2 {
		t.Fatalf("config get after set: %d %s", code, out)
	}
	code, _, errOut = ctl(t, "", "-s", url, "config", "set", "--log-provider", "replicated", "--yes")
	if code != 1 || !strings.Contains(errOut, "needs a nodeset of 3 log servers") || !strings.Contains(errOut, "400 Bad Request") {
		t.Fatalf("config set of replicated logs without log servers: %d %s", code, errOut)
	}
	code, out, _ = ctl(t, "", "-s", url, "nodes", "list")
	if code != 0 || !strings.Contains(out, " w1    1    ALIVE") {
		t.Fatalf("nodes list: %d\n%s", code, out)
	}
	if code, _, errOut := ctl(t, "", "-s", url, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %s", code, errOut)
	}
	if code, _, errOut := ctl(t, "", "-s", "http://127.0.0.1:1", "status"); code != 1 || !strings.Contains(errOut, "no node answered") {
		t.Fatalf("no node: %d %s", code, errOut)
	}
}

func TestCLIMetadataServers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := raftstore.Open(raftstore.Options{Dir: t.TempDir(), NodeName: "m1", Address: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	code, out, errOut := ctl(t, "", "-s", addr, "metadata", "list-servers")
	if code != 0 || !strings.Contains(out, "leader m1") || !strings.Contains(out, " m1    "+ln.Addr().String()+"  voter     yes") {
		t.Fatalf("list-servers: %d\n%s%s", code, out, errOut)
	}
	// Removing a node that is not a member is a no-op, and says so as a success.
	if code, out, errOut := ctl(t, "", "-s", addr, "metadata", "remove-server", "gone", "--yes"); code != 0 || !strings.Contains(out, "gone is no longer a member") {
		t.Fatalf("remove-server: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := ctl(t, "", "-s", addr, "metadata", "remove-server"); code != 1 || !strings.Contains(errOut, "want exactly one node name") {
		t.Fatalf("remove-server without a name: %d %s", code, errOut)
	}
}

func TestCLILogs(t *testing.T) {
	url, store := fakeCluster(t)
	if code, _, errOut := ctl(t, "", "-s", url, "provision", "--yes"); code != 0 {
		t.Fatalf("provision: %s", errOut)
	}
	// Log 1 moved on to a replicated segment at LSN 42.
	ctx := context.Background()
	v, err := store.Get(ctx, metadata.KeyLogs)
	if err != nil {
		t.Fatal(err)
	}
	var logs metadata.Logs
	if err := json.Unmarshal(v.Value, &logs); err != nil {
		t.Fatal(err)
	}
	logs.Chains[1] = append(logs.Chains[1], metadata.Segment{BaseLSN: 42, Provider: "replicated", LogletID: 1<<32 | 1, Index: 1,
		Replicated: &metadata.ReplicatedParams{Sequencer: metadata.NodeID{Name: "w1", Generation: 2}, Replication: 2, Nodeset: []string{"l1", "l2", "l3"}}})
	b, _ := json.Marshal(logs)
	if _, err := store.Put(ctx, metadata.KeyLogs, b, v.Version); err != nil {
		t.Fatal(err)
	}

	// l2's disk was wiped: it lost its records of log 1's segments up to 1.
	nodes := metadata.Nodes{Nodes: map[string]metadata.Node{}}
	nv, err := store.Get(ctx, metadata.KeyNodes)
	if err == nil {
		if err := json.Unmarshal(nv.Value, &nodes); err != nil {
			t.Fatal(err)
		}
	}
	nodes.Nodes["l2"] = metadata.Node{Name: "l2", LogStorage: metadata.StorageReadWrite, LostSegments: map[uint32]uint32{1: 1}}
	nb, _ := json.Marshal(nodes)
	if _, err := store.Put(ctx, metadata.KeyNodes, nb, nv.Version); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := ctl(t, "", "-s", url, "logs", "list")
	if code != 0 {
		t.Fatalf("logs list: %d %s", code, errOut)
	}
	for _, want := range []string{
		" 0    0        1         local       unknown",
		" 1    0        1         local       sealed   42",
		" 1    1        42        replicated  unknown  -         2            w1@2       [l1,l2(lost),l3]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs list lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = ctl(t, "", "-s", url, "logs", "describe", "1")
	if code != 0 || !strings.Contains(out, "Log 1 (logs v2), 2 segment(s)") || !strings.Contains(out, " Sequencer       w1@2") ||
		!strings.Contains(out, " Lost replicas   l2 (wiped disks") {
		t.Fatalf("logs describe: %d\n%s%s", code, out, errOut)
	}
	var ls cluster.LogStatus
	code, out, _ = ctl(t, "", "-s", url, "--json", "logs", "describe", "1")
	if code != 0 || json.Unmarshal([]byte(out), &ls) != nil || len(ls.Segments) != 2 || ls.Segments[1].Replication != 2 ||
		!slices.Equal(ls.Segments[1].LostReplicas, []string{"l2"}) {
		t.Fatalf("logs describe --json: %d %s", code, out)
	}
	if code, _, errOut := ctl(t, "", "-s", url, "logs", "describe", "7"); code != 1 || !strings.Contains(errOut, "no log 7 (the cluster has 2 logs)") {
		t.Fatalf("describe of a missing log: %d %s", code, errOut)
	}
}
