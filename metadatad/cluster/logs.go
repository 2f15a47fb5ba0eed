package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost/nodeset"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/membership"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// LogsStatus is what `gorestatectl logs list` and `logs describe` show: every log's segment
// chain from the metadata store, with the open segments' tails as the workers report them.
type LogsStatus struct {
	Version uint64      `json:"version"` // of the logs object
	Logs    []LogStatus `json:"logs"`
}

// LogStatus is one log.
type LogStatus struct {
	ID       uint32          `json:"id"`
	Segments []SegmentStatus `json:"segments"`
	// Waiting says why a log has no segment yet (replicated logs wait for log servers).
	Waiting string `json:"waiting,omitempty"`
	// TrimPointLSN is the highest trimmed LSN of the log (0 if none): what the writer
	// reports, and at least the LSN before the first segment left in the chain (segments
	// trimmed wholly are dropped from it).
	TrimPointLSN uint64 `json:"trim_point_lsn,omitempty"`
}

// SegmentStatus is one segment of a chain.
type SegmentStatus struct {
	Index       uint32           `json:"index"`
	BaseLSN     uint64           `json:"base_lsn"`
	Provider    string           `json:"provider"`
	LogletID    uint64           `json:"loglet_id"`
	Node        string           `json:"node,omitempty"` // local segments: the node holding it
	Nodeset     []string         `json:"nodeset,omitempty"`
	Replication int              `json:"replication,omitempty"`
	Sequencer   *metadata.NodeID `json:"sequencer,omitempty"`
	// LostReplicas are the nodeset members that lost their records of the segment (wiped
	// disks): the segment has that many copies fewer until the log is trimmed past it.
	LostReplicas []string `json:"lost_replicas,omitempty"`
	// State is "sealed" for every segment but the last; for the last one what its writer
	// reports: "open", "sealed" (the chain is about to be extended) or "unknown".
	State string `json:"state"`
	// TailLSN is the LSN after the segment's last record: the next segment's base for
	// sealed segments, the writer's committed tail for the open one (0 when unknown).
	TailLSN uint64 `json:"tail_lsn,omitempty"`
	// TrimPointLSN is the log's trim point when it falls in this segment.
	TrimPointLSN uint64 `json:"trim_point_lsn,omitempty"`
	Error        string `json:"error,omitempty"`
}

