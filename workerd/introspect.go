package workerd

import (
	"context"
	"fmt"
	"net/http"

	"gorestate.dev/workerd/introspect"
	"gorestate.dev/workerd/store"
)

// Rows answers the admin API's SQL tables (introspect.Tables) from the partitions this worker
// leads. Only leaders answer so that an admin asking every worker of a cluster sees each
// partition once; on a single node every started partition leads.
//
// Start writes the fields Rows reads without synchronisation, so Rows (and IntrospectRoutes)
// must only be used once Start has returned.
func (w *Worker) Rows(ctx context.Context, table string) ([]map[string]any, error) {
	if w.db == nil {
		return nil, fmt.Errorf("worker rows of %s: %w", table, introspect.ErrNotReady)
	}
	var parts []*store.Partition
	for p, proc := range w.procs {
		if proc.Leader() != nil {
			parts = append(parts, w.db.Partition(uint32(p)))
		}
	}
	return introspect.Scan(ctx, parts, table)
}

// IntrospectRoutes adds the rows endpoint (introspect.RowsPath) that admin nodes of a
// multi-process cluster query. Register it after Start returned; http.ServeMux accepts routes
// while it serves.
func (w *Worker) IntrospectRoutes(mux *http.ServeMux) {
	mux.Handle(introspect.RowsPath, introspect.Handler(w))
}
