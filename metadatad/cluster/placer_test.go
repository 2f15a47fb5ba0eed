package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/liveness"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// TestNewReplicasOnlyWhereTheyCanStart: the controller asks each partition's leader how far
// its log is trimmed and how far its newest snapshot reaches before it places a new replica
// there, and says why when it cannot.
func TestNewReplicasOnlyWhereTheyCanStart(t *testing.T) {
	states := []rpc.PartitionState{
		{ID: 0, Mode: "leader", Restore: &rpc.RestoreInfo{}},                                    // never trimmed
		{ID: 1, Mode: "leader", Restore: &rpc.RestoreInfo{TrimPointLSN: 500, SnapshotLSN: 600}}, // a snapshot reaches it
		{ID: 2, Mode: "leader", Restore: &rpc.RestoreInfo{TrimPointLSN: 500}},                   // trimmed, no snapshot
		{ID: 3, Mode: "leader", Restore: &rpc.RestoreInfo{TrimPointLSN: 500, SnapshotLSN: 400}}, // snapshot too old
		{ID: 4, Mode: "leader"}, // not known yet
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != rpc.PartitionsPath {
			http.NotFound(rw, r)
			return
		}
		json.NewEncoder(rw).Encode(states)
	}))
	defer srv.Close()

	table := metadata.PartitionTable{NumPartitions: 7}
	for range 5 {
		table.Placement = append(table.Placement, metadata.PartitionPlacement{Leader: "n1"})
	}
	table.Placement = append(table.Placement,
		metadata.PartitionPlacement{Leader: "gone"}, // 5: its leader is not alive
		metadata.PartitionPlacement{})               // 6: no replica yet
	nodes := metadata.Nodes{Nodes: map[string]metadata.Node{"n1": {Name: "n1", Address: srv.URL}, "n2": {Name: "n2"}}}
	want := map[uint32][]string{}
	for p := range uint32(7) {
		want[p] = []string{"n2"}
	}
	pl := &Placer{Logger: hclog.NewNullLogger()}
	got := pl.cannotStart(context.Background(), table, want, []string{"n1", "n2"}, nodes)

	reasons := map[uint32]string{
		2: "trimmed up to LSN 500 and there is no snapshot",
		3: "the newest snapshot is at LSN 400",
		4: "waiting for the leader (n1)",
		5: "waiting for a leader",
	}
	for p := range uint32(7) {
		r, blocked := got[p]
		if want, ok := reasons[p]; ok != blocked || !strings.Contains(r, want) {
			t.Errorf("partition %d: blocked=%v %q, want blocked=%v containing %q", p, blocked, r, ok, want)
		}
	}

	// Placed with those answers: the blocked partitions keep their one replica and say why.
	in := placementInput{current: table.Placement[:5], partitions: 5, workers: []string{"n1", "n2"}, replication: 2,
		canHost: func(p uint32, node string) bool { return got[p] == "" || node == "n1" },
		whyNot:  func(p uint32) string { return got[p] }}
	out := place(in)
	checkPlacement(t, in, out)
	for p, pl := range out {
		if r := reasons[uint32(p)]; !strings.Contains(pl.UnderReplicated, r) || (r == "") != (len(pl.Followers) == 1) {
			t.Errorf("partition %d placed %+v", p, pl)
		}
	}
}

// TestPassPlacesFollowersOnceASnapshotReachesTheTrimPoint runs the controller's pass over a
// metadata store: a partition whose log is trimmed without a snapshot keeps its leader
// alone and says why; once its leader reports a snapshot that reaches the trim point, the
// follower is placed.
func TestPassPlacesFollowersOnceASnapshotReachesTheTrimPoint(t *testing.T) {
	var mu sync.Mutex
	restore1 := &rpc.RestoreInfo{TrimPointLSN: 100}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(rw).Encode([]rpc.PartitionState{
			{ID: 0, Mode: "leader", Restore: &rpc.RestoreInfo{}},
			{ID: 1, Mode: "leader", Restore: restore1},
		})
	}))
	defer srv.Close()

	ctx := context.Background()
	store, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	put := func(key string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ctx, key, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	nodes := metadata.Nodes{Nodes: map[string]metadata.Node{
		"n1": {Name: "n1", Roles: []string{config.RoleWorker}, Address: srv.URL},
		"n2": {Name: "n2", Roles: []string{config.RoleWorker}, Address: "http://127.0.0.1:1"},
	}}
	put(metadata.KeyNodes, nodes)
	put(metadata.KeyClusterConfig, metadata.ClusterConfig{NumPartitions: 2, PartitionReplication: 2})
	put(metadata.KeyPartitionTable, metadata.PartitionTable{NumPartitions: 2, Placement: []metadata.PartitionPlacement{{Leader: "n1"}, {Leader: "n1"}}})

	pl := &Placer{Store: store, Self: metadata.NodeID{Name: "n1"}, Logger: hclog.NewNullLogger()}
	pl.detector = liveness.NewDetector(0, 0, pl.Logger)
	defer pl.detector.Close()
	table := func() metadata.PartitionTable {
		t.Helper()
		if err := pl.pass(ctx, nodes); err != nil {
			t.Fatal(err)
		}
		v, err := store.Get(ctx, metadata.KeyPartitionTable)
		if err != nil {
			t.Fatal(err)
		}
		var tb metadata.PartitionTable
		if err := json.Unmarshal(v.Value, &tb); err != nil {
			t.Fatal(err)
		}
		return tb
	}

	tb := table()
	if p := tb.Placement[0]; !slices.Equal(p.Followers, []string{"n2"}) || p.UnderReplicated != "" {
		t.Fatalf("partition 0, never trimmed: %+v, want follower n2", p)
	}
	if p := tb.Placement[1]; len(p.Followers) != 0 || !strings.Contains(p.UnderReplicated, "trimmed up to LSN 100 and there is no snapshot") {
		t.Fatalf("partition 1, trimmed without a snapshot: %+v", p)
	}

	mu.Lock()
	restore1 = &rpc.RestoreInfo{TrimPointLSN: 100, SnapshotLSN: 150}
	mu.Unlock()
	if p := table().Placement[1]; !slices.Equal(p.Followers, []string{"n2"}) || p.UnderReplicated != "" {
		t.Fatalf("partition 1 with a snapshot past its trim point: %+v, want follower n2", p)
	}
}
