package metadatad

import (
	"testing"

	"gorestate.dev/shared/config"
)

func TestClusterDefaults(t *testing.T) {
	cfg := config.Default()
	cfg.DefaultReplication = 3
	cfg.Bifrost.DefaultProvider = "replicated"
	c := ClusterDefaults(cfg)
	if c.PartitionReplication != 3 || c.LogReplication != 3 || c.LogProvider != "replicated" {
		t.Fatalf("defaults = %+v: default-replication sets both replications", c)
	}
	// [bifrost.replicated-loglet] default-log-replication overrides the log's only.
	cfg.Bifrost.ReplicatedLoglet.DefaultLogReplication = 2
	if c := ClusterDefaults(cfg); c.PartitionReplication != 3 || c.LogReplication != 2 {
		t.Fatalf("with default-log-replication 2: %+v", c)
	}
}