// GatherLogs builds the logs view.
func GatherLogs(ctx context.Context, src Sources) (*LogsStatus, error) {
	v, err := src.Store.Get(ctx, metadata.KeyLogs)
	if errors.Is(err, metadata.ErrNotFound) {
		return &LogsStatus{Logs: []LogStatus{}}, nil
	} else if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	var logs metadata.Logs
	if err := json.Unmarshal(v.Value, &logs); err != nil {
		return nil, fmt.Errorf("decode logs: %w", err)
	}
	st := &LogsStatus{Version: v.Version, Logs: []LogStatus{}}
	// Without the nodes no worker is asked for its tails and no replica is shown as lost.
	nodes, _, _ := readNodes(ctx, src.Store)
	reports := gatherLogStates(ctx, src, nodes)
	lost := map[string]metadata.Node{}
	for _, n := range nodes {
		if len(n.LostSegments) > 0 {
			lost[n.Name] = n
		}
	}
	waiting := ""
	for id, chain := range logs.Chains {
		ls := LogStatus{ID: id, Segments: []SegmentStatus{}}
		for i, seg := range chain {
			ss := SegmentStatus{Index: seg.Index, BaseLSN: seg.BaseLSN, Provider: seg.Provider, LogletID: seg.LogletID, Node: seg.Node, State: "sealed"}
			if r := seg.Replicated; r != nil {
				seq := r.Sequencer
				ss.Nodeset, ss.Replication, ss.Sequencer = r.Nodeset, r.Replication, &seq
				for _, n := range r.Nodeset {
					if lost[n].Lost(id, seg.Index) {
						ss.LostReplicas = append(ss.LostReplicas, n)
					}
				}
			}
			if i+1 < len(chain) {
				ss.TailLSN = chain[i+1].BaseLSN
			} else {
				ss.State = "unknown"
				if r, ok := reports[id]; ok && r.SegmentIndex == seg.Index {
					ss.State, ss.TailLSN, ss.TrimPointLSN, ss.Error = "open", r.TailLSN, r.TrimPointLSN, r.Error
					if r.Sealed {
						ss.State = "sealed"
					}
				}
			}
			ls.TrimPointLSN = max(ls.TrimPointLSN, ss.TrimPointLSN)
			ls.Segments = append(ls.Segments, ss)
		}
		if len(chain) > 0 && chain[0].BaseLSN > 1 {
			ls.TrimPointLSN = max(ls.TrimPointLSN, chain[0].BaseLSN-1)
		}
		// The writer reports the log's trim point with the open segment; show it on the
		// segment it falls in (none if below the chain).
		for i := range ls.Segments {
			ss := &ls.Segments[i]
			ss.TrimPointLSN = 0
			end := ss.TailLSN // the LSN after the segment's last record (0: unknown)
			if ls.TrimPointLSN >= ss.BaseLSN && (end == 0 || ls.TrimPointLSN < end || i == len(ls.Segments)-1) {
				ss.TrimPointLSN = ls.TrimPointLSN
			}
		}
		if len(chain) == 0 {
			if waiting == "" {
				waiting = waitingFor(ctx, src.Store)
			}
			ls.Waiting = waiting
		}
		st.Logs = append(st.Logs, ls)
	}
	slices.SortFunc(st.Logs, func(a, b LogStatus) int { return int(a.ID) - int(b.ID) })
	return st, nil
}

// waitingFor says how many log servers a log without segments still waits for.
func waitingFor(ctx context.Context, s metadata.Store) string {
	c, _, err := ReadConfig(ctx, s)
	if err != nil {
		return "no segment yet: " + err.Error()
	}
	servers, err := ReadWriteLogServers(ctx, s)
	if err != nil {
		return "no segment yet: " + err.Error()
	}
	need := nodeset.Size(c.LogReplication, c.NodesetSize)
	if len(servers) < need {
		return fmt.Sprintf("no segment yet: log replication %d needs %d read-write log servers, %d registered (%d missing)", c.LogReplication, need, len(servers), need-len(servers))
	}
	return "no segment yet: waiting for the partition leader's node to create it"
}

// gatherLogStates asks every live worker among nodes for the logs it writes.
func gatherLogStates(ctx context.Context, src Sources, nodes []metadata.Node) map[uint32]rpc.LogState {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	alive := map[string]bool{}
	if src.Members != nil {
		for _, m := range src.Members() {
			alive[m.Name] = m.State == membership.StateAlive || m.State == membership.StateSuspect
		}
	}
	var (
		mu  sync.Mutex
		out = map[uint32]rpc.LogState{}
		wg  sync.WaitGroup
	)
	for _, n := range nodes {
		if !slices.Contains(n.Roles, config.RoleWorker) || n.Address == "" {
			continue
		}
		if up, known := alive[n.Name]; known && !up {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var states []rpc.LogState
			if err := getJSON(ctx, src.HTTP, strings.TrimRight(n.Address, "/")+rpc.LogsPath, &states); err != nil {
				return // shown as state "unknown"
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range states {
				// Several workers may report a log (followers later); the writer's view,
				// on the newest segment, wins.
				if cur, ok := out[s.LogID]; !ok || s.SegmentIndex > cur.SegmentIndex || (s.SegmentIndex == cur.SegmentIndex && s.TailLSN > cur.TailLSN) {
					out[s.LogID] = s
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The node says why (no snapshot destination, a bad request): pass that on.
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if m := strings.TrimSpace(string(msg)); m != "" {
			return fmt.Errorf("%s: %s: %s", url, resp.Status, m)
		}
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
