package metadatad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gorestate.dev/metadatad/admin"
	"gorestate.dev/metadatad/raftstore"
	"gorestate.dev/shared/config"
)

// metadataCluster tells the admin API's GET /cluster-health the metadata cluster's members:
// this node's metadata server knows them when the node runs one (meta non-nil); otherwise the
// metadata servers the client reaches are asked.
func metadataCluster(cfg *config.Config, meta *MetadataServer) func(context.Context) (admin.MetadataCluster, error) {
	if meta != nil {
		return func(ctx context.Context) (admin.MetadataCluster, error) {
			st, err := meta.Status(ctx)
			if err != nil {
				return admin.MetadataCluster{}, err
			}
			mc := admin.MetadataCluster{Replicated: st.Type != "local"}
			for _, m := range st.Members {
				if m.Voter {
					mc.Members = append(mc.Members, m.Name)
				}
			}
			return mc, nil
		}
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) (admin.MetadataCluster, error) {
		var errs []error
		for _, a := range cfg.MetadataClient.Addresses {
			mc, err := remoteMetadataCluster(ctx, hc, a)
			if err == nil {
				return mc, nil
			}
			errs = append(errs, err)
		}
		return admin.MetadataCluster{}, fmt.Errorf("no metadata server told its members: %w", errors.Join(errs...))
	}
}

// remoteMetadataCluster asks the metadata server at address (a fabric base URL) for the
// members of its raft configuration. A local store serves no membership endpoints: its 404
// means a cluster of that one node.
func remoteMetadataCluster(ctx context.Context, hc *http.Client, address string) (admin.MetadataCluster, error) {
	base := strings.TrimRight(strings.TrimSpace(address), "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+raftstore.ClusterPath+"members", nil)
	if err != nil {
		return admin.MetadataCluster{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return admin.MetadataCluster{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return admin.MetadataCluster{}, nil
	default:
		return admin.MetadataCluster{}, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	var members []raftstore.Member
	if err := json.NewDecoder(resp.Body).Decode(&members); err != nil {
		return admin.MetadataCluster{}, fmt.Errorf("%s: decode members: %w", req.URL, err)
	}
	mc := admin.MetadataCluster{Replicated: true}
	for _, m := range members {
		if m.Suffrage == "voter" {
			mc.Members = append(mc.Members, m.Name)
		}
	}
	return mc, nil
}
