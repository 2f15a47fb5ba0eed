package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
)

// Snapshots of the cluster API:
//
//	POST /cluster/v1/snapshots  {"partitions":[…]} (none: all) → []rpc.SnapshotInfo
//	GET  /cluster/v1/snapshots?partition=N (none: all)   → []rpc.SnapshotInfo
//
// Each partition's leader takes its snapshot; a partition without a leader, or whose leader
// does not answer, is reported with an error.

// snapshotTimeout bounds one snapshot request to a worker: it uploads the partition's state.
const snapshotTimeout = 10 * time.Minute

// leaderAddresses maps each partition (of want, or all) to its placed leader's name and
// fabric address.
func leaderAddresses(ctx context.Context, store metadata.Store, want []uint32) (map[uint32][2]string, error) {
	v, err := store.Get(ctx, metadata.KeyPartitionTable)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, errors.New("the cluster is not provisioned yet")
	} else if err != nil {
		return nil, err
	}
	var t metadata.PartitionTable
	if err := json.Unmarshal(v.Value, &t); err != nil {
		return nil, fmt.Errorf("decode partition table: %w", err)
	}
	for _, p := range want {
		if p >= t.NumPartitions {
			return nil, fmt.Errorf("no partition %d: the cluster has %d", p, t.NumPartitions)
		}
	}
	nodes, _, err := readNodes(ctx, store)
	if err != nil {
		return nil, err
	}
	addr := map[string]string{}
	for _, n := range nodes {
		addr[n.Name] = strings.TrimRight(n.Address, "/")
	}
	out := map[uint32][2]string{}
	for p := range t.NumPartitions {
		if len(want) == 0 || slices.Contains(want, p) {
			leader := t.LeaderOf(p)
			out[p] = [2]string{leader, addr[leader]}
		}
	}
	return out, nil
}

// NotLeadingYet is a partition's answer to a snapshot request while the node placed as its
// leader has not taken up leadership: a transient refusal, worth asking again.
const NotLeadingYet = "its leader does not lead it (yet)"

func snapshotRoutes(mux *http.ServeMux, o Options) {
	mux.HandleFunc("POST "+PathPrefix+"snapshots", func(w http.ResponseWriter, r *http.Request) {
		var req rpc.SnapshotsRequest
		if !decode(w, r, &req) {
			return
		}
		leaders, err := leaderAddresses(r.Context(), o.Store, req.Partitions)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		// One request per leader node, for the partitions it leads.
		byNode := map[string][]uint32{}
		var out []rpc.SnapshotInfo
		for p, l := range leaders {
			if l[1] == "" {
				out = append(out, rpc.SnapshotInfo{PartitionID: p, Error: "no leader placed"})
				continue
			}
			byNode[l[1]] = append(byNode[l[1]], p)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for addr, parts := range byNode {
			wg.Go(func() {
				infos, err := postSnapshots(r.Context(), o.HTTP, addr, parts)
				mu.Lock()
				defer mu.Unlock()
				answered := map[uint32]bool{}
				for _, in := range infos {
					if slices.Contains(parts, in.PartitionID) {
						out = append(out, in)
						answered[in.PartitionID] = true
					}
				}
				for _, p := range parts {
					if !answered[p] {
						msg := NotLeadingYet
						if err != nil {
							msg = err.Error()
						}
						out = append(out, rpc.SnapshotInfo{PartitionID: p, Error: msg})
					}
				}
			})
		}
		wg.Wait()
		slices.SortFunc(out, func(a, b rpc.SnapshotInfo) int { return int(a.PartitionID) - int(b.PartitionID) })
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET "+PathPrefix+"snapshots", func(w http.ResponseWriter, r *http.Request) {
		var want []uint32
		if s := r.URL.Query().Get("partition"); s != "" {
			p, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				writeError(w, http.StatusBadRequest, "partition: want a number")
				return
			}
			want = []uint32{uint32(p)}
		}
		leaders, err := leaderAddresses(r.Context(), o.Store, want)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		out := []rpc.SnapshotInfo{}
		for p, l := range leaders {
			wg.Go(func() {
				var infos []rpc.SnapshotInfo
				err := errors.New("no leader placed")
				if l[1] != "" {
					ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
					defer cancel()
					err = getJSON(ctx, o.HTTP, fmt.Sprintf("%s%s?partition=%d", l[1], rpc.SnapshotsPath, p), &infos)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					out = append(out, rpc.SnapshotInfo{PartitionID: p, Error: err.Error()})
					return
				}
				out = append(out, infos...)
			})
		}
		wg.Wait()
		slices.SortStableFunc(out, func(a, b rpc.SnapshotInfo) int {
			if a.PartitionID != b.PartitionID {
				return int(a.PartitionID) - int(b.PartitionID)
			}
			return -strings.Compare(a.SnapshotID, b.SnapshotID)
		})
		writeJSON(w, http.StatusOK, out)
	})
}

func postSnapshots(ctx context.Context, hc *http.Client, addr string, parts []uint32) ([]rpc.SnapshotInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	body, _ := json.Marshal(rpc.SnapshotsRequest{Partitions: parts})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr+rpc.SnapshotsPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	client := http.Client{}
	if hc != nil {
		client = *hc
	}
	client.Timeout = 0 // the context bounds it: an upload takes longer than status calls
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	var infos []rpc.SnapshotInfo
	err = json.NewDecoder(resp.Body).Decode(&infos)
	return infos, err
}
