package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"gorestate.dev/shared/metadata"
)

func openStore(t *testing.T) *metadata.LocalStore {
	t.Helper()
	s, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func validConfig() metadata.ClusterConfig {
	return metadata.ClusterConfig{NumPartitions: 4, PartitionReplication: 1, LogProvider: ProviderLocal, LogReplication: 1}
}

func TestProvisionOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	// Concurrent provisions: exactly one wins, the others are told the cluster is provisioned.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		c := validConfig()
		c.NumPartitions = uint32(4 + 4*(i%2)) // provisions disagree: 4 or 8 partitions
		go func() { defer wg.Done(); _, errs[i] = Provision(ctx, s, c) }()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrAlreadyProvisioned):
			t.Errorf("provision failed with %v, want nil or ErrAlreadyProvisioned", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d provisions won, want exactly 1", wins)
	}
	// Whichever configuration won, the log chains and the partition table agree with it.
	c, _, err := ReadConfig(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var table metadata.PartitionTable
	var logs metadata.Logs
	for key, v := range map[string]any{metadata.KeyPartitionTable: &table, metadata.KeyLogs: &logs} {
		x, err := s.Get(ctx, key)
		if err != nil || json.Unmarshal(x.Value, v) != nil {
			t.Fatalf("read %s: %v", key, err)
		}
	}
	if table.NumPartitions != c.NumPartitions || len(logs.Chains) != int(c.NumPartitions) {
		t.Fatalf("config says %d partitions, table %d, logs %d chains", c.NumPartitions, table.NumPartitions, len(logs.Chains))
	}
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*metadata.ClusterConfig)
		want   string
	}{
		{"no partitions", func(c *metadata.ClusterConfig) { c.NumPartitions = 0 }, "num_partitions 0"},
		{"zero replication", func(c *metadata.ClusterConfig) { c.PartitionReplication = 0 }, "partition_replication 0"},
		{"nodeset below replication", func(c *metadata.ClusterConfig) { c.LogReplication = 3; c.NodesetSize = 2 }, "nodeset size 2 is too small"},
		{"unknown provider", func(c *metadata.ClusterConfig) { c.LogProvider = "s3" }, `log_provider "s3"`},
		{"replicated with replication 1", func(c *metadata.ClusterConfig) {
			c.LogProvider, c.LogReplication = ProviderReplicated, 1
		}, "a seal would need every log server"},
		{"nodeset below max(2r-1, r+1)", func(c *metadata.ClusterConfig) {
			c.LogProvider, c.LogReplication, c.NodesetSize = ProviderReplicated, 2, 2
		}, "needs at least max(2r−1, r+1) = 3 log servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := Validate(c)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
	if err := Validate(validConfig()); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestUpdateConfigKeepsPartitionCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if _, _, err := UpdateConfig(ctx, s, ConfigChange{}); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("config set before provisioning: %v, want ErrNotFound", err)
	}
	if _, err := Provision(ctx, s, validConfig()); err != nil {
		t.Fatal(err)
	}
	three := 3
	before, after, err := UpdateConfig(ctx, s, ConfigChange{PartitionReplication: &three, LogReplication: &three})
	if err != nil || before.PartitionReplication != 1 || after.PartitionReplication != 3 || after.LogReplication != 3 || after.NumPartitions != 4 {
		t.Fatalf("UpdateConfig = %+v → %+v, %v", before, after, err)
	}
	// The fingerprint provisioning chose (snapshots carry it) stays.
	if len(before.Fingerprint) != 32 || after.Fingerprint != before.Fingerprint {
		t.Fatalf("fingerprint %q after provisioning, %q after config set; want 32 hex digits, kept", before.Fingerprint, after.Fingerprint)
	}
	bad := "s3"
	if _, _, err := UpdateConfig(ctx, s, ConfigChange{LogProvider: &bad}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("invalid change: %v, want ErrInvalidConfig", err)
	}
}

// unseenStore is a metadata member that has not applied some keys the leader holds yet:
// reads answer not found until the member waits for them, as a raft follower's FSM.
type unseenStore struct {
	metadata.Store
	mu     sync.Mutex
	unseen map[string]bool
}

func (u *unseenStore) Get(ctx context.Context, key string) (metadata.Versioned, error) {
	u.mu.Lock()
	hidden := u.unseen[key]
	u.mu.Unlock()
	if hidden {
		return metadata.Versioned{}, metadata.ErrNotFound
	}
	return u.Store.Get(ctx, key)
}

func (u *unseenStore) WaitNewer(ctx context.Context, key string, version uint64) (metadata.Versioned, error) {
	u.mu.Lock()
	delete(u.unseen, key)
	u.mu.Unlock()
	return u.Store.WaitNewer(ctx, key, version)
}

// A provision through a member that has not yet applied the configuration an interrupted
// provision wrote (its compare-and-set fails) waits for it instead of failing on a read of
// its own stale copy; it then follows that configuration.
func TestProvisionOnAMemberThatHasNotSeenTheConfiguration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	backing := openStore(t)
	earlier := validConfig()
	earlier.NumPartitions = 8
	b, _ := json.Marshal(earlier)
	if _, err := backing.Put(ctx, metadata.KeyClusterConfig, b, 0); err != nil {
		t.Fatal(err)
	}
	s := &unseenStore{Store: backing, unseen: map[string]bool{metadata.KeyClusterConfig: true}}
	c, err := Provision(ctx, s, validConfig())
	if err != nil {
		t.Fatalf("provision on a lagging member: %v", err)
	}
	if c.NumPartitions != 8 {
		t.Fatalf("provisioned %d partitions, want the stored configuration's 8", c.NumPartitions)
	}
}
