package introspect

import (
	"encoding/json"
	"errors"
	"net/http"

	"gorestate.dev/shared/rowscan"
)

// RowsPath is where a worker serves the rows of one table on its fabric address:
// GET RowsPath?table=<name>&scan=<rowscan.Scan, encoded>; without scan, every row.
//
// The answer is {"rows": [{column: value, …}, …]} with encoding/json's encodings: strings,
// numbers (int64), booleans, []byte as base64 strings and timestamps as RFC 3339 strings. NULL
// columns are absent. The reader knows each column's type and converts back. A worker answers
// 400 for an unknown table, 503 while it has not started, 500 for a store failure; the body of
// a failure is plain text.
const RowsPath = "/worker/v1/rows"

// ErrNotReady is returned by a source that cannot scan yet (its worker is still starting).
var ErrNotReady = errors.New("worker not started")

type rowsResponse struct {
	Rows []map[string]any `json:"rows"`
}

// Handler serves src at RowsPath.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		scan, err := rowscan.Decode(r.URL.Query().Get("scan"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rows, err := src.Rows(r.Context(), r.URL.Query().Get("table"), scan)
		switch {
		case errors.Is(err, ErrUnknownTable):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case errors.Is(err, ErrNotReady):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case errors.Is(err, rowscan.ErrTooLarge):
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if rows == nil {
			rows = []map[string]any{}
		}
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(rowsResponse{Rows: rows})
	})
}
