package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	reports := &leaderReports{pl: &Placer{Logger: hclog.NewNullLogger()}, table: table, workers: []string{"n1", "n2"}, nodes: nodes}
	got := reports.cannotStart(context.Background(), want)

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

// passFixture is a controller over a local metadata store with two workers, n1 (whose
// partitions report what restore returns) and n2, and partition replication 2.
type passFixture struct {
	t       *testing.T
	pl      *Placer
	store   *metadata.LocalStore
	nodes   metadata.Nodes
	mu      sync.Mutex
	restore map[uint32]*rpc.RestoreInfo // what n1's leaders report
}

func newPassFixture(t *testing.T, partitions int) *passFixture {
	f := &passFixture{t: t, restore: map[uint32]*rpc.RestoreInfo{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var states []rpc.PartitionState
		for p, ri := range f.restore {
			states = append(states, rpc.PartitionState{ID: p, Mode: "leader", Restore: ri})
		}
		json.NewEncoder(rw).Encode(states)
	}))
	t.Cleanup(srv.Close)
	store, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store = store
	f.nodes = metadata.Nodes{Nodes: map[string]metadata.Node{
		"n1": {Name: "n1", Roles: []string{config.RoleWorker}, Address: srv.URL},
		"n2": {Name: "n2", Roles: []string{config.RoleWorker}, Address: "http://127.0.0.1:1"},
	}}
	table := metadata.PartitionTable{NumPartitions: uint32(partitions)}
	for range partitions {
		table.Placement = append(table.Placement, metadata.PartitionPlacement{Leader: "n1"})
	}
	f.put(metadata.KeyNodes, f.nodes)
	f.put(metadata.KeyClusterConfig, metadata.ClusterConfig{NumPartitions: uint32(partitions), PartitionReplication: 2})
	f.put(metadata.KeyPartitionTable, table)
	f.pl = &Placer{Store: store, Self: metadata.NodeID{Name: "n1"}, Logger: hclog.NewNullLogger()}
	f.pl.detector = liveness.NewDetector(0, 0, f.pl.Logger)
	t.Cleanup(f.pl.detector.Close)
	return f
}

func (f *passFixture) put(key string, v any) {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	cur, err := f.store.Get(context.Background(), key)
	if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		f.t.Fatal(err)
	}
	if _, err := f.store.Put(context.Background(), key, b, cur.Version); err != nil {
		f.t.Fatal(err)
	}
}

func (f *passFixture) report(p uint32, ri *rpc.RestoreInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restore[p] = ri
}

// pass runs one controller pass and returns the partition table it left.
func (f *passFixture) pass() metadata.PartitionTable {
	f.t.Helper()
	ctx := context.Background()
	if err := f.pl.pass(ctx, f.nodes); err != nil {
		f.t.Fatal(err)
	}
	v, err := f.store.Get(ctx, metadata.KeyPartitionTable)
	if err != nil {
		f.t.Fatal(err)
	}
	var tb metadata.PartitionTable
	if err := json.Unmarshal(v.Value, &tb); err != nil {
		f.t.Fatal(err)
	}
	return tb
}

// TestPassPlacesFollowersOnceASnapshotReachesTheTrimPoint runs the controller's pass over a
// metadata store: a partition whose log is trimmed without a snapshot keeps its leader
// alone and says why; once its leader reports a snapshot that reaches the trim point, the
// follower is placed.
func TestPassPlacesFollowersOnceASnapshotReachesTheTrimPoint(t *testing.T) {
	f := newPassFixture(t, 2)
	f.report(0, &rpc.RestoreInfo{})
	f.report(1, &rpc.RestoreInfo{TrimPointLSN: 100})
	tb := f.pass()
	if p := tb.Placement[0]; !slices.Equal(p.Followers, []string{"n2"}) || p.UnderReplicated != "" {
		t.Fatalf("partition 0, never trimmed: %+v, want follower n2", p)
	}
	if p := tb.Placement[1]; len(p.Followers) != 0 || !strings.Contains(p.UnderReplicated, "trimmed up to LSN 100 and there is no snapshot") {
		t.Fatalf("partition 1, trimmed without a snapshot: %+v", p)
	}

	f.report(1, &rpc.RestoreInfo{TrimPointLSN: 100, SnapshotLSN: 150})
	if p := f.pass().Placement[1]; !slices.Equal(p.Followers, []string{"n2"}) || p.UnderReplicated != "" {
		t.Fatalf("partition 1 with a snapshot past its trim point: %+v, want follower n2", p)
	}
}

