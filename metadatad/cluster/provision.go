// Package cluster owns the cluster-level operations of the control plane: provisioning, the
// cluster configuration, and the status view that the cluster CLI shows (nodes, membership,
// metadata members, partitions and their leaders). It serves them on the fabric listener of
// metadata nodes under /cluster/v1/.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorestate.dev/shared/metadata"
)

// ErrAlreadyProvisioned is returned by Provision on a provisioned cluster.
var ErrAlreadyProvisioned = errors.New("the cluster is already provisioned")

// Log providers a cluster configuration may name.
const (
	ProviderLocal      = "local"
	ProviderReplicated = "replicated"
)

// ErrInvalidConfig wraps every complaint of Validate.
var ErrInvalidConfig = errors.New("invalid cluster configuration")

// Validate reports the first invalid field of a cluster configuration, naming it.
func Validate(c metadata.ClusterConfig) error {
	if err := validate(c); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func validate(c metadata.ClusterConfig) error {
	switch {
	case c.NumPartitions < 1 || c.NumPartitions > 65535:
		return fmt.Errorf("num_partitions %d: want 1 to 65535", c.NumPartitions)
	case c.PartitionReplication < 1 || c.PartitionReplication > 255:
		return fmt.Errorf("partition_replication %d: want 1 to 255", c.PartitionReplication)
	case c.LogReplication < 1 || c.LogReplication > 255:
		return fmt.Errorf("log_replication %d: want 1 to 255", c.LogReplication)
	case c.NodesetSize < 0 || (c.NodesetSize > 0 && c.NodesetSize < c.LogReplication):
		return fmt.Errorf("nodeset_size %d: want 0 (automatic) or at least log_replication (%d)", c.NodesetSize, c.LogReplication)
	case c.LogProvider == ProviderReplicated:
		// Say so plainly rather than accept a setting nothing acts on.
		return fmt.Errorf("log_provider %q is not available yet: only %q logs exist in this version", c.LogProvider, ProviderLocal)
	case c.LogProvider != ProviderLocal:
		return fmt.Errorf("log_provider %q: want %q or %q", c.LogProvider, ProviderLocal, ProviderReplicated)
	}
	return nil
}

// Provision writes the initial cluster configuration, the log chains and the partition
// table, and returns the configuration in force. It refuses (ErrAlreadyProvisioned) if the
// cluster has a partition table. Every write is a compare-and-set against "absent", so two
// concurrent provisions cannot both win.
func Provision(ctx context.Context, s metadata.Store, c metadata.ClusterConfig) (metadata.ClusterConfig, error) {
	c, err := provision(ctx, s, c)
	if err != nil {
		return metadata.ClusterConfig{}, err
	}
	return c, nil
}

func provision(ctx context.Context, s metadata.Store, c metadata.ClusterConfig) (metadata.ClusterConfig, error) {
	if err := Validate(c); err != nil {
		return c, err
	}
	if v, err := s.Get(ctx, metadata.KeyPartitionTable); err == nil {
		return c, fmt.Errorf("%w (partition table version %d)", ErrAlreadyProvisioned, v.Version)
	} else if !errors.Is(err, metadata.ErrNotFound) {
		return c, err
	}
	put := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		// A mismatch means an earlier, interrupted provision wrote this object already; the
		// partition table decides below.
		if _, err := s.Put(ctx, key, b, 0); err != nil && !errors.Is(err, metadata.ErrVersionMismatch) {
			return fmt.Errorf("provision %s: %w", key, err)
		}
		return nil
	}
	if err := put(metadata.KeyClusterConfig, c); err != nil {
		return c, err
	}
	// Whoever wrote the configuration first (this provision, a concurrent one, or an
	// interrupted earlier one) decides the rest: logs and partition table always follow the
	// stored configuration, so they can never disagree on the partition count.
	stored, _, err := ReadConfig(ctx, s)
	if err != nil {
		return c, err
	}
	c = stored
	logs := metadata.Logs{Chains: map[uint32][]metadata.Segment{}}
	for p := uint32(0); p < c.NumPartitions; p++ {
		logs.Chains[p] = []metadata.Segment{{BaseLSN: 1, Provider: ProviderLocal, LogletID: uint64(p)}}
	}
	if err := put(metadata.KeyLogs, logs); err != nil {
		return c, err
	}
	// The partition table goes last: its presence means "provisioned".
	b, _ := json.Marshal(metadata.PartitionTable{NumPartitions: c.NumPartitions})
	if _, err := s.Put(ctx, metadata.KeyPartitionTable, b, 0); errors.Is(err, metadata.ErrVersionMismatch) {
		return c, fmt.Errorf("%w (by a concurrent provision)", ErrAlreadyProvisioned)
	} else if err != nil {
		return c, fmt.Errorf("provision %s: %w", metadata.KeyPartitionTable, err)
	}
	return c, nil
}

