package metadatad

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// storeWorkers finds partition leaders through the metadata store, for an admin that runs
// apart from the workers: a partition's requests go to the node the cluster controller
// placed as its leader.
type storeWorkers struct {
	store  metadata.Store
	client *http.Client
}

func (w storeWorkers) partitionTable(ctx context.Context) (*metadata.PartitionTable, error) {
	v, err := w.store.Get(ctx, metadata.KeyPartitionTable)
	if err != nil {
		return nil, err
	}
	var t metadata.PartitionTable
	if err := json.Unmarshal(v.Value, &t); err != nil {
		return nil, fmt.Errorf("partition table: %w", err)
	}
	return &t, nil
}

func (w storeWorkers) NumPartitions() uint32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t, err := w.partitionTable(ctx)
	if err != nil {
		return 0
	}
	return t.NumPartitions
}

// Route returns the placed leader of partition p, or rpc.ErrNotLeader while it has none or
// its node is not registered (the admin retries).
func (w storeWorkers) Route(p uint32) (rpc.Controller, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t, err := w.partitionTable(ctx)
	if err != nil {
		return nil, err
	}
	leader := t.LeaderOf(p)
	if leader == "" {
		return nil, rpc.ErrNotLeader
	}
	v, err := w.store.Get(ctx, metadata.KeyNodes)
	if err != nil {
		return nil, err
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		return nil, fmt.Errorf("nodes configuration: %w", err)
	}
	n, ok := nodes.Nodes[leader]
	if !ok || n.Address == "" {
		return nil, rpc.ErrNotLeader
	}
	return &rpc.HTTPInvoker{BaseURL: n.Address, Client: w.client}, nil
}
