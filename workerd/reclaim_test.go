package workerd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"gorestate.dev/shared/metadata"
)

// A worker without the metadata-server role reads the metadata through metadata.Client,
// whose Get serves the answering member's own copy (one still catching up after a restart
// serves an old table). The table reclaimLeaderships reads before leading again must be
// the linearizable one (the members answer it for GET ?consistent), or a node whose copy
// makes it the leader takes the partition back from the leader placed since, which takes it
// back in turn 2s later, for as long as the copy lags.
func TestFreshTableOfAWorkerOnlyNodeIsLinearizable(t *testing.T) {
	stale, _ := json.Marshal(metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "a", Followers: []string{"b"}}}})
	fresh, _ := json.Marshal(metadata.PartitionTable{NumPartitions: 1, Placement: []metadata.PartitionPlacement{{Leader: "b", Followers: []string{"a"}}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != metadata.PathPrefix+"v1/"+metadata.KeyPartitionTable {
			http.NotFound(w, r)
			return
		}
		body, version := stale, "3" // this member's copy: it has not caught up yet
		if r.URL.Query().Has("consistent") {
			body, version = fresh, "4" // what the metadata leader holds
		}
		w.Header().Set(metadata.VersionHeader, version)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	w := &Worker{meta: metadata.NewClient([]string{srv.URL}, srv.Client())}
	got, err := w.freshTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Placement[0].Leader != "b" {
		t.Fatalf("freshTable read the member's lagging copy (leader %q); the metadata leader places %q", got.Placement[0].Leader, "b")
	}
}