// Provisioned reports whether the cluster has a partition table.
func Provisioned(ctx context.Context, s metadata.Store) (bool, error) {
	_, err := s.Get(ctx, metadata.KeyPartitionTable)
	if errors.Is(err, metadata.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ReadConfig returns the cluster configuration. Clusters provisioned before the object
// existed get one derived from the partition table, so that "config get" always answers.
func ReadConfig(ctx context.Context, s metadata.Store) (metadata.ClusterConfig, uint64, error) {
	v, err := s.Get(ctx, metadata.KeyClusterConfig)
	if err == nil {
		var c metadata.ClusterConfig
		if err := json.Unmarshal(v.Value, &c); err != nil {
			return c, 0, fmt.Errorf("decode cluster configuration: %w", err)
		}
		return c, v.Version, nil
	}
	if !errors.Is(err, metadata.ErrNotFound) {
		return metadata.ClusterConfig{}, 0, err
	}
	t, err := s.Get(ctx, metadata.KeyPartitionTable)
	if err != nil {
		return metadata.ClusterConfig{}, 0, err // ErrNotFound: not provisioned
	}
	var pt metadata.PartitionTable
	if err := json.Unmarshal(t.Value, &pt); err != nil {
		return metadata.ClusterConfig{}, 0, fmt.Errorf("decode partition table: %w", err)
	}
	return metadata.ClusterConfig{NumPartitions: pt.NumPartitions, PartitionReplication: 1, LogProvider: ProviderLocal, LogReplication: 1}, 0, nil
}

// ConfigChange is a "config set": nil fields stay as they are. The partition count is fixed
// once provisioned.
type ConfigChange struct {
	PartitionReplication *int    `json:"partition_replication,omitempty"`
	LogProvider          *string `json:"log_provider,omitempty"`
	LogReplication       *int    `json:"log_replication,omitempty"`
	NodesetSize          *int    `json:"nodeset_size,omitempty"`
}

// UpdateConfig applies a change with compare-and-set, retrying on concurrent writers, and
// returns the configuration before and after.
func UpdateConfig(ctx context.Context, s metadata.Store, ch ConfigChange) (before, after metadata.ClusterConfig, err error) {
	for {
		cur, version, err := ReadConfig(ctx, s)
		if err != nil {
			return cur, cur, err
		}
		next := cur
		if ch.PartitionReplication != nil {
			next.PartitionReplication = *ch.PartitionReplication
		}
		if ch.LogProvider != nil {
			next.LogProvider = *ch.LogProvider
		}
		if ch.LogReplication != nil {
			next.LogReplication = *ch.LogReplication
		}
		if ch.NodesetSize != nil {
			next.NodesetSize = *ch.NodesetSize
		}
		if err := Validate(next); err != nil {
			return cur, cur, err
		}
		b, _ := json.Marshal(next)
		if _, err := s.Put(ctx, metadata.KeyClusterConfig, b, version); errors.Is(err, metadata.ErrVersionMismatch) {
			continue
		} else if err != nil {
			return cur, cur, err
		}
		return cur, next, nil
	}
}
