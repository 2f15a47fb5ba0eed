package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"gorestate.dev/shared/metadata"
)

func TestClusterHealth(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	var (
		mu    sync.Mutex
		mc    MetadataCluster
		mcErr error
	)
	members := func(context.Context) (MetadataCluster, error) {
		mu.Lock()
		defer mu.Unlock()
		return mc, mcErr
	}
	srv := httptest.NewServer(NewHandler(Options{Store: store, ClusterName: "localcluster", MetadataCluster: members}))
	t.Cleanup(srv.Close)
	admin := &testAdmin{Server: srv, store: store}

	// Restate answers 503 in plain text until the cluster is provisioned.
	r := admin.do(t, http.MethodGet, "/cluster-health", "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("content-type") != "text/plain; charset=utf-8" ||
		string(r.body) != "The cluster does not seem to be provisioned yet. Try again later." {
		t.Fatalf("before provisioning: %d %q %s", r.status, r.header.Get("content-type"), r.body)
	}
	if _, err := store.Put(context.Background(), metadata.KeyPartitionTable, []byte(`{}`), 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mc   MetadataCluster
		err  error
		want string
	}{
		// What restate-server 1.7.12 answers on a single node.
		{"local store", MetadataCluster{}, nil, `{"cluster_name":"localcluster","metadata_cluster_health":{"members":[1]}}`},
		{"numbered members", MetadataCluster{Replicated: true, Members: []string{"n3", "n1", "node-2"}}, nil, `{"cluster_name":"localcluster","metadata_cluster_health":{"members":[1,2,3]}}`},
		{"a member left", MetadataCluster{Replicated: true, Members: []string{"n3", "n1"}}, nil, `{"cluster_name":"localcluster","metadata_cluster_health":{"members":[1,3]}}`},
		{"unknown members", MetadataCluster{}, errors.New("not joined yet"), `{"cluster_name":"localcluster","metadata_cluster_health":null}`},
	} {
		mu.Lock()
		mc, mcErr = c.mc, c.err
		mu.Unlock()
		for _, path := range []string{"/cluster-health", "/v4/cluster-health"} {
			r := admin.do(t, http.MethodGet, path, "")
			if r.status != http.StatusOK || r.header.Get("content-type") != "application/json" || string(r.body) != c.want {
				t.Errorf("%s, %s: %d %s, want %s", c.name, path, r.status, r.body, c.want)
			}
		}
	}
	if r := admin.do(t, http.MethodPost, "/cluster-health", "{}"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
}

func TestMemberIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		names []string
		want  []int
	}{
		{[]string{"n1"}, []int{1}},
		{[]string{"n2", "n10", "n1"}, []int{1, 2, 10}},
		// Without a number on every name, or with a number twice, ids are positions.
		{[]string{"beta", "alpha"}, []int{1, 2}},
		{[]string{"n4", "gamma"}, []int{1, 2}},
		{[]string{"a1", "b1"}, []int{1, 2}},
		{[]string{"n0", "n5"}, []int{1, 2}},
		{nil, []int{}},
	} {
		if got := memberIDs(c.names); !slices.Equal(got, c.want) {
			t.Errorf("memberIDs(%q) = %v, want %v", c.names, got, c.want)
		}
	}
}
