// Package metadata owns the versioned metadata objects of the control plane and the Store
// interface through which every role reads and compare-and-sets them.
package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Keys of the objects kept in the metadata store.
const (
	KeySchema         = "schema"          // deployments and services (schema.Registry JSON)
	KeyPartitionTable = "partition_table" // PartitionTable JSON
	KeyLogs           = "logs"            // Logs JSON: the segment chain of every partition log
	KeyRuleBook       = "rule_book"       // the limiter rule book (rulebook.Book JSON)
)

// ErrVersionMismatch is returned by Put when the stored version differs from the expected one.
var ErrVersionMismatch = errors.New("metadata: version mismatch")

// ErrNotFound is returned by Get for a key that was never written.
var ErrNotFound = errors.New("metadata: not found")

// ErrOutcomeUnknown marks a Put that may or may not have taken effect: a replicated store's
// leader lost its leadership while committing it, or the connection broke after the request
// was sent. The caller re-reads; a write it repeats must not assume either outcome.
var ErrOutcomeUnknown = errors.New("metadata: outcome unknown")

// Versioned is one object with its version. Version 0 means "absent"; the first Put of a key
// expects version 0 and stores version 1.
type Versioned struct {
	Version uint64
	Value   []byte
}

// Store is a versioned key/value store with compare-and-set.
type Store interface {
	// Get returns the newest value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (Versioned, error)
	// Put stores value as version expected+1 if the current version equals expected,
	// otherwise it returns ErrVersionMismatch. It returns once the write is durable.
	Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error)
	// WaitNewer blocks until key has a version greater than version (or ctx is done) and
	// returns it.
	WaitNewer(ctx context.Context, key string, version uint64) (Versioned, error)
}

// ConsistentReader is a Store that also offers linearizable reads (a replicated metadata
// server's store, the metadata client): GetConsistent reflects every write that completed
// before it was called, whatever copy the answering member holds.
type ConsistentReader interface {
	Store
	GetConsistent(ctx context.Context, key string) (Versioned, error)
}

// PartitionTable is the fixed split of the partition-key space into partitions.
type PartitionTable struct {
	NumPartitions uint32 `json:"num_partitions"`
	// Placement, kept by the cluster controller, has one entry per partition once the
	// controller has placed them (empty before): the worker nodes that run its processors.
	Placement []PartitionPlacement `json:"placement,omitempty"`
}

// PartitionPlacement is where one partition's processors run: its leader and followers,
// distinct worker nodes (by name).
type PartitionPlacement struct {
	Leader    string   `json:"leader,omitempty"`
	Followers []string `json:"followers,omitempty"`
	// UnderReplicated says why the partition has fewer replicas than the partition
	// replication asks for ("" when it has them all).
	UnderReplicated string `json:"under_replicated,omitempty"`
}

// Replicas are the leader (if any) and the followers.
func (p PartitionPlacement) Replicas() []string {
	if p.Leader == "" {
		return p.Followers
	}
	return append([]string{p.Leader}, p.Followers...)
}

// Has reports whether node runs a processor of the partition.
func (p PartitionPlacement) Has(node string) bool {
	return p.Leader == node || slices.Contains(p.Followers, node)
}

// LeaderOf is the node placed as leader of partition p, or "".
func (t *PartitionTable) LeaderOf(p uint32) string {
	if int(p) >= len(t.Placement) {
		return ""
	}
	return t.Placement[p].Leader
}

// Segment is one element of a log's chain. A segment spans [BaseLSN, next segment's
// BaseLSN); the last segment of a chain is the open one that appends go to (its loglet may
// be sealed already while the chain waits to be extended). Loglet offsets map to LSNs as
// lsn = BaseLSN + offset - 1.
type Segment struct {
	BaseLSN  uint64 `json:"base_lsn"`
	Provider string `json:"provider"` // bifrost.ProviderLocal or bifrost.ProviderReplicated
	// LogletID is log_id<<32 | Index for segments written since chains could be extended.
	// Chains provisioned before that name their first loglet by the log id alone; new
	// segments skip any index whose id is already taken, so ids are never reused.
	LogletID uint64 `json:"loglet_id"`
	// Index is the segment's position in the chain's history: it only grows, never reused.
	Index uint32 `json:"index"`
	// Node holds a local segment's records: they are readable on that node only. Empty in
	// chains provisioned before multi-node logs, meaning "the node running the worker".
	Node string `json:"node,omitempty"`
	// Replicated is set for replicated segments: what a reader or sealer needs to find the
	// records without asking the writer.
	Replicated *ReplicatedParams `json:"replicated,omitempty"`
}

// NodeID names one life of a node: its name and the generation RegisterNode gave it.
type NodeID struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
}

func (n NodeID) String() string { return fmt.Sprintf("%s@%d", n.Name, n.Generation) }

// ReplicatedParams are the parameters of a replicated loglet.
type ReplicatedParams struct {
	// Sequencer is the only writer of the loglet; a later life of the same node is another
	// sequencer, so a loglet is never resumed after a restart.
	Sequencer NodeID `json:"sequencer"`
	// Replication is the number of log servers that must store a record durably before it
	// is committed (the write quorum).
	Replication int `json:"replication"`
	// Nodeset names the log servers (node names) that store the loglet's records.
	Nodeset []string `json:"nodeset"`
}

// Logs maps each partition's log id to its segment chain.
type Logs struct {
	Chains map[uint32][]Segment `json:"chains"`
}

