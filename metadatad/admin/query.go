package admin

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"

	"gorestate.dev/shared/rowscan"
)

// POST /query runs Restate's introspection SQL. Restate answers it with DataFusion over its
// partition stores; here every query gets a fresh in-memory SQLite database holding the
// tables the query mentions (rows from the workers' QuerySource, the schema registry and the
// rule book), an information_schema with the column catalogue, and a first_value aggregate,
// which together run every query the restate CLI sends (PROTOCOL.md §4.1).

// QuerySource gives the rows of the worker-owned tables (sys_invocation,
// sys_invocation_status, sys_journal, sys_journal_events, state, sys_inbox,
// sys_keyed_service_status, sys_promise). A row maps column names to values; a NULL column is absent. Values may be
// string, bool, any integer type, float64, []byte, time.Time, or, from a JSON transport,
// json.Number and strings holding base64 (binary columns) or RFC 3339 (timestamps): they are
// converted by column type.
//
// An in-process worker implements it directly (workerd.Worker.Rows); NewWorkerQuerySource
// reaches workers over HTTP.
//
// scan says which rows the query can need (query_pushdown.go); a source may return more,
// never fewer.
type QuerySource interface {
	Rows(ctx context.Context, table string, scan rowscan.Scan) ([]map[string]any, error)
}

const (
	// maxConcurrentQueries bounds the memory that parallel queries hold in their databases;
	// further queries are told to retry, as Restate does with 429.
	maxConcurrentQueries = 4
	// queryTimeout bounds loading and running one query.
	queryTimeout = time.Minute
	// timeLayout is the canonical timestamp text: lexical order is time order.
	timeLayout       = "2006-01-02T15:04:05.000Z"
	arrowContentType = "application/vnd.apache.arrow.stream"
)

var querySlots = make(chan struct{}, maxConcurrentQueries)

// Query errors. Restate answers a query its SQL parser or planner rejects with 400 and any
// other failure with 500; which planning errors are which follows DataFusion's internals,
// here a query SQLite cannot parse is a 400 (as is one that is no single SELECT's
// statement) and one it cannot plan or run (an unknown column, table or function) a 500, as
// Restate answers those the CLI can produce. Their body is {"message": …} alone
// (queryError).

// errQuery is a query rejected before it ran: empty, not a SELECT, not tokenizable.
func errQuery(err error) *apiError {
	return &apiError{status: http.StatusBadRequest, message: err.Error()}
}

// errQueryUnsupported is a query of a shape Restate's engine does not implement.
func errQueryUnsupported(err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, message: err.Error()}
}

// sqliteSyntaxErrors are the messages of SQLite's parser and tokenizer.
var sqliteSyntaxErrors = []string{"syntax error", "incomplete input", "unrecognized token"}

// errQueryFailed is a query SQLite refused or failed to run.
func errQueryFailed(err error) *apiError {
	status := http.StatusInternalServerError
	if msg := err.Error(); slices.ContainsFunc(sqliteSyntaxErrors, func(s string) bool { return strings.Contains(msg, s) }) {
		status = http.StatusBadRequest
	}
	return &apiError{status: status, message: err.Error()}
}

// queryError gives any failure of a query the body of Restate's query endpoint.
func queryError(err error) *apiError {
	e := *toAPIError(err)
	e.messageOnly = true
	return &e
}

func errQueryBusy() *apiError {
	return &apiError{status: http.StatusTooManyRequests, message: "Too many concurrent queries, retry later"}
}

func errQueryUnavailable(err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, message: fmt.Sprintf("Query engine unavailable: %v", err)}
}

type queryRequest struct {
	Query json.RawMessage `json:"query"`
}

func (a *api) query(w http.ResponseWriter, r *http.Request, _ int) error {
	var req queryRequest
	if err := decodeBody(r, &req); err != nil {
		return err // rejected in plain text, as by Restate's body decoder
	}
	// serde's words for an absent query, a null one and one of another type.
	var query string
	switch {
	case req.Query == nil:
		return errBodyShape(errors.New("missing field `query`"))
	case string(req.Query) == "null":
		return errBodyShape(errors.New("query: invalid type: null, expected a string"))
	case json.Unmarshal(req.Query, &query) != nil:
		return errBodyShape(fmt.Errorf("query: invalid type: %s, expected a string", serdeUnexpectedRaw(req.Query)))
	}
	if err := a.answerQuery(w, r, query); err != nil {
		return queryError(err)
	}
	return nil
}

