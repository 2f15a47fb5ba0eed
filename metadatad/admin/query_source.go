package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rowscan"
)

// workerRowsPath is where workers serve introspection rows (workerd/introspect.RowsPath; the
// admin may not import the worker's module, so the two meet only on the wire):
// GET workerRowsPath?table=<name>[&scan=<rowscan.Scan>] → {"rows":[{column: value}]}, binary values in base64,
// timestamps in RFC 3339, NULL columns absent.
const workerRowsPath = "/worker/v1/rows"

// NewWorkerQuerySource returns the QuerySource of an admin that runs apart from the workers.
// Each partition's rows live with its leader, so a table is the concatenation of the answers
// of the nodes that the partition table names as leaders (every worker node before the
// controller has placed the partitions); a dead node that leads nothing any more is not
// asked. A failing leader fails the query: a partial table would be silently wrong.
func NewWorkerQuerySource(store metadata.Store, client *http.Client) QuerySource {
	return &workerQuerySource{store: store, client: client}
}

// NewNodeQuerySource is NewWorkerQuerySource for an admin beside a worker: local answers
// for the node named self in-process, the others over the network.
func NewNodeQuerySource(store metadata.Store, client *http.Client, self string, local QuerySource) QuerySource {
	return &workerQuerySource{store: store, client: client, self: self, local: local}
}

type workerQuerySource struct {
	store  metadata.Store
	client *http.Client
	self   string
	local  QuerySource
}

// worker is a node asked for rows.
type worker struct{ name, address string }

func (s *workerQuerySource) Rows(ctx context.Context, table string, scan rowscan.Scan) ([]map[string]any, error) {
	workers, err := s.workers(ctx)
	if err != nil {
		return nil, err
	}
	results := make([][]map[string]any, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		if s.local != nil && w.name == s.self {
			wg.Go(func() { results[i], errs[i] = s.local.Rows(ctx, table, scan) })
			continue
		}
		wg.Go(func() { results[i], errs[i] = s.fetch(ctx, w.address, table, scan) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(results...), nil
}

// workers lists the worker nodes that lead partitions (all worker nodes while nothing is
// placed yet), sorted by address.
func (s *workerQuerySource) workers(ctx context.Context) ([]worker, error) {
	v, err := s.store.Get(ctx, metadata.KeyNodes)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, errors.New("no worker node has registered yet")
	}
	if err != nil {
		return nil, fmt.Errorf("read nodes configuration: %w", err)
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		return nil, fmt.Errorf("decode nodes configuration: %w", err)
	}
	leaders, err := s.placedLeaders(ctx)
	if err != nil {
		return nil, err
	}
	var out []worker
	for _, n := range nodes.Nodes {
		if n.Address == "" || !slices.Contains(n.Roles, config.RoleWorker) {
			continue
		}
		if leaders == nil || leaders[n.Name] {
			out = append(out, worker{name: n.Name, address: n.Address})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no worker node has registered yet")
	}
	slices.SortFunc(out, func(a, b worker) int { return strings.Compare(a.address, b.address) })
	return out, nil
}

// placedLeaders names the nodes the partition table places leaders on; nil while nothing is
// placed.
func (s *workerQuerySource) placedLeaders(ctx context.Context) (map[string]bool, error) {
	v, err := s.store.Get(ctx, metadata.KeyPartitionTable)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read partition table: %w", err)
	}
	var table metadata.PartitionTable
	if err := json.Unmarshal(v.Value, &table); err != nil {
		return nil, fmt.Errorf("decode partition table: %w", err)
	}
	if len(table.Placement) == 0 {
		return nil, nil
	}
	leaders := map[string]bool{}
	for _, p := range table.Placement {
		if p.Leader != "" {
			leaders[p.Leader] = true
		}
	}
	return leaders, nil
}

func (s *workerQuerySource) fetch(ctx context.Context, base, table string, scan rowscan.Scan) ([]map[string]any, error) {
	u := strings.TrimSuffix(base, "/") + workerRowsPath + "?table=" + url.QueryEscape(table)
	if scan.Filters != nil || scan.Limit > 0 {
		u += "&scan=" + url.QueryEscape(scan.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("rows of %s from %s: %w", table, base, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rows of %s from %s: %w", table, base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("rows of %s from %s: %s: %s", table, base, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusRequestEntityTooLarge {
			err = fmt.Errorf("%w: %w", rowscan.ErrTooLarge, err)
		}
		return nil, err
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber() // integers beyond 2^53 must survive; sqlValue converts by column type
	var body struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("rows of %s from %s: decode: %w", table, base, err)
	}
	return body.Rows, nil
}
