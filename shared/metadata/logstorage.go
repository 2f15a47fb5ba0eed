package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// LogStorageOf returns the log-storage state of node name in the nodes configuration, and
// whether the node has an entry at all.
func LogStorageOf(ctx context.Context, s Store, name string) (state string, found bool, err error) {
	nodes, _, err := getNodes(ctx, s)
	if err != nil {
		return "", false, fmt.Errorf("read log storage of node %s: %w", name, err)
	}
	n, ok := nodes.Nodes[name]
	return n.LogStorage, ok, nil
}

// SetLogStorage sets the log-storage state of node name (StorageProvisioning,
// StorageReadWrite, StorageDataLoss) by compare-and-set, retrying on conflicts. A node that
// has no entry yet gets one holding only its name and the state: a log server decides its
// state before it registers, and RegisterNode keeps the state of the entry it replaces.
func SetLogStorage(ctx context.Context, s Store, name, state string) error {
	return setLogStorage(ctx, s, name, state, nil)
}

// SetLostLogStorage marks node name's log storage read-write after its disk was replaced,
// adding lost (log id → highest lost segment index) to the segments it lost before.
func SetLostLogStorage(ctx context.Context, s Store, name string, lost map[uint32]uint32) error {
	return setLogStorage(ctx, s, name, StorageReadWrite, lost)
}

func setLogStorage(ctx context.Context, s Store, name, state string, lost map[uint32]uint32) error {
	for {
		nodes, version, err := getNodes(ctx, s)
		if err != nil {
			return fmt.Errorf("set log storage of node %s to %s: %w", name, state, err)
		}
		n, ok := nodes.Nodes[name]
		if ok && n.LogStorage == state && len(lost) == 0 {
			return nil
		}
		if !ok {
			n = Node{Name: name}
		}
		n.LogStorage = state
		if len(lost) > 0 {
			merged := map[uint32]uint32{}
			for log, idx := range n.LostSegments {
				merged[log] = idx
			}
			for log, idx := range lost {
				merged[log] = max(merged[log], idx)
			}
			n.LostSegments = merged
		}
		nodes.Nodes[name] = n
		b, err := json.Marshal(nodes)
		if err != nil {
			return err
		}
		if _, err := s.Put(ctx, KeyNodes, b, version); errors.Is(err, ErrVersionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("set log storage of node %s to %s: %w", name, state, err)
		}
		return nil
	}
}

// getNodes reads the nodes configuration and its version (0 and an empty configuration if
// it does not exist yet).
func getNodes(ctx context.Context, s Store) (Nodes, uint64, error) {
	nodes := Nodes{Nodes: map[string]Node{}}
	cur, err := s.Get(ctx, KeyNodes)
	if errors.Is(err, ErrNotFound) {
		return nodes, 0, nil
	}
	if err != nil {
		return nodes, 0, err
	}
	if err := json.Unmarshal(cur.Value, &nodes); err != nil {
		return nodes, 0, fmt.Errorf("decode nodes configuration: %w", err)
	}
	if nodes.Nodes == nil {
		nodes.Nodes = map[string]Node{}
	}
	return nodes, cur.Version, nil
}
