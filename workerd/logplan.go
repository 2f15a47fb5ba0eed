package workerd

import (
	"fmt"
	"slices"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/nodeset"
	"gorestate.dev/shared/metadata"
)

// logPlan is what the partition leader's node needs to decide the shape of its logs' next
// segments: the cluster configuration, this node's life, and the log servers that can take
// a new nodeset. The cluster controller never extends chains; the writer does (BIFROST.md §6).
type logPlan struct {
	config metadata.ClusterConfig
	self   metadata.NodeID
	// logServers are the read-write log servers that gossip does not report as down.
	logServers []string
	// standby are read-write log servers that gossip reports as down: a nodeset may
	// include them when too few others are up (writes need only a write quorum of it),
	// rather than leave the log without a segment.
	standby []string
	// lost are the log servers that lost some segments' records (wiped disks).
	lost map[string]metadata.Node
}

// next returns the segment that follows prev in the chain of logID, starting at base. prev
// is the zero Segment for a chain that has none yet.
func (p logPlan) next(logID uint32, prev metadata.Segment, base bifrost.LSN, empty bool) (metadata.Segment, error) {
	seg := metadata.Segment{BaseLSN: uint64(base), Provider: p.config.LogProvider}
	if empty {
		seg.Index = 0
	} else {
		seg.Index = prev.Index + 1
	}
	seg.LogletID = bifrost.LogletID(logID, seg.Index)
	switch p.config.LogProvider {
	case bifrost.ProviderLocal:
		seg.Node = p.self.Name
	case bifrost.ProviderReplicated:
		var prevNodeset []string
		if prev.Replicated != nil {
			prevNodeset = prev.Replicated.Nodeset
		}
		cands, prefer := p.logServers, prevNodeset
		if len(cands) < nodeset.Size(p.config.LogReplication, p.config.NodesetSize) {
			cands, prefer = append(slices.Clone(p.logServers), p.standby...), p.logServers
		}
		ns, err := nodeset.Select(logID, cands, p.config.LogReplication, p.config.NodesetSize, prefer)
		if err != nil {
			return metadata.Segment{}, fmt.Errorf("new segment of log %d: %w", logID, err)
		}
		seg.Replicated = &metadata.ReplicatedParams{Sequencer: p.self, Replication: p.config.LogReplication, Nodeset: ns}
	default:
		return metadata.Segment{}, fmt.Errorf("new segment of log %d: unknown log provider %q", logID, p.config.LogProvider)
	}
	return seg, nil
}

// reconfigureReason says why the open segment tail of a log this node writes should be
// sealed and replaced, or "" if it should stay. urgent reasons (this node cannot append to
// the segment at all) act at once; the others wait a few seconds so that a burst of
// configuration changes causes one reconfiguration.
func (p logPlan) reconfigureReason(logID uint32, tail metadata.Segment) (reason string, urgent bool) {
	switch {
	case tail.Provider == bifrost.ProviderReplicated && tail.Replicated != nil && tail.Replicated.Sequencer != p.self:
		return fmt.Sprintf("the sequencer is %s, not this node (%s)", tail.Replicated.Sequencer, p.self), true
	case tail.Provider != p.config.LogProvider:
		if p.config.LogProvider == bifrost.ProviderReplicated && len(p.logServers) < nodeset.Size(p.config.LogReplication, p.config.NodesetSize) {
			return "", false // cannot build a nodeset yet; keep appending where we are
		}
		return fmt.Sprintf("the log provider changed from %s to %s", tail.Provider, p.config.LogProvider), false
	case tail.Replicated != nil && tail.Replicated.Replication != p.config.LogReplication:
		if len(p.logServers) < nodeset.Size(p.config.LogReplication, p.config.NodesetSize) {
			return "", false
		}
		return fmt.Sprintf("the log replication changed from %d to %d", tail.Replicated.Replication, p.config.LogReplication), false
	case tail.Replicated != nil && slices.ContainsFunc(tail.Replicated.Nodeset, func(n string) bool {
		return p.lost[n].Lost(logID, tail.Index)
	}):
		// A nodeset member lost its records of this segment and answers data-loss: the
		// segment has one replica less than it should, and one more failure could make its
		// tail unknowable. Urgent: a new segment counts the member again.
		return "a nodeset member lost this segment's records (wiped disk)", true
	case tail.Replicated != nil && slices.ContainsFunc(tail.Replicated.Nodeset, func(n string) bool { return !slices.Contains(p.logServers, n) }) &&
		len(p.logServers) >= len(tail.Replicated.Nodeset):
		// A nodeset member is down or lost its data while enough others are up: move
		// before a second failure makes the segment write-unavailable.
		return "a nodeset member is not a live read-write log server", false
	}
	return "", false
}
