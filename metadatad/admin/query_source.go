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
)

// workerRowsPath is where workers serve introspection rows (workerd/introspect.RowsPath; the
// admin may not import the worker's module, so the two meet only on the wire):
// GET workerRowsPath?table=<name> → {"rows":[{column: value}]}, binary values in base64,
// timestamps in RFC 3339, NULL columns absent.
const workerRowsPath = "/worker/v1/rows"

// NewWorkerQuerySource returns the QuerySource of an admin that runs apart from the workers.
// Every node with the worker role in the nodes configuration answers for the partitions it
// leads, so a table is the concatenation of all their answers. A failing worker fails the
// query: a partial table would be silently wrong.
func NewWorkerQuerySource(store metadata.Store, client *http.Client) QuerySource {
	return &workerQuerySource{store: store, client: client}
}

type workerQuerySource struct {
	store  metadata.Store
	client *http.Client
}

func (s *workerQuerySource) Rows(ctx context.Context, table string) ([]map[string]any, error) {
	workers, err := s.workers(ctx)
	if err != nil {
		return nil, err
	}
	results := make([][]map[string]any, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, base := range workers {
		wg.Go(func() { results[i], errs[i] = s.fetch(ctx, base, table) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(results...), nil
}

// workers lists the fabric addresses of the worker nodes.
func (s *workerQuerySource) workers(ctx context.Context) ([]string, error) {
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
	var out []string
	for _, n := range nodes.Nodes {
		if n.Address != "" && slices.Contains(n.Roles, config.RoleWorker) {
			out = append(out, n.Address)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no worker node has registered yet")
	}
	slices.Sort(out)
	return out, nil
}

func (s *workerQuerySource) fetch(ctx context.Context, base, table string) ([]map[string]any, error) {
	u := strings.TrimSuffix(base, "/") + workerRowsPath + "?table=" + url.QueryEscape(table)
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
		return nil, fmt.Errorf("rows of %s from %s: %s: %s", table, base, resp.Status, strings.TrimSpace(string(msg)))
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
