package metadatad

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// storeWorkers finds partition leaders through the metadata store, for an admin that runs
// apart from the workers. Until the cluster controller assigns leaders, the first worker
// node leads every partition.
type storeWorkers struct {
	store  metadata.Store
	client *http.Client
}

func (w storeWorkers) NumPartitions() uint32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := w.store.Get(ctx, metadata.KeyPartitionTable)
	if err != nil {
		return 0
	}
	var t metadata.PartitionTable
	if json.Unmarshal(v.Value, &t) != nil {
		return 0
	}
	return t.NumPartitions
}

func (w storeWorkers) Route(uint32) (rpc.Controller, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := w.store.Get(ctx, metadata.KeyNodes)
	if err != nil {
		return nil, err
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		return nil, err
	}
	var addrs []string
	for _, n := range nodes.Nodes {
		for _, r := range n.Roles {
			if r == config.RoleWorker && n.Address != "" {
				addrs = append(addrs, n.Address)
			}
		}
	}
	if len(addrs) == 0 {
		return nil, rpc.ErrNotLeader
	}
	sort.Strings(addrs)
	return &rpc.HTTPInvoker{BaseURL: addrs[0], Client: w.client}, nil
}
