package workerd

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/introspect"
	"gorestate.dev/workerd/invoker"
	"gorestate.dev/workerd/store"
)

// Rows answers the admin API's SQL tables (introspect.Tables) from the partitions this worker
// leads. Only leaders answer so that an admin asking every worker of a cluster sees each
// partition once; on a single node every started partition leads.
//
// Start writes the fields Rows reads without synchronisation, so Rows (and IntrospectRoutes)
// must only be used once Start has returned.
func (w *Worker) Rows(ctx context.Context, table string, scan rowscan.Scan) ([]map[string]any, error) {
	if w.db == nil {
		return nil, fmt.Errorf("worker rows of %s: %w", table, introspect.ErrNotReady)
	}
	var parts []*store.Partition
	for _, proc := range w.processors() {
		if proc.Leader() != nil {
			parts = append(parts, w.db.Partition(proc.Partition()))
		}
	}
	// The store says "running" where the invoker may know "backing-off": a filter on those
	// two is checked only after the invoker's view is in.
	exact := table == introspect.TableInvocation && scan.Mentions("status", "running", "backing-off")
	storeScan := scan
	if exact {
		storeScan = scan.Without("status")
	}
	if table == introspect.TableInvocation && len(scan.Columns) > 0 {
		// The invoker's view below needs each row's id and status.
		storeScan.Columns = append(slices.Clone(scan.Columns), "id", "status")
	}
	rows, err := introspect.Scan(ctx, parts, table, storeScan)
	if err != nil || table != introspect.TableInvocation {
		return rows, err
	}
	// The invoker's in-memory view.
	progress := w.inv.Progress()
	for _, r := range rows {
		p, ok := progress[fmt.Sprint(r["id"])]
		if ok && (r["status"] == "running" && !p.Paused || r["status"] == "paused" && p.Paused) {
			withProgress(r, p)
		}
	}
	if exact {
		rows = slices.DeleteFunc(rows, func(r map[string]any) bool { return !scan.Match(r) })
	}
	for _, r := range rows {
		scan.Project(r)
	}
	return rows, nil
}

// withProgress sets the columns of an invocation's row that Restate takes from the invoker's
// in-memory state: retries, the failure and the deployment (and its SDK) of the last attempt.
// A paused invocation keeps its status, and the time its next retry was due.
func withProgress(r map[string]any, p invoker.Progress) {
	if !p.LastStartAt.IsZero() {
		r["last_start_at"] = p.LastStartAt.UTC().Truncate(time.Millisecond)
	}
	if p.LastAttemptDeployment != "" {
		r["last_attempt_deployment_id"] = p.LastAttemptDeployment
	} else {
		// No attempt of this task got as far as a deployment (not yet, or the pinned one is
		// gone): the store's pinned deployment is not the last attempt's; Restate shows none.
		delete(r, "last_attempt_deployment_id")
	}
	if p.LastAttemptServer != "" {
		r["last_attempt_server"] = p.LastAttemptServer
	}
	if p.StartCount > 0 {
		// Restate counts the attempts started, the running one included.
		r["retry_count"] = int64(p.StartCount)
	}
	if p.RetryCount > 0 {
		r["last_failure"] = p.LastFailure
		if p.LastFailureCode != "" {
			r["last_failure_error_code"] = p.LastFailureCode
		}
		// The command columns, not last_failure_related_entry_*: restate-server 1.7.12 fills
		// those for service protocol V1-V3 only, which we do not speak.
		c := p.LastFailureCommand
		if c.Index != nil {
			r["last_failure_related_command_index"] = int64(*c.Index)
		}
		if c.Name != "" {
			r["last_failure_related_command_name"] = c.Name
		}
		if c.Type != "" {
			r["last_failure_related_command_type"] = c.Type
		}
	}
	if !p.NextRetryAt.IsZero() {
		if !p.Paused {
			r["status"] = "backing-off"
		}
		r["next_retry_at"] = p.NextRetryAt.UTC().Truncate(time.Millisecond)
	}
}

// IntrospectRoutes adds the rows endpoint (introspect.RowsPath) that admin nodes of a
// multi-process cluster query. Register it after Start returned; http.ServeMux accepts routes
// while it serves.
func (w *Worker) IntrospectRoutes(mux *http.ServeMux) {
	mux.Handle(introspect.RowsPath, introspect.Handler(w))
}