// TestPassLocalSegmentTiesAPartitionUntilTrimmed: a log whose older segment is local to n1
// can only be read there, so the partition gets no follower elsewhere, until the log is
// trimmed past that segment's end (a single node migrated to replicated logs).
func TestPassLocalSegmentTiesAPartitionUntilTrimmed(t *testing.T) {
	f := newPassFixture(t, 1)
	f.put(metadata.KeyLogs, metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {
		{BaseLSN: 1, Provider: "local", Node: "n1"},
		{BaseLSN: 101, Provider: "replicated", Index: 1},
	}}})
	f.report(0, &rpc.RestoreInfo{TrimPointLSN: 99, SnapshotLSN: 120})
	if p := f.pass().Placement[0]; len(p.Followers) != 0 || !strings.Contains(p.UnderReplicated, "can read the partition's log") {
		t.Fatalf("local segment not trimmed whole: %+v, want no follower and why", p)
	}
	f.report(0, &rpc.RestoreInfo{TrimPointLSN: 100, SnapshotLSN: 120})
	if p := f.pass().Placement[0]; !slices.Equal(p.Followers, []string{"n2"}) || p.UnderReplicated != "" {
		t.Fatalf("local segment trimmed whole: %+v, want follower n2", p)
	}
}

// A partition whose log has a local segment on a node that is not an alive worker waits
// for that node, and says so: no other node has the records.
func TestPassSaysWhichNodeALocalSegmentWaitsFor(t *testing.T) {
	f := newPassFixture(t, 1)
	f.put(metadata.KeyLogs, metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {
		{BaseLSN: 1, Provider: "local", Node: "vm"},
		{BaseLSN: 101, Provider: "replicated", Index: 1},
	}}})
	f.report(0, &rpc.RestoreInfo{TrimPointLSN: 99})
	p := f.pass().Placement[0]
	if p.Leader != "" || !strings.Contains(p.UnderReplicated, "local segment is on node vm, which is not an alive worker") {
		t.Fatalf("partition 0: %+v, want no leader, waiting for vm", p)
	}
}

func TestTakesLease(t *testing.T) {
	self := metadata.NodeID{Name: "n1", Generation: 1}
	other := controllerLease{Holder: metadata.NodeID{Name: "n2", Generation: 1}}
	now := time.Now()
	const timeout = 3 * time.Second
	long := now.Add(-time.Hour)
	for _, c := range []struct {
		name    string
		lease   controllerLease
		version uint64
		seen    leaseSeen
		dead    bool
		want    bool
	}{
		{"ours", controllerLease{Holder: self}, 7, leaseSeen{}, false, true},
		{"free", controllerLease{}, 0, leaseSeen{}, false, true},
		{"renewed holder", other, 7, leaseSeen{version: 6, at: now}, false, false},
		{"holder renewing", other, 7, leaseSeen{version: 7, at: now.Add(-time.Second)}, false, false},
		{"abandoned", other, 7, leaseSeen{version: 7, at: now.Add(-timeout)}, false, true},
		{"dead holder, reads fine", other, 7, leaseSeen{version: 6, at: now, readErr: long}, true, true},
		{"dead holder, never failed a read", other, 7, leaseSeen{version: 6, at: now}, true, true},
		// Just back from being cut off: the verdict may be stale, and the lease moved.
		{"dead holder after a failed read, lease moved", other, 7, leaseSeen{version: 6, at: now, readErr: now.Add(-time.Second)}, true, false},
		{"dead holder after a failed read, lease still", other, 7, leaseSeen{version: 7, at: now, readErr: now.Add(-time.Second)}, true, true},
		{"dead holder, failed read long ago", other, 7, leaseSeen{version: 6, at: now, readErr: now.Add(-timeout)}, true, true},
	} {
		if got := takesLease(self, c.lease, c.version, c.seen, c.dead, now, timeout); got != c.want {
			t.Errorf("%s: takesLease = %v, want %v", c.name, got, c.want)
		}
	}
}