func (a *api) answerQuery(w http.ResponseWriter, r *http.Request, q string) error {
	select {
	case querySlots <- struct{}{}:
		defer func() { <-querySlots }()
	default:
		w.Header().Set("retry-after", "1")
		return errQueryBusy()
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	res, err := a.runQuery(ctx, q)
	if err != nil {
		return err
	}
	if wantsJSON(r.Header.Get("accept")) {
		b, err := res.json()
		if err != nil {
			return fmt.Errorf("render query result: %w", err)
		}
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(b)
		return nil
	}
	b, err := res.arrow()
	if err != nil {
		return fmt.Errorf("render query result as arrow: %w", err)
	}
	w.Header().Set("content-type", arrowContentType)
	_, _ = w.Write(b)
	return nil
}

// wantsJSON reports whether the accept header asks for JSON; anything else (the CLI's */*
// included) gets Arrow, as from Restate.
func wantsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// queryResult is a finished query: column names as the client sees them, their SQLite declared
// types ("" for expressions), which of them are boolean expressions (booleanItems; nil if
// not known) and the values (nil = NULL).
type queryResult struct {
	names    []string
	decls    []string
	booleans []bool
	rows     [][]any
}

// runQuery checks q, loads the tables it mentions and runs it.
func (a *api) runQuery(ctx context.Context, q string) (*queryResult, error) {
	text, err := scanSQL(q)
	if err != nil {
		return nil, errQuery(err)
	}
	switch {
	case text.statements == 0:
		return nil, errQuery(errors.New("Datafusion error: Error during planning: No SQL statements were provided in the query string"))
	case text.statements > 1:
		return nil, errQueryUnsupported(errors.New("Datafusion error: This feature is not implemented: The context currently only supports a single SQL statement"))
	case text.first != "select" && text.first != "with" && text.first != "values":
		return nil, errQuery(fmt.Errorf("only SELECT queries are supported, not %s", strings.ToUpper(text.first)))
	}

	registerQueryFunctions()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("open query database: %w", err)
	}
	defer db.Close()
	// Each connection to ":memory:" is its own database: everything runs on one.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open query database: %w", err)
	}
	defer conn.Close()

	if err := a.loadTables(ctx, conn, text); err != nil {
		return nil, err
	}
	if text.idents["information_schema"] {
		if err := loadInformationSchema(ctx, conn); err != nil {
			return nil, err
		}
	}
	// Belt and braces next to the SELECT-only check: a WITH can lead into a write.
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = ON"); err != nil {
		return nil, fmt.Errorf("query database: %w", err)
	}
	rows, err := conn.QueryContext(ctx, text.sql)
	if err != nil {
		return nil, sqlError(ctx, err)
	}
	defer rows.Close()
	res, err := collect(ctx, rows)
	if err != nil {
		return nil, err
	}
	if b := booleanItems(text.tokens); len(b) == len(res.names) {
		res.booleans = b
	}
	return res, nil
}

// sqlError maps an engine failure: a deadline is not the query's fault.
func sqlError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errQueryUnavailable(ctx.Err())
	}
	return errQueryFailed(err)
}

func collect(ctx context.Context, rows *sql.Rows) (*queryResult, error) {
	names, err := rows.Columns()
	if err != nil {
		return nil, sqlError(ctx, err)
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, sqlError(ctx, err)
	}
	res := &queryResult{names: make([]string, len(names)), decls: make([]string, len(names))}
	for i, n := range names {
		res.names[i] = columnName(n)
		res.decls[i] = strings.ToUpper(types[i].DatabaseTypeName())
	}
	for rows.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, sqlError(ctx, err)
		}
		res.rows = append(res.rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlError(ctx, err)
	}
	return res, nil
}

