package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

func TestGatherLogsLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if _, err := Provision(ctx, s, validConfig()); err != nil {
		t.Fatal(err)
	}
	// A worker reporting the open segment of log 1.
	st := gatherWithWorker(t, s, rpc.LogState{LogID: 1, Node: "w1", TailLSN: 42, TrimPointLSN: 3})
	if len(st.Logs) != 4 {
		t.Fatalf("%d logs, want 4", len(st.Logs))
	}
	for i, l := range st.Logs {
		if l.ID != uint32(i) || len(l.Segments) != 1 || l.Segments[0].Provider != ProviderLocal || l.Segments[0].BaseLSN != 1 {
			t.Fatalf("log %d: %+v", i, l)
		}
	}
	if s1 := st.Logs[1].Segments[0]; s1.State != "open" || s1.TailLSN != 42 || s1.TrimPointLSN != 3 {
		t.Fatalf("log 1 segment = %+v, want open, tail 42, trim point 3 (from the worker)", s1)
	}
	if s0 := st.Logs[0].Segments[0]; s0.State != "unknown" {
		t.Fatalf("log 0 segment = %+v, want state unknown (no worker reported it)", s0)
	}
	if st.Logs[1].TrimPointLSN != 3 || st.Logs[0].TrimPointLSN != 0 {
		t.Fatalf("trim points of logs 0 and 1: %d, %d; want 0 and 3", st.Logs[0].TrimPointLSN, st.Logs[1].TrimPointLSN)
	}
}

// A chain whose trimmed segments were dropped starts above LSN 1: the log is trimmed at
// least up to there, whether or not its writer answers.
func TestGatherLogsTrimPointOfAPrunedChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	seg := metadata.Segment{BaseLSN: 10, Provider: ProviderLocal, LogletID: 1<<32 | 3, Index: 3, Node: "w1"}
	b, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{1: {seg}}})
	if _, err := s.Put(ctx, metadata.KeyLogs, b, 0); err != nil {
		t.Fatal(err)
	}
	st, err := GatherLogs(ctx, Sources{Store: s, HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Logs) != 1 || st.Logs[0].TrimPointLSN != 9 || st.Logs[0].Segments[0].TrimPointLSN != 0 {
		t.Fatalf("logs %+v, want log 1 trimmed up to LSN 9, below its only segment", st.Logs)
	}
}

// The writer reports the log's trim point with the open segment; the view shows it on the
// segment it falls in.
func TestGatherLogsShowsTheTrimPointOnItsSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	chain := []metadata.Segment{
		{BaseLSN: 1, Provider: ProviderLocal, LogletID: 1 << 32, Node: "w1"},
		{BaseLSN: 61, Provider: ProviderLocal, LogletID: 1<<32 | 1, Index: 1, Node: "w1"},
	}
	b, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{1: chain}})
	if _, err := s.Put(ctx, metadata.KeyLogs, b, 0); err != nil {
		t.Fatal(err)
	}
	l := gatherWithWorker(t, s, rpc.LogState{LogID: 1, Node: "w1", SegmentIndex: 1, TailLSN: 80, TrimPointLSN: 35}).Logs[0]
	if l.TrimPointLSN != 35 || l.Segments[0].TrimPointLSN != 35 || l.Segments[1].TrimPointLSN != 0 || l.Segments[1].TailLSN != 80 {
		t.Fatalf("log 1: %+v, want trim point 35 on segment 0 (LSN 1-60) only", l)
	}
}

// gatherWithWorker registers a worker w1 that reports states and gathers the logs view.
func gatherWithWorker(t *testing.T, s metadata.Store, states ...rpc.LogState) *LogsStatus {
	t.Helper()
	ctx := context.Background()
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != rpc.LogsPath {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(states)
	}))
	t.Cleanup(worker.Close)
	if _, err := metadata.RegisterNode(ctx, s, metadata.Node{Name: "w1", Roles: []string{config.RoleWorker}, Address: worker.URL}); err != nil {
		t.Fatal(err)
	}
	st, err := GatherLogs(ctx, Sources{Store: s, HTTP: worker.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestProvisionReplicatedWaitsForLogServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	c := validConfig()
	c.LogProvider, c.LogReplication = ProviderReplicated, 2
	// Provisioning succeeds before any log server joined.
	if _, err := Provision(ctx, s, c); err != nil {
		t.Fatal(err)
	}
	if _, err := metadata.RegisterNode(ctx, s, metadata.Node{Name: "ls1", Roles: []string{config.RoleLogServer}, LogStorage: metadata.StorageReadWrite}); err != nil {
		t.Fatal(err)
	}
	st, err := GatherLogs(ctx, Sources{Store: s, HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Logs {
		if len(l.Segments) != 0 || !strings.Contains(l.Waiting, "needs 3 read-write log servers, 1 registered (2 missing)") {
			t.Fatalf("log %d: %+v", l.ID, l)
		}
	}
}

func TestConfigSetReplicatedNeedsLogServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if _, err := Provision(ctx, s, validConfig()); err != nil {
		t.Fatal(err)
	}
	provider, two := ProviderReplicated, 2
	change := ConfigChange{LogProvider: &provider, LogReplication: &two}
	_, _, err := UpdateConfig(ctx, s, change)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "needs a nodeset of 3 log servers") {
		t.Fatalf("config set without log servers: %v", err)
	}
	for _, n := range []string{"ls1", "ls2", "ls3"} {
		if _, err := metadata.RegisterNode(ctx, s, metadata.Node{Name: n, Roles: []string{config.RoleLogServer}, LogStorage: metadata.StorageReadWrite}); err != nil {
			t.Fatal(err)
		}
	}
	if _, after, err := UpdateConfig(ctx, s, change); err != nil || after.LogProvider != ProviderReplicated || after.LogReplication != 2 {
		t.Fatalf("config set with 3 log servers: %+v %v", after, err)
	}
}
