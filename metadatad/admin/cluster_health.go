package admin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"gorestate.dev/shared/metadata"
)

// MetadataCluster is the metadata store's cluster as GET /cluster-health reports it.
type MetadataCluster struct {
	// Replicated is false for the local (non-replicated) store: a cluster of one node.
	Replicated bool
	// Members names the voting members of a replicated store.
	Members []string
}

// clusterHealthJSON is Restate's ClusterHealthResponse. metadata_cluster_health is null when
// no metadata server told its members, as in Restate.
type clusterHealthJSON struct {
	ClusterName           string                 `json:"cluster_name"`
	MetadataClusterHealth *metadataClusterHealth `json:"metadata_cluster_health"`
}

type metadataClusterHealth struct {
	Members []int `json:"members"`
}

func errClusterNotProvisioned() *apiError {
	// Restate answers this one in plain text (its GenericRestError).
	return &apiError{status: http.StatusServiceUnavailable, message: "The cluster does not seem to be provisioned yet. Try again later.", plain: true}
}

// clusterHealth serves GET /cluster-health, which Restate's e2e harness polls until the
// metadata cluster has as many members as it started nodes.
func (a *api) clusterHealth(w http.ResponseWriter, r *http.Request, _ int) error {
	_, err := a.opts.Store.Get(r.Context(), metadata.KeyPartitionTable)
	if errors.Is(err, metadata.ErrNotFound) {
		return errClusterNotProvisioned()
	} else if err != nil {
		return errStore(err)
	}
	writeJSON(w, http.StatusOK, clusterHealthJSON{ClusterName: a.opts.ClusterName, MetadataClusterHealth: a.metadataHealth(r.Context())})
	return nil
}

// metadataHealth lists the metadata cluster's members, or nil when they are unknown: Restate
// then still answers 200, with null, and the caller polls again.
func (a *api) metadataHealth(ctx context.Context) *metadataClusterHealth {
	if a.opts.MetadataCluster == nil {
		return nil
	}
	mc, err := a.opts.MetadataCluster(ctx)
	if err != nil {
		a.log.Debug("cluster health: metadata cluster members unknown", "error", err)
		return nil
	}
	if !mc.Replicated {
		// The local store is this node alone; a single Restate node is node 1.
		return &metadataClusterHealth{Members: []int{1}}
	}
	return &metadataClusterHealth{Members: memberIDs(mc.Members)}
}

// memberIDs gives each metadata member the plain integer node id Restate reports (N1 is 1).
// Our nodes have names, not ids. When every name ends in a number and those numbers differ
// ("n1", "node-2", …, the usual naming of a test cluster), the number is the id: it stays
// the same whatever other members join or leave. Otherwise the ids are the 1-based positions
// in the name-sorted member list, which is stable as long as the membership is. The result is
// sorted.
func memberIDs(names []string) []int {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	ids := make([]int, 0, len(sorted))
	seen := map[int]bool{}
	for _, n := range sorted {
		id, ok := numericSuffix(n)
		if !ok || seen[id] {
			ids = ids[:0]
			for i := range sorted {
				ids = append(ids, i+1)
			}
			return ids
		}
		seen[id] = true
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// numericSuffix returns the positive number a name ends in.
func numericSuffix(name string) (int, bool) {
	digits := name[len(strings.TrimRight(name, "0123456789")):]
	id, err := strconv.Atoi(digits)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}
