package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// Status is what `gorestatectl status` shows.
type Status struct {
	ClusterName string                  `json:"cluster_name"`
	Provisioned bool                    `json:"provisioned"`
	Config      *metadata.ClusterConfig `json:"config,omitempty"`
	// NodesVersion is the version of the nodes configuration the node list comes from.
	NodesVersion uint64            `json:"nodes_version"`
	Nodes        []NodeStatus      `json:"nodes"`
	Metadata     MetadataStatus    `json:"metadata"`
	Partitions   []PartitionStatus `json:"partitions"`
}

// NodeStatus is one node of the nodes configuration with its liveness from gossip.
type NodeStatus struct {
	Name          string   `json:"name"`
	Generation    uint64   `json:"generation"`
	Roles         []string `json:"roles"`
	Address       string   `json:"address"`
	GossipAddress string   `json:"gossip_address,omitempty"`
	// LogStorage is a log server's storage state (provisioning, read-write, data-loss).
	LogStorage string `json:"log_storage,omitempty"`
	// State is the gossip view: alive, suspect, failed, left, or unknown when the node never
	// joined the gossip (or the answering node runs none).
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	// GossipGeneration is the generation gossip sees, when it differs from the nodes
	// configuration (a restart not yet registered, or a stale life).
	GossipGeneration uint64 `json:"gossip_generation,omitempty"`
}

// MetadataStatus describes the metadata store cluster.
type MetadataStatus struct {
	Type    string           `json:"type"` // "local" or "replicated"
	Leader  string           `json:"leader,omitempty"`
	Term    uint64           `json:"term,omitempty"`
	Members []MetadataMember `json:"members"`
	// Error says why the members are unknown (no metadata server answered).
	Error string `json:"error,omitempty"`
}

// MetadataMember is one member of the metadata store cluster.
type MetadataMember struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
	// State is the member's gossip state (alive, suspect, failed, left); empty when the
	// answering node runs no gossip or has not heard of it.
	State string `json:"state,omitempty"`
}

// PartitionStatus is one partition with the processors that run it.
type PartitionStatus struct {
	ID         uint32               `json:"id"`
	Leader     string               `json:"leader,omitempty"` // node name; empty when no leader answered
	Processors []rpc.PartitionState `json:"processors"`
	// The placement of the partition table: where the cluster controller wants the leader
	// and the followers, and why there are fewer replicas than asked for.
	PlacedLeader    string   `json:"placed_leader,omitempty"`
	PlacedFollowers []string `json:"placed_followers,omitempty"`
	UnderReplicated string   `json:"under_replicated,omitempty"`
}

// Sources are where a status is gathered from.
type Sources struct {
	ClusterName string
	Store       metadata.Store
	// Members is the gossip view; nil when the answering node runs no gossip.
	Members func() []membership.Member
	// Metadata describes the metadata cluster.
	Metadata func(ctx context.Context) (MetadataStatus, error)
	// HTTP reaches the workers' fabric endpoints; requests carry a short timeout.
	HTTP *http.Client
}

// ErrCatchingUp says this node's copy of the metadata lags the metadata leader's so far that
// it does not even hold the partition table yet (a member that just restarted).
var ErrCatchingUp = fmt.Errorf("%w: this node's copy of the metadata is still catching up with the metadata leader; try again in a moment, or ask another node", metadata.ErrUnavailable)