// A follower counts as caught up within maxMoveLag records of its leader, but not before it
// has applied anything: a new follower reports "follower" while it still restores a snapshot,
// and on a short log (fewer than maxMoveLag records) it would count at once, and the
// follower it replaces would go before it can take over.
func TestCaughtUpNeedsAFollowerThatApplied(t *testing.T) {
	serve := func(states ...rpc.PartitionState) string {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			json.NewEncoder(rw).Encode(states)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	leader := serve(rpc.PartitionState{ID: 0, Mode: "leader", AppliedLSN: 300}, rpc.PartitionState{ID: 1, Mode: "leader", AppliedLSN: 5000})
	fAddr := serve(rpc.PartitionState{ID: 0, Mode: "follower", AppliedLSN: 0}, rpc.PartitionState{ID: 1, Mode: "follower", AppliedLSN: 4500})
	sAddr := serve(rpc.PartitionState{ID: 0, Mode: "follower", AppliedLSN: 290}, rpc.PartitionState{ID: 1, Mode: "follower", AppliedLSN: 3000})
	table := metadata.PartitionTable{NumPartitions: 2, Placement: []metadata.PartitionPlacement{
		{Leader: "l", Followers: []string{"f", "s"}}, {Leader: "l", Followers: []string{"f", "s"}}}}
	nodes := metadata.Nodes{Nodes: map[string]metadata.Node{"l": {Name: "l", Address: leader}, "f": {Name: "f", Address: fAddr}, "s": {Name: "s", Address: sAddr}}}
	r := &leaderReports{pl: &Placer{Logger: hclog.NewNullLogger()}, table: table, workers: []string{"f", "l", "s"}, nodes: nodes}
	for _, tc := range []struct {
		p    uint32
		node string
		want bool
	}{
		{0, "f", false}, // applied nothing yet, though within maxMoveLag of a short log
		{0, "s", true},
		{1, "f", true},
		{1, "s", false}, // 2,000 records behind
	} {
		if got := r.caughtUp(context.Background(), tc.p, tc.node); got != tc.want {
			t.Errorf("partition %d on %s: caught up %v, want %v", tc.p, tc.node, got, tc.want)
		}
	}
}

// Partitions 0, 1, 2, 4 and 7 cannot start a new replica (their logs are trimmed past every
// snapshot). The first placement gives some of them new replicas; placed again without
// those, the load differs, and partition 7 gets a new follower instead, which must be
// checked too. (Only one placement was checked, and partition 7 got a follower on e that
// could not start.)
func TestPlaceStartableChecksEveryPlacementItTries(t *testing.T) {
	cur := []metadata.PartitionPlacement{
		{Leader: "b", Followers: []string{"d"}}, {Leader: "d", Followers: []string{"b"}}, {Leader: "d"},
		{Leader: "a", Followers: []string{"c"}}, {Leader: "b", Followers: []string{"e"}}, {Leader: "d", Followers: []string{"a"}},
		{Leader: "c", Followers: []string{"b"}}, {Leader: "d", Followers: []string{"c"}}}
	stuck := map[uint32]bool{0: true, 1: true, 2: true, 4: true, 7: true}
	in := placementInput{current: cur, partitions: uint32(len(cur)), workers: []string{"a", "b", "c", "d", "e"}, replication: 2, canHost: anyHost}
	var checked []uint32
	out := placeStartable(in, func(want map[uint32][]string) map[uint32]string {
		why := map[uint32]string{}
		for p := range want {
			checked = append(checked, p)
			if stuck[p] {
				why[p] = "trimmed past every snapshot"
			}
		}
		return why
	})
	sorted := func(pl metadata.PartitionPlacement) []string {
		r := slices.Clone(pl.Replicas())
		slices.Sort(r)
		return r
	}
	for p := range stuck {
		if !slices.Equal(sorted(out[p]), sorted(cur[p])) {
			t.Errorf("partition %d placed on %+v, was %+v: it cannot start a new replica", p, out[p], cur[p])
		}
	}
	for p, nodes := range newReplicas(cur, out) {
		if !slices.Contains(checked, p) {
			t.Errorf("partition %d got new replicas %v that were never checked", p, nodes)
		}
	}
}

// A node killed, wiped and restarted before the controller finds it dead keeps its
// leaderships, and with its snapshots out of reach (the object store down) its processors
// apply nothing: its partitions had no leader at all, beside followers that applied the log
// (found on loopback: 503 "no reachable leader" for as long as MinIO was down). After
// emptyLeaderGrace the leadership goes to the follower that applied the most, the empty node
// stays a follower, and a partition whose followers applied nothing either (a new cluster)
// or whose leader applied something keeps its leader.
func TestPassMovesTheLeadershipOffALeaderWithAnEmptyStore(t *testing.T) {
	var mu sync.Mutex
	states := map[string][]rpc.PartitionState{}
	serve := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			json.NewEncoder(rw).Encode(states[name])
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	store, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &passFixture{t: t, store: store}
	f.nodes = metadata.Nodes{Nodes: map[string]metadata.Node{}}
	for _, n := range []string{"n1", "n2", "n3"} {
		f.nodes.Nodes[n] = metadata.Node{Name: n, Generation: 1, Roles: []string{config.RoleWorker}, Address: serve(n)}
	}
	f.put(metadata.KeyNodes, f.nodes)
	f.put(metadata.KeyClusterConfig, metadata.ClusterConfig{NumPartitions: 3, PartitionReplication: 3})
	f.put(metadata.KeyPartitionTable, metadata.PartitionTable{NumPartitions: 3, Placement: []metadata.PartitionPlacement{
		{Leader: "n1", Followers: []string{"n2", "n3"}},
		{Leader: "n1", Followers: []string{"n2", "n3"}},
		{Leader: "n1", Followers: []string{"n2", "n3"}},
	}})
	f.pl = &Placer{Store: store, Self: metadata.NodeID{Name: "n1"}, Logger: hclog.NewNullLogger()}
	f.pl.detector = liveness.NewDetector(0, 0, f.pl.Logger)
	t.Cleanup(f.pl.detector.Close)
	mu.Lock()
	states["n1"] = []rpc.PartitionState{
		{ID: 0, Mode: "follower", AppliedLSN: 0, TailLSN: 47}, // wiped, cannot restore
		{ID: 1, Mode: "follower", AppliedLSN: 0, TailLSN: 3},  // a new cluster: nobody applied
		{ID: 2, Mode: "candidate", AppliedLSN: 20, TailLSN: 21},
	}
	states["n2"] = []rpc.PartitionState{{ID: 0, Mode: "follower", AppliedLSN: 40}, {ID: 1, Mode: "follower"}, {ID: 2, Mode: "follower", AppliedLSN: 20}}
	states["n3"] = []rpc.PartitionState{{ID: 0, Mode: "follower", AppliedLSN: 46}, {ID: 1, Mode: "follower"}, {ID: 2, Mode: "follower", AppliedLSN: 20}}
	mu.Unlock()

	// Within the grace the leaders stay.
	now := time.Now()
	r := &leaderReports{pl: f.pl, table: metadata.PartitionTable{}, workers: []string{"n1", "n2", "n3"}, nodes: f.nodes}
	tb := f.pass()
	r.table = tb
	if got := f.pl.demoteEmptyLeaders(context.Background(), tb, r.workers, f.nodes, r, now.Add(time.Second)); got[0].Leader != "n1" {
		t.Fatalf("partition 0 within the grace: %+v, want leader n1", got[0])
	}
	got := f.pl.demoteEmptyLeaders(context.Background(), tb, r.workers, f.nodes, r, now.Add(emptyLeaderGrace+time.Second))
	if p := got[0]; p.Leader != "n3" || !slices.Equal(p.Followers, []string{"n2", "n1"}) {
		t.Fatalf("partition 0 after the grace: %+v, want leader n3 (applied 46), followers n2 and n1", p)
	}
	for _, p := range []int{1, 2} {
		if got[p].Leader != "n1" {
			t.Errorf("partition %d: %+v, want leader n1 kept", p, got[p])
		}
	}
	if tb.Placement[0].Leader != "n1" {
		t.Fatal("demoteEmptyLeaders changed the table it was given")
	}

	// Through the pass, which writes it: n3 leads, and n1, still empty, does not get the
	// leadership back by balancing.
	f.pl.emptySince[0] = emptyLeader{node: "n1", generation: 1, since: time.Now().Add(-emptyLeaderGrace - time.Second)}
	for range 3 {
		tb = f.pass()
	}
	if p := tb.Placement[0]; p.Leader != "n3" || !p.Has("n1") {
		t.Fatalf("partition 0 after passes: %+v, want leader n3 and n1 kept as a follower", p)
	}

	// An old life is not asked: a settled cluster costs no requests.
	f.pl.lives["n1"] = lifeSeen{generation: 1, at: time.Now().Add(-youngLife - time.Second)}
	tb2 := tb
	tb2.Placement = slices.Clone(tb.Placement)
	tb2.Placement[1] = metadata.PartitionPlacement{Leader: "n1", Followers: []string{"n2", "n3"}}
	mu.Lock()
	states["n2"][1].AppliedLSN = 9
	mu.Unlock()
	f.pl.emptySince[1] = emptyLeader{node: "n1", generation: 1, since: time.Now().Add(-time.Hour)}
	r = &leaderReports{pl: f.pl, table: tb2, workers: []string{"n1", "n2", "n3"}, nodes: f.nodes}
	if got := f.pl.demoteEmptyLeaders(context.Background(), tb2, r.workers, f.nodes, r, time.Now()); got[1].Leader != "n1" {
		t.Fatalf("partition 1 led by a life older than youngLife: %+v, want n1 kept", got[1])
	}

	// Nor is a young life about a partition it was seen applying (partition 2, applied 20
	// above): even an answer of "applied nothing" would not be asked for, so it keeps leading.
	f.pl.lives["n1"] = lifeSeen{generation: 1, at: time.Now()}
	mu.Lock()
	states["n1"][2] = rpc.PartitionState{ID: 2, Mode: "follower"}
	mu.Unlock()
	f.pl.emptySince[2] = emptyLeader{node: "n1", generation: 1, since: time.Now().Add(-time.Hour)}
	r = &leaderReports{pl: f.pl, table: tb2, workers: []string{"n1", "n2", "n3"}, nodes: f.nodes}
	if got := f.pl.demoteEmptyLeaders(context.Background(), tb2, r.workers, f.nodes, r, time.Now()); got[2].Leader != "n1" {
		t.Fatalf("partition 2, whose leader was seen applying: %+v, want n1 kept", got[2])
	}
}
