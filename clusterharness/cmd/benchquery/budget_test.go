package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"gorestate.dev/metadatad/admin"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/introspect"
	"gorestate.dev/workerd/store"
)

// `restate services status` sends GROUP BY queries over sys_invocation filtered only by the
// registered services (PROTOCOL.md §4.1): every retained invocation of those services is
// a row the worker loads. The row budget counts only the columns a query reads: here a
// budget too small for 30,000 whole rows (it holds about 600 bytes a row, a whole row is
// about 1 KiB) still answers every query of `invocations list` and `services status`, as
// the real budget does at 2.5 million invocations.
func TestServicesStatusWithinTheRowBudget(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir + "/store")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []*store.Partition
	for p := range uint32(partitions) {
		parts = append(parts, db.Partition(p))
		if _, err := parts[p].BuildIndexes(); err != nil {
			t.Fatal(err)
		}
	}
	const n = 30_000
	fill(parts, n, 100)
	one, err := introspect.Scan(context.Background(), parts, introspect.TableInvocation, rowscan.Scan{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if whole := rowscan.All.EstimateSize(one[0]); whole*n <= 600*n {
		t.Fatalf("a whole row is only %d bytes: the budget would not be too small for them", whole)
	}
	old := rowscan.MaxBytes
	rowscan.MaxBytes = 600 * n
	defer func() { rowscan.MaxBytes = old }()
	if _, err := introspect.Scan(context.Background(), parts, introspect.TableInvocation, rowscan.All); !errors.Is(err, rowscan.ErrTooLarge) {
		t.Fatalf("every whole row within the budget: %v", err)
	}
	meta, err := metadata.OpenLocal(dir + "/meta")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(admin.NewHandler(admin.Options{Store: meta, Query: source{parts: parts, push: true}}))
	defer srv.Close()
	for _, q := range []string{
		`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 )`,
		`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 ) WHERE status != 'completed'`,
		`SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100`,
		`SELECT target_service_name, target_handler_name, status, COUNT(1) as num_invocations, MIN(created_at) as oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation FROM sys_invocation WHERE target_service_name IN ('Counter') GROUP BY target_service_name, target_handler_name, status ORDER BY target_handler_name`,
		`SELECT target_service_name as service_name, target_service_key as service_key, status as invocation_status, first_value(id) as invocation_holding_lock, first_value(target_handler_name) as invocation_method_holding_lock, first_value(created_at) as invocation_created_at, first_value(modified_at) as modified_at, first_value(pinned_deployment_id) as pinned_deployment_id, first_value(last_attempt_deployment_id) as last_attempt_deployment_id, first_value(last_failure) as last_failure_message, first_value(next_retry_at) as next_retry_at, first_value(last_start_at) as last_start_at, 0 as num_pending, sum(retry_count) as num_retries FROM sys_invocation WHERE status != 'pending' AND target_service_name IN ('Counter') GROUP BY target_service_name, target_service_key, status`,
	} {
		body, _ := json.Marshal(map[string]string{"query": q})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/query", bytes.NewReader(body))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%.60s... over %d retained invocations: %d %.200s", q, n, resp.StatusCode, b)
		}
	}
}