// columnName gives unaliased counts DataFusion's names, which clients look up: SQLite names
// a result column after the expression as written.
func columnName(n string) string {
	switch strings.ToLower(strings.Join(strings.Fields(n), "")) {
	case "count(*)":
		return "count(*)"
	case "count(1)":
		return "count(Int64(1))"
	}
	return n
}

// loadTables creates every table, so that a query naming one by accident still plans, and
// fills those the query mentions.
func (a *api) loadTables(ctx context.Context, conn *sql.Conn, text sqlText) error {
	var regRows func(string) ([]map[string]any, error)
	scans := pushdown(text.tokens)
	for _, t := range queryTables {
		defs := make([]string, len(t.cols))
		for i, c := range t.cols {
			defs[i] = quoteIdent(c.name) + " " + c.ty.decl()
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", t.name, strings.Join(defs, ", "))); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
		if !text.idents[t.name] {
			continue
		}
		var rows []map[string]any
		var err error
		switch {
		case t.fromWorkers:
			if a.opts.Query == nil {
				return errQueryUnavailable(fmt.Errorf("no worker serves table %s", t.name))
			}
			if rows, err = a.opts.Query.Rows(ctx, t.name, scans[t.name]); errors.Is(err, rowscan.ErrTooLarge) {
				// As Restate answers a query its engine has no memory for.
				return &apiError{status: http.StatusInternalServerError, message: fmt.Sprintf("read table %s: %v", t.name, err)}
			} else if err != nil {
				return errQueryUnavailable(fmt.Errorf("read table %s: %w", t.name, err))
			}
		case t.fromRuleBook:
			book, _, err := loadRuleBook(ctx, a.opts.Store)
			if err != nil {
				return err
			}
			rows = sysRulesRows(book)
		default:
			if regRows == nil {
				reg, _, err := loadRegistry(ctx, a.opts.Store, *a.opts.ServiceDefaults)
				if err != nil {
					return err
				}
				regRows = func(name string) ([]map[string]any, error) { return registryRows(reg, name), nil }
			}
			rows, _ = regRows(t.name)
		}
		if cols := scans[t.name].Columns; len(cols) > 0 {
			// Only the columns the query reads are filled (the others are NULL).
			t.cols = slices.DeleteFunc(slices.Clone(t.cols), func(c column) bool { return !slices.Contains(cols, c.name) })
		}
		if err := insertRows(ctx, conn, "main", t, rows); err != nil {
			return err
		}
	}
	return nil
}

// insertRows writes rows into schemaName.t in one transaction.
func insertRows(ctx context.Context, conn *sql.Conn, schemaName string, t table, rows []map[string]any) error {
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(t.cols))
	marks := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i], marks[i] = quoteIdent(c.name), "?"
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("load table %s: %w", t.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES (%s)",
		schemaName, t.name, strings.Join(names, ", "), strings.Join(marks, ", ")))
	if err != nil {
		return fmt.Errorf("load table %s: %w", t.name, err)
	}
	defer stmt.Close()
	args := make([]any, len(t.cols))
	for _, r := range rows {
		for i, c := range t.cols {
			v, err := sqlValue(c.ty, r[c.name])
			if err != nil {
				return fmt.Errorf("load table %s column %s: %w", t.name, c.name, err)
			}
			args[i] = v
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("load table %s: %w", t.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("load table %s: %w", t.name, err)
	}
	return nil
}

// sqlValue converts a source value to what column type ty stores.
func sqlValue(ty colType, v any) (driver.Value, error) {
	if v == nil {
		return nil, nil
	}
	switch ty {
	case colInt, colU32:
		return toInt64(v)
	case colU64:
		// The bits of the unsigned value: SQLite integers are signed. Rendering turns them
		// back (declU64); comparisons across 2^63 do not hold.
		switch x := v.(type) {
		case uint64:
			return int64(x), nil
		case json.Number:
			u, err := strconv.ParseUint(x.String(), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("unsigned integer: %w", err)
			}
			return int64(u), nil
		case float64:
			if x < 0 || x != math.Trunc(x) || x >= 1<<64 {
				return nil, fmt.Errorf("%v is not an unsigned integer", x)
			}
			return int64(uint64(x)), nil
		}
		return toInt64(v)
	case colBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%T is not a boolean", v)
		}
		if b {
			return int64(1), nil
		}
		return int64(0), nil
	case colBlob:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string: // JSON transports carry binary as base64
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return nil, fmt.Errorf("binary value: %w", err)
			}
			return b, nil
		}
		return nil, fmt.Errorf("%T is not binary", v)
	case colTime:
		t, err := toTime(v)
		if err != nil {
			return nil, err
		}
		return t.UTC().Format(timeLayout), nil
	case colList, colU32List:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	default:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case json.Number:
			return x.String(), nil
		}
		return fmt.Sprint(v), nil
	}
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("integer %d out of range", x)
		}
		return int64(x), nil
	case json.Number:
		return x.Int64()
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), nil
	}
	return 0, fmt.Errorf("%T is not an integer", v)
}