// confirmNotProvisioned asks the metadata leader, when the store can, whether the partition
// table this node's copy lacks really is absent, so that a member still catching up after a
// restart does not report a provisioned cluster as not provisioned (and tell the operator to
// provision it).
func confirmNotProvisioned(ctx context.Context, s metadata.Store) error {
	c, ok := s.(interface {
		metadata.ConsistentReader
		Leader() (name, addr string)
	})
	if !ok {
		return nil // a local store: its copy is the only one
	}
	if name, _ := c.Leader(); name == "" {
		// No leader known: a store not bootstrapped yet (provisioning bootstraps it), or one
		// between leaders; its own copy is all there is to say.
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.GetConsistent(ctx, metadata.KeyPartitionTable); err == nil {
		return ErrCatchingUp
	}
	return nil
}

// Gather builds the cluster status. Unreachable workers and metadata servers show up as such
// rather than failing the whole status: status matters most when something is down.
func Gather(ctx context.Context, src Sources) (*Status, error) {
	st := &Status{ClusterName: src.ClusterName, Nodes: []NodeStatus{}, Partitions: []PartitionStatus{}}
	var err error
	if st.Provisioned, err = Provisioned(ctx, src.Store); err != nil {
		return nil, fmt.Errorf("read partition table: %w", err)
	}
	if !st.Provisioned {
		if err := confirmNotProvisioned(ctx, src.Store); err != nil {
			return nil, err
		}
	}
	if st.Provisioned {
		c, _, err := ReadConfig(ctx, src.Store)
		if err != nil {
			return nil, err
		}
		st.Config = &c
	}
	nodes, version, err := readNodes(ctx, src.Store)
	if err != nil {
		return nil, err
	}
	st.NodesVersion = version
	var gossip map[string]membership.Member
	if src.Members != nil {
		gossip = map[string]membership.Member{}
		for _, m := range src.Members() {
			gossip[m.Name] = m
		}
	}
	for _, n := range nodes {
		ns := NodeStatus{Name: n.Name, Generation: n.Generation, Roles: n.Roles, Address: n.Address, LogStorage: n.LogStorage, State: "unknown"}
		if m, ok := gossip[n.Name]; ok {
			ns.State, ns.Since, ns.GossipAddress = m.State.String(), m.Since, m.GossipAddr
			if m.Generation != n.Generation {
				ns.GossipGeneration = m.Generation
			}
		}
		st.Nodes = append(st.Nodes, ns)
	}
	if src.Metadata != nil {
		ms, err := src.Metadata(ctx)
		if err != nil {
			ms.Error = err.Error()
		}
		for i := range ms.Members {
			if m, ok := gossip[ms.Members[i].Name]; ok {
				ms.Members[i].State = m.State.String()
			}
		}
		st.Metadata = ms
	}
	if st.Metadata.Members == nil {
		st.Metadata.Members = []MetadataMember{}
	}
	st.Partitions = gatherPartitions(ctx, src, st)
	if v, err := src.Store.Get(ctx, metadata.KeyPartitionTable); err == nil {
		var t metadata.PartitionTable
		if err := json.Unmarshal(v.Value, &t); err == nil {
			for i := range st.Partitions {
				if id := st.Partitions[i].ID; int(id) < len(t.Placement) {
					pl := t.Placement[id]
					st.Partitions[i].PlacedLeader, st.Partitions[i].PlacedFollowers, st.Partitions[i].UnderReplicated = pl.Leader, pl.Followers, pl.UnderReplicated
				}
			}
		}
	}
	return st, nil
}

func readNodes(ctx context.Context, s metadata.Store) ([]metadata.Node, uint64, error) {
	v, err := s.Get(ctx, metadata.KeyNodes)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read nodes configuration: %w", err)
	}
	var nc metadata.Nodes
	if err := json.Unmarshal(v.Value, &nc); err != nil {
		return nil, 0, fmt.Errorf("decode nodes configuration: %w", err)
	}
	out := make([]metadata.Node, 0, len(nc.Nodes))
	for _, n := range nc.Nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b metadata.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, v.Version, nil
}

// gatherPartitions asks every worker that gossip does not report as down for its processors.
func gatherPartitions(ctx context.Context, src Sources, st *Status) []PartitionStatus {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		procs []rpc.PartitionState
		wg    sync.WaitGroup
	)
	for _, n := range st.Nodes {
		if !slices.Contains(n.Roles, config.RoleWorker) || n.Address == "" || n.State == "failed" || n.State == "left" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := fetchPartitions(ctx, src.HTTP, n.Address)
			if err != nil {
				return // shown as a partition without leader
			}
			mu.Lock()
			procs = append(procs, ps...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	var n uint32
	if st.Config != nil {
		n = st.Config.NumPartitions
	}
	out := make([]PartitionStatus, n)
	for i := range out {
		out[i] = PartitionStatus{ID: uint32(i), Processors: []rpc.PartitionState{}}
	}
	for _, p := range procs {
		if p.ID >= n {
			continue
		}
		ps := &out[p.ID]
		ps.Processors = append(ps.Processors, p)
		if p.Mode == "leader" {
			ps.Leader = p.Node
		}
	}
	return out
}

func fetchPartitions(ctx context.Context, hc *http.Client, address string) ([]rpc.PartitionState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(address, "/")+rpc.PartitionsPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	var ps []rpc.PartitionState
	return ps, json.NewDecoder(resp.Body).Decode(&ps)
}
