// Package cluster owns the cluster-level operations of the control plane: provisioning, the
// cluster configuration, and the status view that the cluster CLI shows (nodes, membership,
// metadata members, partitions and their leaders). It serves them on the fabric listener of
// metadata nodes under /cluster/v1/.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/nodeset"
	"gorestate.dev/shared/metadata"
)

// ErrAlreadyProvisioned is returned by Provision on a provisioned cluster.
var ErrAlreadyProvisioned = errors.New("the cluster is already provisioned")

// Log providers a cluster configuration may name (spelled once, in bifrost).
const (
	ProviderLocal      = bifrost.ProviderLocal
	ProviderReplicated = bifrost.ProviderReplicated
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
	case c.NodesetSize < 0:
		return fmt.Errorf("nodeset_size %d: want 0 (automatic) or a number of log servers", c.NodesetSize)
	case c.LogProvider != ProviderLocal && c.LogProvider != ProviderReplicated:
		return fmt.Errorf("log_provider %q: want %q or %q", c.LogProvider, ProviderLocal, ProviderReplicated)
	}
	if err := nodeset.Check(c.LogReplication, c.NodesetSize); err != nil {
		return err
	}
	if c.LogProvider == ProviderReplicated && c.LogReplication < 2 {
		// A nodeset of n servers with replication 1 needs all n for a seal: one server down
		// would block every reconfiguration of the log.
		return fmt.Errorf("log_replication %d with %q logs: a seal would need every log server of the nodeset; want 2 or more (or the %q provider)", c.LogReplication, ProviderReplicated, ProviderLocal)
	}
	return nil
}

// provisionCatchUp bounds the wait for this member to apply what another provision wrote.
const provisionCatchUp = 5 * time.Second

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
		// A mismatch means an earlier, interrupted provision (or a concurrent one) wrote this
		// object already; the partition table decides below. This member may not have
		// applied that write yet: wait for it, so that what is read next is not a stale copy.
		_, err = s.Put(ctx, key, b, 0)
		if errors.Is(err, metadata.ErrVersionMismatch) {
			wctx, cancel := context.WithTimeout(ctx, provisionCatchUp)
			defer cancel()
			if _, err := s.WaitNewer(wctx, key, 0); err != nil {
				return fmt.Errorf("provision %s: written by another provision, not applied on this member within %v: %w", key, provisionCatchUp, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("provision %s: %w", key, err)
		}
		return nil
	}
	if c.Fingerprint == "" {
		c.Fingerprint = newFingerprint()
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
		if c.LogProvider == ProviderReplicated {
			// No segment yet: the partition leader's node adds the first replicated segment
			// once enough log servers are registered; appends wait until then.
			logs.Chains[p] = []metadata.Segment{}
			continue
		}
		logs.Chains[p] = []metadata.Segment{{BaseLSN: 1, Provider: ProviderLocal, LogletID: bifrost.LogletID(p, 0)}}
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
		if err := checkLogServers(ctx, s, cur, next); err != nil {
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

// checkLogServers refuses a change to replicated logs (or to their replication or nodeset
// size) that the registered read-write log servers cannot carry: the writers would fail to
// build a nodeset and every append would wait.
func checkLogServers(ctx context.Context, s metadata.Store, cur, next metadata.ClusterConfig) error {
	if next.LogProvider != ProviderReplicated {
		return nil
	}
	if cur.LogProvider == next.LogProvider && cur.LogReplication == next.LogReplication && cur.NodesetSize == next.NodesetSize {
		return nil
	}
	servers, err := ReadWriteLogServers(ctx, s)
	if err != nil {
		return err
	}
	need := nodeset.Size(next.LogReplication, next.NodesetSize)
	if len(servers) < need {
		return fmt.Errorf("%w: log replication %d needs a nodeset of %d log servers (at least max(2r−1, r+1)), but %d read-write log servers are registered %v: start more nodes with the log-server role first",
			ErrInvalidConfig, next.LogReplication, need, len(servers), servers)
	}
	return nil
}

// ReadWriteLogServers returns the names of the registered log servers whose storage is
// read-write, sorted.
func ReadWriteLogServers(ctx context.Context, s metadata.Store) ([]string, error) {
	v, err := s.Get(ctx, metadata.KeyNodes)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		return nil, fmt.Errorf("decode nodes configuration: %w", err)
	}
	var out []string
	for name, n := range nodes.Nodes {
		if n.LogStorage == metadata.StorageReadWrite {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// newFingerprint is a cluster's fingerprint: 128 random bits in hex.
func newFingerprint() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