func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp: %w", err)
		}
		return t, nil
	}
	ms, err := toInt64(v) // milliseconds since the epoch
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp: %w", err)
	}
	return time.UnixMilli(ms), nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// loadInformationSchema attaches information_schema with DataFusion's columns and tables
// tables, describing queryTables (the CLI probes columns before using them).
func loadInformationSchema(ctx context.Context, conn *sql.Conn) error {
	stmts := []string{
		"ATTACH DATABASE ':memory:' AS information_schema",
		`CREATE TABLE information_schema.columns (table_catalog TEXT, table_schema TEXT, table_name TEXT,
			column_name TEXT, ordinal_position INTEGER, column_default TEXT, is_nullable TEXT, data_type TEXT)`,
		`CREATE TABLE information_schema.tables (table_catalog TEXT, table_schema TEXT, table_name TEXT,
			table_type TEXT)`,
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("information_schema: %w", err)
		}
	}
	columnsTable := table{name: "columns", cols: cols("table_catalog table_schema table_name column_name ordinal_position:int column_default is_nullable data_type")}
	tablesTable := table{name: "tables", cols: cols("table_catalog table_schema table_name table_type")}
	var colRows, tableRows []map[string]any
	for _, t := range queryTables {
		tableRows = append(tableRows, map[string]any{"table_catalog": "restate", "table_schema": "public", "table_name": t.name, "table_type": "BASE TABLE"})
		for i, c := range t.cols {
			colRows = append(colRows, map[string]any{
				"table_catalog": "restate", "table_schema": "public", "table_name": t.name,
				"column_name": c.name, "ordinal_position": int64(i), "is_nullable": nullable(c),
				"data_type": c.ty.arrowName(),
			})
		}
	}
	if err := insertRows(ctx, conn, "information_schema", columnsTable, colRows); err != nil {
		return err
	}
	return insertRows(ctx, conn, "information_schema", tablesTable, tableRows)
}

var registerOnce sync.Once

// registerQueryFunctions adds first_value as an aggregate (DataFusion has it as one; SQLite
// only as a window function, which it refuses without OVER). An application function of the
// same name and arity takes precedence over the built-in. Registration is per driver, so it
// happens once per process.
func registerQueryFunctions() {
	registerOnce.Do(func() {
		sqlite.MustRegisterFunction("first_value", &sqlite.FunctionImpl{
			NArgs:         1,
			Deterministic: true,
			MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
				return &firstValue{}, nil
			},
		})
	})
}

// firstValue returns the first value of its group in the aggregate's order (SQLite 3.44+
// applies an ORDER BY inside the call), NULLs included, like DataFusion's first_value. As a
// window function it keeps the frame's values so that rows can leave it.
type firstValue struct {
	frame []driver.Value
}

func (f *firstValue) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	f.frame = append(f.frame, args[0])
	return nil
}

func (f *firstValue) WindowInverse(_ *sqlite.FunctionContext, _ []driver.Value) error {
	if len(f.frame) > 0 {
		f.frame = f.frame[1:]
	}
	return nil
}

func (f *firstValue) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	if len(f.frame) == 0 {
		return nil, nil
	}
	return f.frame[0], nil
}

func (f *firstValue) Final(*sqlite.FunctionContext) {}

// nullable is information_schema.columns.is_nullable of c.
func nullable(c column) string {
	if c.notNull {
		return "NO"
	}
	return "YES"
}