// Tail returns the last (open) segment of a log's chain.
func (l *Logs) Tail(logID uint32) (Segment, bool) {
	chain := l.Chains[logID]
	if len(chain) == 0 {
		return Segment{}, false
	}
	return chain[len(chain)-1], true
}

// KeyClusterConfig holds the cluster configuration written at provisioning.
const KeyClusterConfig = "cluster_config"

// ClusterConfig is the cluster-wide configuration chosen at provisioning; replication and
// the log provider can be changed later (restatectl's "config set").
type ClusterConfig struct {
	NumPartitions        uint32 `json:"num_partitions"`
	PartitionReplication int    `json:"partition_replication"`
	LogProvider          string `json:"log_provider"` // "local" or "replicated"
	LogReplication       int    `json:"log_replication"`
	NodesetSize          int    `json:"nodeset_size,omitempty"` // 0 = chosen by the controller
	// Fingerprint is a random id chosen at provisioning (empty for clusters provisioned
	// before it existed). Snapshots carry it, so that a cluster provisioned again on a kept
	// snapshot destination never restores or trims by another cluster's snapshots.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// KeyNodes holds the nodes configuration: every node's name, roles and fabric address.
const KeyNodes = "nodes"

// Node is one node of the nodes configuration.
type Node struct {
	Name       string   `json:"name"`
	Generation uint64   `json:"generation"`
	Roles      []string `json:"roles"`
	// Address is the node's advertised fabric base URL, e.g. "http://10.0.0.5:5122".
	Address string `json:"address"`
	// LogStorage is the state of a log server's storage (StorageProvisioning,
	// StorageReadWrite, StorageDataLoss); empty for nodes without the log-server role. It is
	// kept across restarts: a log server that was read-write and comes back without its
	// storage marker has lost its disk.
	LogStorage string `json:"log_storage,omitempty"`
	// LostSegments names the segments whose records this log server lost when its disk
	// was wiped (log id → highest lost segment index): it answers data-loss for those and
	// is never counted as their replica; the writers move such segments to new ones.
	LostSegments map[uint32]uint32 `json:"lost_segments,omitempty"`
}

// Lost reports whether the log server n lost its records of segment index of log logID.
func (n Node) Lost(logID, index uint32) bool {
	m, ok := n.LostSegments[logID]
	return ok && index <= m
}

// Storage states of a log server (Node.LogStorage).
const (
	// StorageProvisioning: the server has not yet written its storage marker; it holds no
	// records and is not chosen for nodesets.
	StorageProvisioning = "provisioning"
	// StorageReadWrite: the server stores records and may be chosen for new nodesets.
	StorageReadWrite = "read-write"
	// StorageDataLoss: the server was read-write and lost its disk. It is never counted as a
	// replica when a tail is chosen and never chosen for new nodesets.
	StorageDataLoss = "data-loss"
)

// Nodes is the nodes configuration.
type Nodes struct {
	Nodes map[string]Node `json:"nodes"`
}

// RegisterNode adds or replaces a node in the nodes configuration, bumping its generation so
// that its previous life can be told apart. It returns the node as stored.
//
// A write whose outcome is unknown (ErrOutcomeUnknown: the metadata leader lost its
// leadership while committing it, as happens when a cluster starts on a loaded host) is
// not an answer: the nodes configuration is read again, and if it holds the entry written
// the registration took effect; otherwise it is tried again, up to a few times.
func RegisterNode(ctx context.Context, s Store, n Node) (Node, error) {
	var (
		pending []byte // the entry of a write whose outcome is unknown, JSON
		unknown int    // such writes so far
	)
	for {
		cur, err := s.Get(ctx, KeyNodes)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Node{}, err
		}
		nodes := Nodes{Nodes: map[string]Node{}}
		if cur.Version > 0 {
			if err := json.Unmarshal(cur.Value, &nodes); err != nil {
				return Node{}, fmt.Errorf("decode nodes configuration: %w", err)
			}
			if nodes.Nodes == nil {
				nodes.Nodes = map[string]Node{}
			}
		}
		if stored, ok := nodes.Nodes[n.Name]; ok && pending != nil {
			if b, err := json.Marshal(stored); err == nil && bytes.Equal(b, pending) {
				return stored, nil // the write whose outcome was unknown took effect
			}
		}
		n.Generation = nodes.Nodes[n.Name].Generation + 1
		if old, ok := nodes.Nodes[n.Name]; ok {
			n.Roles = mergeRoles(old.Roles, n.Roles)
			if n.Address == "" {
				n.Address = old.Address
			}
			if n.LogStorage == "" {
				n.LogStorage = old.LogStorage
			}
			if n.LostSegments == nil {
				n.LostSegments = old.LostSegments
			}
		}
		nodes.Nodes[n.Name] = n
		b, err := json.Marshal(nodes)
		if err != nil {
			return Node{}, err
		}
		_, err = s.Put(ctx, KeyNodes, b, cur.Version)
		switch {
		case errors.Is(err, ErrVersionMismatch):
			continue
		case errors.Is(err, ErrOutcomeUnknown) && unknown < maxUnknownOutcomes && ctx.Err() == nil:
			unknown++
			if pending, err = json.Marshal(n); err != nil {
				return Node{}, err
			}
			select {
			case <-ctx.Done():
				return Node{}, ctx.Err()
			case <-time.After(time.Duration(unknown) * 50 * time.Millisecond): // an election
			}
			continue
		case err != nil:
			return Node{}, err
		}
		return n, nil
	}
}

// maxUnknownOutcomes bounds the writes of unknown outcome RegisterNode tries again.
const maxUnknownOutcomes = 5

func mergeRoles(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, r := range b {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
