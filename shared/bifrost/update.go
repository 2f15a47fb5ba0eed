package bifrost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"gorestate.dev/shared/metadata"
)

// updateChain rewrites log logID's chain with a compare-and-set on the logs object,
// retried on a version mismatch: change gets a copy of the stored chain and returns the
// new one, or false to leave the chain as it is. It reports whether it wrote the chain.
// Callers change only what they own, so a concurrent seal-and-extend goes on.
func (b *Bifrost) updateChain(ctx context.Context, logID uint32, change func(chain []metadata.Segment) ([]metadata.Segment, bool)) (bool, error) {
	for {
		cur, err := b.opts.Meta.Get(ctx, metadata.KeyLogs)
		if err != nil {
			return false, fmt.Errorf("read logs: %w", err)
		}
		var logs metadata.Logs
		if err := json.Unmarshal(cur.Value, &logs); err != nil {
			return false, fmt.Errorf("decode logs v%d: %w", cur.Version, err)
		}
		chain, ok := change(slices.Clone(logs.Chains[logID]))
		if !ok {
			return false, nil
		}
		updated := metadata.Logs{Chains: maps.Clone(logs.Chains)}
		if updated.Chains == nil {
			updated.Chains = map[uint32][]metadata.Segment{}
		}
		updated.Chains[logID] = chain
		value, err := json.Marshal(updated)
		if err != nil {
			return false, fmt.Errorf("encode logs: %w", err)
		}
		version, err := b.opts.Meta.Put(ctx, metadata.KeyLogs, value, cur.Version)
		if errors.Is(err, metadata.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("write logs: %w", err)
		}
		b.install(version, updated)
		return true, nil
	}
}

// PinLocalSegment names node as the holder of local segment index of log logID, if the
// chain names none: chains provisioned without a node (or before multi-node logs) mean
// "the node that runs the partition's leader", which stops meaning anything once that node
// is gone and no other can take over (the records are on its disk only). Only the node
// that holds the segment's records may pin it. It reports whether it wrote the chain.
func (b *Bifrost) PinLocalSegment(ctx context.Context, logID, index uint32, node string) (bool, error) {
	changed, err := b.updateChain(ctx, logID, func(chain []metadata.Segment) ([]metadata.Segment, bool) {
		for i, s := range chain {
			if s.Index == index && (s.Provider == ProviderLocal || s.Provider == "") && s.Node == "" {
				chain[i].Node = node
				return chain, true
			}
		}
		return nil, false
	})
	if err != nil {
		return false, fmt.Errorf("pin segment %d of log %d to %s: %w", index, logID, node, err)
	}
	if changed {
		b.log.Info("local segment pinned to the node that holds its records", "log", logID, "segment", index, "node", node)
	}
	return changed, nil
}
