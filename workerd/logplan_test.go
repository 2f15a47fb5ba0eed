package workerd

import (
	"errors"
	"slices"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/nodeset"
	"gorestate.dev/shared/metadata"
)

func TestLogPlanNext(t *testing.T) {
	self := metadata.NodeID{Name: "w1", Generation: 4}
	servers := []string{"n1", "n2", "n3"}
	p := logPlan{config: metadata.ClusterConfig{LogProvider: bifrost.ProviderReplicated, LogReplication: 2}, self: self, logServers: servers}

	first, err := p.next(5, metadata.Segment{}, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if first.Index != 0 || first.BaseLSN != 1 || first.LogletID != bifrost.LogletID(5, 0) || first.Replicated == nil ||
		first.Replicated.Sequencer != self || first.Replicated.Replication != 2 || len(first.Replicated.Nodeset) != 3 {
		t.Fatalf("first segment = %+v", first)
	}
	second, err := p.next(5, first, 77, false)
	if err != nil || second.Index != 1 || second.BaseLSN != 77 || second.LogletID != bifrost.LogletID(5, 1) {
		t.Fatalf("second segment = %+v, %v", second, err)
	}

	// A server down: the nodeset still takes it when no other is available (a write
	// quorum of the nodeset is up), instead of leaving the log without a segment.
	p.logServers, p.standby = servers[:2], servers[2:]
	if seg, err := p.next(5, first, 77, false); err != nil || len(seg.Replicated.Nodeset) != 3 {
		t.Fatalf("2 live log servers and 1 down: %+v, %v", seg, err)
	}
	p.standby = []string{"n4", "n5"}
	if seg, err := p.next(5, metadata.Segment{}, 77, false); err != nil || !slices.Contains(seg.Replicated.Nodeset, "n1") || !slices.Contains(seg.Replicated.Nodeset, "n2") {
		t.Fatalf("live servers are preferred: %+v, %v", seg, err)
	}
	p.logServers, p.standby = servers[:2], nil
	if _, err := p.next(5, first, 77, false); !errors.Is(err, nodeset.ErrTooFewServers) {
		t.Fatalf("2 log servers for replication 2: %v", err)
	}

	p.config.LogProvider = bifrost.ProviderLocal
	local, err := p.next(5, second, 90, false)
	if err != nil || local.Provider != bifrost.ProviderLocal || local.Node != "w1" || local.Replicated != nil {
		t.Fatalf("local segment = %+v, %v", local, err)
	}
}

func withIndex(s metadata.Segment, i uint32) metadata.Segment {
	s.Index = i
	return s
}

func TestLogPlanReconfigureReason(t *testing.T) {
	self := metadata.NodeID{Name: "w1", Generation: 4}
	servers := []string{"n1", "n2", "n3"}
	repl := func(seq metadata.NodeID, r int, ns ...string) metadata.Segment {
		return metadata.Segment{Index: 10, Provider: bifrost.ProviderReplicated, Replicated: &metadata.ReplicatedParams{Sequencer: seq, Replication: r, Nodeset: ns}}
	}
	replicated := metadata.ClusterConfig{LogProvider: bifrost.ProviderReplicated, LogReplication: 2}
	tests := []struct {
		name    string
		config  metadata.ClusterConfig
		servers []string
		tail    metadata.Segment
		want    bool
		urgent  bool
	}{
		{"own sequencer", replicated, servers, repl(self, 2, servers...), false, false},
		{"previous life's sequencer", replicated, servers, repl(metadata.NodeID{Name: "w1", Generation: 3}, 2, servers...), true, true},
		{"other node's sequencer", replicated, servers, repl(metadata.NodeID{Name: "w2", Generation: 9}, 2, servers...), true, true},
		{"replication changed", metadata.ClusterConfig{LogProvider: bifrost.ProviderReplicated, LogReplication: 1}, servers, repl(self, 2, servers...), true, false},
		{"local to replicated", replicated, servers, metadata.Segment{Provider: bifrost.ProviderLocal}, true, false},
		{"local to replicated, too few servers", replicated, servers[:2], metadata.Segment{Provider: bifrost.ProviderLocal}, false, false},
		{"nodeset member down, spare available", replicated, []string{"n1", "n2", "n4"}, repl(self, 2, servers...), true, false},
		{"nodeset member down, no spare", replicated, []string{"n1", "n2"}, repl(self, 2, servers...), false, false},
		{"nodeset member lost this segment", replicated, servers, withIndex(repl(self, 2, servers...), 3), true, true},
		{"nodeset member lost earlier segments only", replicated, servers, withIndex(repl(self, 2, servers...), 4), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// n3 was wiped while log 0 had segments up to index 3 (the others are at 10).
			p := logPlan{config: tt.config, self: self, logServers: tt.servers,
				lost: map[string]metadata.Node{"n3": {Name: "n3", LostSegments: map[uint32]uint32{0: 3}}}}
			reason, urgent := p.reconfigureReason(0, tt.tail)
			if (reason != "") != tt.want || urgent != tt.urgent {
				t.Fatalf("reconfigureReason = %q urgent=%v, want reconfigure=%v urgent=%v", reason, urgent, tt.want, tt.urgent)
			}
		})
	}
}
