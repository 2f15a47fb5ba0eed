package metadatad

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"gorestate.dev/metadatad/raftstore"
	"gorestate.dev/shared/config"
)

// An admin without a metadata server of its own asks the metadata servers it is a client of:
// a replicated one lists its voters, a local one serves no membership endpoint.
func TestMetadataClusterOfRemoteServers(t *testing.T) {
	replicated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != raftstore.ClusterPath+"members" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`[{"name":"n1","suffrage":"voter"},{"name":"n2","suffrage":"nonvoter"},{"name":"n3","suffrage":"voter","leader":true}]`))
	}))
	defer replicated.Close()
	local := httptest.NewServer(http.NotFoundHandler())
	defer local.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	cfg := config.Default()
	cfg.MetadataClient.Addresses = []string{down.URL, strings.TrimPrefix(replicated.URL, "http://") + "/"}
	mc, err := metadataCluster(cfg, nil)(context.Background())
	if err != nil || !mc.Replicated || !slices.Equal(mc.Members, []string{"n1", "n3"}) {
		t.Fatalf("replicated: %+v, %v; want voters n1 and n3", mc, err)
	}
	cfg.MetadataClient.Addresses = []string{local.URL}
	if mc, err := metadataCluster(cfg, nil)(context.Background()); err != nil || mc.Replicated {
		t.Fatalf("local: %+v, %v; want a local store", mc, err)
	}
	cfg.MetadataClient.Addresses = []string{down.URL}
	if _, err := metadataCluster(cfg, nil)(context.Background()); err == nil {
		t.Fatal("no metadata server answered, yet members are known")
	}
}
